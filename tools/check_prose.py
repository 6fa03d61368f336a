"""Fail on result numbers typed by hand into the book's prose.

Every number the book states as a result (an accuracy, a loss, a count of tokens, a time) must come from a cell: an
`f"..."` field of a `Markdown(...)` output or a printed line. This check reads every notebook in `nbs/` and reports
each number that appears

- in a markdown cell, or
- in the literal text of a `Markdown(...)` call, outside its `{...}` fields (that is how a stale result slips into an
  otherwise computed sentence),

unless it is one of the things prose may spell out: code in backticks (`max_steps=12`; a number alone in backticks,
`12`, is still a number), a link target, an ordered-list marker, the year of a citation, the structure of a formula
(`$t+1$`, but not `$\\beta = 0.1$`), part of a name (`MiniLM-L6`, `SmolLM2-135M`, `H100`, `bf16`, `02b`), or a phrase on
the reviewed allow-list `tools/prose_allow.txt` (constants the text defines: a split ratio, a chapter's chosen sizes, a
paper's figure).

    python tools/check_prose.py            # report and exit 1 if anything is found
    python tools/check_prose.py --list     # every allowed number too, to review the allow-list
"""
import argparse
import ast
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ALLOW_FILE = ROOT / "tools" / "prose_allow.txt"

NUMBER = re.compile(r"(?<![\w.\/^])(?<![\w.)\]]-)\d+(?:[.,]\d+)*(?:\s?%)?(?![\w])")
"""A number standing on its own: not glued to letters (`L6`, `135M`, `bf16`, `02b`), to a dot or a caret, nor after a
hyphen that joins it to a word (`top-5`, `1e-5`). A minus sign is not such a hyphen: `-27.1` is a number."""
BARE_CODE = re.compile(r"`\s*([-\u2212]?\d+(?:[.,]\d+)*\s?%?)\s*`")
"""Backticks around a number alone (`12`, `0.5`) make it look like code, but in a sentence it is still a number. A named
setting (`max_steps=12`) is code: the reader finds it in the cell."""
FORMULA = re.compile(r"\$[^$\n]*[A-Za-z\\][^$\n]*\$")
FORMULA_NUMBER = re.compile(r"(?<![\w.])\d+\.\d+|(?<==)\s*(?:[2-9]|\d{2,})(?:\.\d+)?(?![\w.])")
"""Inside a formula with symbols, a decimal (`0.2`) or a value given to a symbol (`= 8`) is a number; the structure of
the formula (`t+1`, `2^{32}`, `= 0`) is not."""
NUMBER_WORD = re.compile(r"\b(?:(?:one|a|an)-(?:epoch|step|seed|run|point)|three|four|five|six|seven|eight|nine|ten|eleven|"
                         r"twelve|fifteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundreds?|thousands?|"
                         r"millions?|billions?|trillions?|half|third|quarter|fifth|tenth|twice|double|triple)\b", re.I)
"Numbers spelled out (`sixty networks`, `ten million times`, `the one-epoch run`) are numbers too."
SKIP = [re.compile(p, re.S) for p in (
    r"```.*?```",                 # fenced code
    r"`[^`\n]*`",                 # inline code
    r"\]\([^)]*\)",               # link targets
    r"<[^>\n]*>",                 # html tags and their attributes
    r"(?m)^\s*\d+\.\s",           # ordered-list markers
    r"(?m)^\|\s*\d+[a-z]?\s*\|",   # a table's row numbers (chapter numbers)
    r"(?<!\d)(?:19|20)\d\d[a-z]?(?=[);])|(?<=\()(?:19|20)\d\d(?!\d)",  # years of citations: (Hu et al., 2021), Pal et al. (2024)
    r"\b\d+(?:st|nd|rd|th)\b",    # ordinals name a position, not a result
    r"\b[Cc]hapters? \d+[a-z]?\b",  # chapter references
    r"\{[^{}]*\}",                # f-string fields (computed) in Markdown(...) literals after reassembly
)]


def load_allow(path: Path = ALLOW_FILE) -> dict[str, list[str]]:
    "Allowed phrases by notebook stem ('*' for all): lines `stem | phrase | why`, `#` comments."
    allow: dict[str, list[str]] = {}
    for i, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"): continue
        parts = [p.strip() for p in line.split("|")]
        if len(parts) != 3 or not all(parts):
            raise SystemExit(f"{path}:{i}: expected 'notebook | phrase | why', got {line!r}")
        allow.setdefault(parts[0], []).append(parts[1])
    return allow


def markdown_literals(src: str) -> list[str]:
    "The literal text of each `Markdown(...)` call in a code cell, with `{}` marking where its computed fields were."
    try: tree = ast.parse(src)
    except SyntaxError: return []
    out = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "Markdown"):
            continue
        for arg in node.args[:1]:
            for s in ast.walk(arg):
                if isinstance(s, ast.JoinedStr):
                    out.append("".join(v.value if isinstance(v, ast.Constant) else "{}" for v in s.values))
                elif isinstance(s, ast.Constant) and isinstance(s.value, str) and not _inside_fstring(s, arg):
                    out.append(s.value)
    return out


def _inside_fstring(const, root) -> bool:
    return any(isinstance(n, ast.JoinedStr) and const in n.values for n in ast.walk(root))


def _blank(m: re.Match) -> str: return " " * len(m.group())


def _formula(m: re.Match) -> str:
    "A formula blanked but for the numbers it states (FORMULA_NUMBER), each kept where it stands."
    keep = [(k.start(), k.end()) for k in FORMULA_NUMBER.finditer(m.group())]
    return "".join(ch if any(a <= i < b for a, b in keep) else " " for i, ch in enumerate(m.group()))


def _mask(text: str, phrases: list[str]) -> str:
    for ph in sorted(phrases, key=len, reverse=True): text = _phrase(ph).sub(_blank, text)
    text = SKIP[0].sub(_blank, text)  # fenced code first: a formula's dollar signs inside code are not maths
    text = BARE_CODE.sub(lambda m: " " + m.group(1).center(len(m.group()) - 2) + " ", text)
    for rx in SKIP[1:2]: text = rx.sub(_blank, text)  # inline code
    text = FORMULA.sub(_formula, text)
    for rx in SKIP[2:]: text = rx.sub(_blank, text)
    return text


def _phrase(ph: str) -> re.Pattern:
    "An allowed phrase matches across line breaks: its spaces match any run of whitespace."
    return re.compile(r"\s+".join(map(re.escape, ph.split())))


def _cell_texts(nb_path: Path) -> str:
    return "\n".join("".join(c["source"]) for c in json.loads(nb_path.read_text())["cells"])


def find(nb_path: Path, allow: dict[str, list[str]]) -> list[tuple[int, str, str]]:
    "(cell index, number, its sentence) for each hand-typed number in one notebook."
    cells = json.loads(nb_path.read_text())["cells"]
    phrases = allow.get("*", []) + allow.get(nb_path.stem, [])
    found = []
    for i, c in enumerate(cells):
        src = "".join(c["source"])
        texts = [src] if c["cell_type"] == "markdown" else markdown_literals(src) if c["cell_type"] == "code" else []
        for t in texts:
            masked = _mask(t, phrases)
            for m in sorted([*NUMBER.finditer(masked), *NUMBER_WORD.finditer(masked)], key=lambda m: m.start()):
                a, b = t.rfind("\n", 0, m.start()) + 1, t.find("\n", m.end())
                found.append((i, m.group().strip(), t[a:b if b >= 0 else None].strip()[:160]))
    return found


def unused_phrases(nbs: list[Path], allow: dict[str, list[str]]) -> list[tuple[str, str]]:
    "Allow-list entries no notebook contains any more (so the list cannot grow stale)."
    texts = {p.stem: _cell_texts(p) for p in nbs}
    everything = "\n".join(texts.values())
    return [(stem, ph) for stem, phs in allow.items() for ph in phs
            if not _phrase(ph).search(everything if stem == "*" else texts.get(stem, ""))]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nbs", type=Path, default=ROOT / "nbs")
    ap.add_argument("--list", action="store_true", help="also print what the allow-list lets through")
    args = ap.parse_args(argv)
    allow, nbs = load_allow(), sorted(args.nbs.glob("*.ipynb"))
    bad = [(p.name, *f) for p in nbs for f in find(p, allow)]
    for name, i, num, ctx in bad:
        print(f"{name} cell {i}: {num!r} typed by hand in: {ctx}")
    stale = unused_phrases(nbs, allow)
    for stem, ph in stale: print(f"{ALLOW_FILE.name}: {stem} | {ph} is allowed but no longer in the notebook: remove it")
    if args.list:
        for stem, phs in sorted(allow.items()): print(f"allowed in {stem}: " + "; ".join(phs))
    if bad or stale:
        print(f"\n{len(bad)} hand-typed number(s). Compute each in a cell (a Markdown(f'...') field or a printed line); "
              f"if the text defines it (a split, a chosen size, a paper's figure), add 'notebook | phrase | why' to "
              f"{ALLOW_FILE.relative_to(ROOT)}.", file=sys.stderr)
        return 1
    print(f"prose numbers: {len(nbs)} notebooks, none typed by hand outside the allow-list")
    return 0


if __name__ == "__main__":
    sys.exit(main())
