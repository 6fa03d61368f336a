"""Measure the length of the book's sentences: words per sentence in each chapter's markdown cells.

The book aims for plain prose: an average under 22 words a sentence in each chapter, and no sentence over 40 words.
Counted over markdown cells only; code (fenced or inline) and maths are left out, a link counts by its text, and each
bullet, table cell or heading is taken on its own.

    python tools/check_sentences.py          # a table per chapter; exit 1 past a limit
    python tools/check_sentences.py --long   # also print each sentence over the limit
"""
import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_MEAN, MAX_WORDS = 22.0, 40
CHAPTER = re.compile(r"(0[1-9]|1[0-2])[a-z]?_")

_DROP = [re.compile(p, re.S) for p in (
    r"```.*?```",          # fenced code
    r"\$\$.*?\$\$",        # display maths
    r"<!--.*?-->",         # comments
)]
_INLINE = [re.compile(p) for p in (
    r"`[^`\n]*`",          # inline code
    r"\$[^$\n]+\$",        # inline maths
    r"<[^>\n]*>",          # html tags
    r"!\[[^\]]*\]\([^)]*\)",  # images
)]
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_ABBREV = re.compile(r"\b(e\.g|i\.e|et al|vs|cf|approx|Fig|Eq|No)\.", re.I)
PLACE = "\u25a1"
_END = re.compile(r"[.!?][\"')\]*_]*(?=\s+[\"'(\[]?[A-Za-z0-9*_\u25a1])")
"""A sentence's end: its stop, any closing quote, bracket or emphasis, then a space and a word or code to follow (a
sentence may start in lower case with a name such as `ftbook`; abbreviations are shielded first)."""
_WORD = re.compile(r"[A-Za-z0-9](?:[\w'’-]|\.(?=\w))*")
"A word: letters and digits, with inner apostrophes, hyphens and dots (`e.g.`, `3.5`, `don't` are one word each)."


def blocks(md: str) -> list[str]:
    "The text units of one markdown cell: paragraphs, each list item, each table cell and each heading."
    for rx in _DROP: md = rx.sub(" ", md)
    out, cur = [], []
    def flush():
        if cur: out.append(" ".join(cur)); cur.clear()
    for line in md.splitlines():
        s = line.strip()
        if not s: flush(); continue
        if s.startswith("|"):  # a table: each cell on its own, the divider row dropped
            flush(); out += [c.strip() for c in s.strip("|").split("|") if c.strip() and not set(c.strip()) <= set("-: ")]
            continue
        if re.match(r"(#+|[-*+]|\d+\.|>)\s", s):  # a heading, a list item or a quote starts a new unit
            flush(); s = re.sub(r"^(#+|[-*+]|\d+\.|>)\s+", "", s)
            if line.lstrip().startswith("#"): out.append(s); continue
        cur.append(s)
    flush()
    return out


def sentences(md: str) -> list[str]:
    "The sentences of one markdown cell, code and maths removed, links reduced to their text."
    out = []
    for b in blocks(md):
        for rx in _INLINE: b = rx.sub(PLACE, b)  # a mark, not a word: a sentence may start with code
        b = _LINK.sub(r"\1", b)
        b = _ABBREV.sub(lambda m: m.group().replace(".", "\u2024"), b)  # shield the abbreviation's dots
        cuts = [0] + [m.end() for m in _END.finditer(b)] + [len(b)]
        out += [t.replace("\u2024", ".").replace(PLACE, "`…`").strip() for t in (b[i:j] for i, j in zip(cuts, cuts[1:]))
                if _WORD.search(t)]
    return out


def words(sentence: str) -> int:
    return len(_WORD.findall(sentence))


def chapter_sentences(nb_path: Path) -> list[str]:
    cells = json.loads(nb_path.read_text())["cells"]
    return [s for c in cells if c["cell_type"] == "markdown" for s in sentences("".join(c["source"]))]


def stats(nb_path: Path) -> dict:
    "Sentence count, mean words a sentence, and the sentences over the limit, for one notebook."
    ss = chapter_sentences(nb_path)
    n = [words(s) for s in ss]
    return {"sentences": len(ss), "mean": sum(n) / max(len(n), 1), "long": [s for s, k in zip(ss, n) if k > MAX_WORDS]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nbs", type=Path, default=ROOT / "nbs")
    ap.add_argument("--long", action="store_true", help="print each sentence over the limit")
    args = ap.parse_args(argv)
    bad = 0
    print(f"{'chapter':<16} {'sentences':>9} {'mean words':>10} {'over ' + str(MAX_WORDS):>8}")
    for p in sorted(args.nbs.glob("*.ipynb")):
        if not CHAPTER.match(p.name): continue
        st = stats(p)
        fail = st["mean"] >= MAX_MEAN or st["long"]
        bad += bool(fail)
        print(f"{p.stem:<16} {st['sentences']:>9} {st['mean']:>10.1f} {len(st['long']):>8}{'  <-' if fail else ''}")
        if args.long:
            for s in st["long"]: print(f"    ({words(s)} words) {s}")
    if bad:
        print(f"\n{bad} chapter(s) past the limits (mean under {MAX_MEAN:g} words a sentence, none over {MAX_WORDS}): "
              "split the long sentences.", file=sys.stderr)
        return 1
    print(f"every chapter: mean under {MAX_MEAN:g} words a sentence, none over {MAX_WORDS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
