"""The glossary (`nbs/glossary.ipynb`) links each term to a section of a chapter that explains it. Every entry is a
list item `- **term**: definition ([chapter N](NN_name.html#anchor)).`, or `([chapter N](NN_name.html))` for a term
the chapter's opening defines, before its first heading. The entries run in alphabetical order under their letter's
heading, and every link names a notebook in `nbs/` and, when it gives an anchor, one of its headings, so a renamed
section fails here rather than as a dead link on the site. Pure JSON and regular expressions: no notebook runs."""
import json
import re
from pathlib import Path

NBS = Path(__file__).resolve().parent.parent / "nbs"
GLOSSARY = NBS / "glossary.ipynb"

ENTRY = re.compile(r"(?ms)^- \*\*(?P<term>.+?)\*\*:(?P<text>.*?)(?=^- |^#|\Z)")
LINK = re.compile(r"\]\((?P<target>[^)\s]*)\)")
CHAPTER_LINK = re.compile(r"(?P<nb>\d\d[a-z]?_\w+)\.html(?:#(?P<anchor>[^\s#]+))?")
"A chapter page, with the id of one of its headings, or with none: the chapter's opening, above its first heading."
HEADING = re.compile(r"^(#{2,6})\s+(?P<text>.*?)\s*#*\s*$")


def slug(heading: str) -> str:
    """The id the docs site gives a heading, as the built pages show it (pandoc's rule): code and link markup removed,
    every character but letters, digits, spaces, `_`, `-` and `.` dropped, each run of spaces made one hyphen, lower
    case, and anything before the first letter cut. So `load_data` keeps its underscore and a `β` stays."""
    text = re.sub(r"`([^`]*)`", r"\1", heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = "".join(ch for ch in text if ch.isalnum() or ch in "_-. ")
    text = re.sub(r"\s+", "-", text.strip()).lower()
    first = re.search(r"[^\W\d_]", text)
    return text[first.start():] if first else "section"


def markdown(nb: dict) -> list[str]:
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]


def headings(nb: dict) -> list[str]:
    "The `##` to `######` headings of a notebook's markdown cells, in order, leaving out lines in fenced code."
    out = []
    for text in markdown(nb):
        fenced = False
        for line in text.splitlines():
            if line.lstrip().startswith("```"): fenced = not fenced; continue
            m = None if fenced else HEADING.match(line)
            if m: out.append(m.group("text"))
    return out


def anchors(nb: dict) -> set[str]:
    "The ids of a notebook's headings; a repeated id gets `-1`, `-2`, ... as on the site."
    seen, out = {}, set()
    for h in headings(nb):
        s = slug(h)
        out.add(s if s not in seen else f"{s}-{seen[s]}")
        seen[s] = seen.get(s, 0) + 1
    return out


def entries(nb: dict) -> list[tuple[str, str, str]]:
    "(letter heading, term, text) for every entry of the glossary, in page order."
    out, letter = [], ""
    for text in markdown(nb):
        for line in text.splitlines():
            if line.startswith("## "): letter = line[3:].strip()
        out += [(letter, m.group("term").strip(), m.group("text").strip()) for m in ENTRY.finditer(text)]
    return out


def sort_key(term: str) -> str:
    return term.replace("`", "").lower()


def order_problems(found: list[tuple[str, str, str]]) -> list[str]:
    "Entries out of alphabetical order, or under another letter's heading."
    keys = [sort_key(t) for _, t, _ in found]
    bad = [f"{b!r} comes after {a!r}" for a, b in zip(keys, keys[1:]) if b < a]
    return bad + [f"{t!r} sits under '## {letter}'" for letter, t, _ in found if sort_key(t)[:1].upper() != letter.upper()]


def link_problems(found: list[tuple[str, str, str]], nbs: Path = NBS) -> list[str]:
    """What is wrong with each entry's link: not exactly one, not `NN_name.html#anchor` or `NN_name.html`, no such
    notebook, or an anchor that is none of its headings. A link without an anchor is the chapter's opening."""
    problems, cache = [], {}
    for _, term, text in found:
        links = LINK.findall(text)
        if len(links) != 1:
            problems.append(f"{term!r}: {len(links)} links, want exactly one"); continue
        m = CHAPTER_LINK.fullmatch(links[0])
        if not m:
            problems.append(f"{term!r}: link {links[0]!r} is not of the form NN_name.html#anchor or NN_name.html"); continue
        path = nbs / f"{m.group('nb')}.ipynb"
        if not path.exists():
            problems.append(f"{term!r}: {path.name} does not exist"); continue
        if m.group("anchor") is None: continue  # the chapter's opening
        if path not in cache: cache[path] = anchors(json.loads(path.read_text(encoding="utf-8")))
        if m.group("anchor") not in cache[path]:
            problems.append(f"{term!r}: {path.name} has no heading with the id {m.group('anchor')!r}")
    return problems


def glossary() -> dict:
    return json.loads(GLOSSARY.read_text(encoding="utf-8"))


def test_slug_rule():
    assert slug("Will it fit? A memory plan") == "will-it-fit-a-memory-plan"
    assert slug("Offline presets") == "offline-presets"
    assert slug("Warm-up, decay and batch size") == "warm-up-decay-and-batch-size"
    assert slug("`load_data`") == "load_data"  # the site keeps underscores
    assert slug("The classic pitfall: pad token == EOS") == "the-classic-pitfall-pad-token-eos"
    assert slug("β: how far the policy may move") == "β-how-far-the-policy-may-move"
    assert slug("The `reward` recipe") == "the-reward-recipe"
    # the anchors the chapters already link to come out of their own headings
    assert "will-it-fit-a-memory-plan" in anchors(json.loads((NBS / "02c_train.ipynb").read_text(encoding="utf-8")))
    assert "offline-presets" in anchors(json.loads((NBS / "01_pretrained.ipynb").read_text(encoding="utf-8")))


def test_glossary_page_shape():
    nb = glossary()
    assert all(c["cell_type"] == "markdown" for c in nb["cells"])
    assert markdown(nb)[0].startswith("# Glossary\n")
    assert len(entries(nb)) >= 50


def test_entries_in_alphabetical_order():
    assert order_problems(entries(glossary())) == []


def test_every_entry_links_to_a_heading():
    assert link_problems(entries(glossary())) == []


def test_the_checks_report_bad_entries(tmp_path):
    "A made-up glossary against a made-up chapter: every kind of bad entry is named, and the good ones pass."
    (tmp_path / "07_demo.ipynb").write_text(json.dumps({"cells": [
        {"cell_type": "markdown", "source": ["# Demo\n", "\n", "## Rewards per token\n", "\n", "Text.\n", "```sh\n", "## not a heading\n", "```"]},
        {"cell_type": "markdown", "source": ["## On a GPU"]}, {"cell_type": "markdown", "source": ["### On a GPU"]}]}))
    made_up = {"cells": [{"cell_type": "markdown", "source": [
        "## B\n\n",
        "- **beta**: A weight ([chapter 7](07_demo.html#no-such-section)).\n",
        "- **batch**: Examples ([chapter 7](07_demo.html#rewards-per-token)).\n",
        "- **baseline**: The chapter's opening, no anchor ([chapter 7](07_demo.html)).\n",
        "- **bandit**: An empty anchor ([chapter 7](07_demo.html#)).\n",
        "- **bin**: No anchor, no such notebook ([chapter 98](98_gone.html)).\n",
        "- **bogus**: Nowhere ([chapter 99](99_nothing.html#anything)).\n",
        "- **`bfd` packing**: No link at all.\n",
        "- **bias**: Two links ([a](07_demo.html#on-a-gpu)) ([b](07_demo.html#on-a-gpu-1)).\n",
        "- **bootstrap**: Not a chapter ([site](https://example.com)).\n",
        "- **code**: A heading inside fenced code ([chapter 7](07_demo.html#not-a-heading)).\n",
        "- **dpo**: Wrong letter, good link ([chapter 7](07_demo.html#on-a-gpu-1)).\n"]}]}
    found = entries(made_up)
    assert [t for _, t, _ in found] == ["beta", "batch", "baseline", "bandit", "bin", "bogus", "`bfd` packing", "bias",
                                        "bootstrap", "code", "dpo"]
    problems = link_problems(found, tmp_path)
    assert len(problems) == 8, problems
    assert not any(p.startswith("'baseline'") for p in problems)  # a chapter's opening needs no anchor
    assert any(p.startswith("'bandit': link") for p in problems)
    assert "'bin': 98_gone.ipynb does not exist" in problems
    assert "'beta': 07_demo.ipynb has no heading with the id 'no-such-section'" in problems
    assert "'bogus': 99_nothing.ipynb does not exist" in problems
    assert "'`bfd` packing': 0 links, want exactly one" in problems
    assert "'bias': 2 links, want exactly one" in problems
    assert any(p.startswith("'bootstrap': link") for p in problems)
    assert "'code': 07_demo.ipynb has no heading with the id 'not-a-heading'" in problems
    order = order_problems(found)
    assert "'batch' comes after 'beta'" in order and "'dpo' sits under '## B'" in order
