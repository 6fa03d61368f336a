"""Every chapter from 01 to 12 ends the same way: "What you learned" (bullets) and "Exercises" (one that predicts an
outcome before running it, one on the reader's own data through the CLI, hints in a collapsed block). Chapters that
teach a method (03 to 11) open with what the reader will be able to do. The `ftbook` commands an exercise gives must
parse with the CLI's own parser, so a renamed flag fails here and not in a reader's shell."""
import json
import re
import shlex
from pathlib import Path

import pytest

from ftbook.cli import build_parser

NBS = Path(__file__).resolve().parent.parent / "nbs"
CHAPTERS = sorted(p for p in NBS.glob("*.ipynb") if re.match(r"(0[1-9]|1[0-2])[a-z]?_", p.name))
METHOD = re.compile(r"(0[3-9]|1[01])[a-z]?_")
COMMAND = re.compile(r"`(ftbook [^`]+)`")


def _markdown(nb: dict) -> list[str]:
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]


def _items(text: str) -> list[str]:
    "The numbered items of a markdown list, each with its continuation lines."
    return [m.group(1).strip() for m in re.finditer(r"(?ms)^\d+\.\s(.*?)(?=^\d+\.\s|\Z)", text)]


def shape_problems(nb: dict, method: bool) -> list[str]:
    "What a chapter lacks of its opening and closing sections; an empty list when it has them all."
    md = _markdown(nb)
    heads = [i for i, t in enumerate(md) for l in t.splitlines() if l.startswith("## ")]
    problems = []
    if method:
        first = heads[0] if heads else len(md)
        if not any("What you will be able to do" in t for t in md[:first + 1]):
            problems.append("no 'What you will be able to do' before the first section")
    learned = [i for i, t in enumerate(md) if t.lstrip().startswith("## What you learned")]
    exercises = [i for i, t in enumerate(md) if t.lstrip().startswith("## Exercises")]
    if not learned: problems.append("no '## What you learned'")
    if not exercises: problems.append("no '## Exercises'")
    if problems and not (learned and exercises): return problems
    if not learned[-1] < exercises[-1] == len(md) - 1:
        problems.append("'What you learned' then 'Exercises' must be the chapter's last markdown cells")
    bullets = [l for l in md[learned[-1]].splitlines() if l.startswith("- ")]
    if len(bullets) < 3: problems.append(f"'What you learned' has {len(bullets)} bullets (3 or more)")
    text = md[exercises[-1]]
    body, _, hints = text.partition("<details>")
    asked, answered = _items(body), _items(hints.split("</details>")[0])
    if not 3 <= len(asked) <= 6: problems.append(f"{len(asked)} exercises (3 to 6)")
    if "<summary>Hints</summary>" not in hints: problems.append("no collapsed hints (<details><summary>Hints</summary>)")
    elif len(answered) != len(asked): problems.append(f"{len(asked)} exercises but {len(answered)} hints")
    if not any(a.startswith("**Predict, then run.**") for a in asked): problems.append("no 'Predict, then run.' exercise")
    own = [a for a in asked if a.startswith("**Your own data.**")]
    if not own: problems.append("no 'Your own data.' exercise")
    elif not any(COMMAND.search(a) for a in own): problems.append("the 'Your own data.' exercise gives no `ftbook ...` command")
    return problems


def command_problems(nb: dict) -> list[str]:
    "Each `ftbook ...` command in the exercises, with the error the CLI's parser gives it (none when it parses)."
    md = _markdown(nb)
    ex = [t for t in md if t.lstrip().startswith("## Exercises")]
    problems = []
    for cmd in (COMMAND.findall(ex[-1]) if ex else []):
        argv = shlex.split(" ".join(cmd.split()))[1:]
        try: build_parser().parse_args(argv)
        except SystemExit as e:
            if e.code: problems.append(f"{cmd!r} does not parse (exit {e.code})")
    return problems


def test_chapters_are_found():
    assert {"01_pretrained", "03a_leakage", "12_cli"} <= {p.stem for p in CHAPTERS}
    assert not any(p.stem in ("00_config", "index") for p in CHAPTERS)


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_opens_and_ends_as_a_lesson(path):
    nb = json.loads(path.read_text())
    assert shape_problems(nb, bool(METHOD.match(path.name))) == []
    assert command_problems(nb) == []


def _cell(text: str) -> dict:
    return {"cell_type": "markdown", "source": [text]}


GOOD_END = [
    _cell("## What you learned\n\n- one\n- two\n- three"),
    _cell("## Exercises\n\n1. **Predict, then run.** Set `r=4`.\n2. Read it.\n3. **Your own data.** Run\n   `ftbook leakage\n"
          "   a.jsonl b.jsonl --top 3`.\n\n<details>\n<summary>Hints</summary>\n\n1. a\n2. b\n3. c\n\n</details>"),
]


def test_the_checks_find_what_a_chapter_lacks():
    intro = [_cell("# T\n\nWhat you will be able to do:\n\n- run it"), _cell("## A section")]
    assert shape_problems({"cells": intro + GOOD_END}, method=True) == []
    assert command_problems({"cells": GOOD_END}) == []
    assert shape_problems({"cells": intro[1:] + GOOD_END}, method=True) == ["no 'What you will be able to do' before the first section"]
    assert shape_problems({"cells": intro}, method=True) == ["no '## What you learned'", "no '## Exercises'"]
    assert "must be the chapter's last" in shape_problems({"cells": GOOD_END[::-1]}, method=False)[0]
    no_hints = [GOOD_END[0], _cell(GOOD_END[1]["source"][0].split("<details>")[0])]
    assert shape_problems({"cells": no_hints}, method=False) == ["no collapsed hints (<details><summary>Hints</summary>)"]
    few_hints = [GOOD_END[0], _cell(GOOD_END[1]["source"][0].replace("2. b\n3. c\n", ""))]
    assert shape_problems({"cells": few_hints}, method=False) == ["3 exercises but 1 hints"]
    plain = [GOOD_END[0], _cell(GOOD_END[1]["source"][0].replace("**Predict, then run.** ", "").replace("**Your own data.** ", ""))]
    assert shape_problems({"cells": plain}, method=False) == ["no 'Predict, then run.' exercise", "no 'Your own data.' exercise"]
    bad_flag = [GOOD_END[0], _cell(GOOD_END[1]["source"][0].replace("--top 3", "--topp 3"))]
    assert command_problems({"cells": bad_flag}) and "does not parse" in command_problems({"cells": bad_flag})[0]
