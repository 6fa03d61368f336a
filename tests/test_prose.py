"""No result number is typed by hand into the book's prose (tools/check_prose.py), and the check itself can fail."""
import json
import subprocess
import sys

from conftest import ROOT

sys.path.insert(0, str(ROOT / "tools"))
import check_prose  # noqa: E402


def test_every_notebook_passes_the_prose_number_check():
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "check_prose.py")], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]


def _nb(path, *cells):
    path.write_text(json.dumps({"cells": [{"cell_type": t, "source": s, "metadata": {}} for t, s in cells]}))
    return path


def test_the_check_finds_hand_typed_results_and_lets_computed_ones_through(tmp_path):
    nb = _nb(tmp_path / "07_demo.ipynb",
             ("markdown", "The model reached 79.6% after sixty steps; see `lr=3e-4` and chapter 5 (Kaplan et al., 2020)."),
             ("code", 'Markdown(f"the one-epoch run above reached {acc:.1%} with {n} reviews, 167 of them")'),
             ("code", 'Markdown(f"computed: {acc:.1%} on {n} reviews")'))
    found = {(i, num) for i, num, _ in check_prose.find(nb, {})}
    assert found == {(0, "79.6%"), (0, "sixty"), (1, "one-epoch"), (1, "167")}, found
    assert check_prose.find(nb, {"07_demo": ["reached 79.6% after sixty steps", "167 of them", "one-epoch run"]}) == []


def test_an_allow_list_entry_the_notebooks_no_longer_contain_is_reported(tmp_path):
    nb = _nb(tmp_path / "07_demo.ipynb", ("markdown", "Blocks of 64 tokens,\nsplit 80/10/10."))
    assert check_prose.find(nb, {"07_demo": ["split 80/10/10", "Blocks of 64 tokens,"]}) == []  # across a line break too
    assert check_prose.unused_phrases([nb], {"07_demo": ["split 80/10/10", "a phrase that is gone"]}) == [("07_demo", "a phrase that is gone")]


import check_sentences  # noqa: E402


def test_every_chapter_keeps_its_sentences_short():
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "check_sentences.py"), "--long"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]


def test_the_sentence_check_counts_words_as_a_reader_does(tmp_path):
    md = ("# A heading of five words\n\nThe Trainer (e.g. TRL's) runs; see [the guide](http://x.y/a.b). `load_model` "
          "loads it, and $\\beta = 0.1$ scales it.\n\n- one bullet, on its own\n- **Bold lead.** Then more words here.\n\n"
          "```python\nx = 1. Not a sentence.\n```\n\n| a | b |\n|---|---|\n| cell one | cell two |")
    ss = check_sentences.sentences(md)
    assert ss == ["A heading of five words", "The Trainer (e.g. TRL's) runs; see the guide.", "`…` loads it, and `…` scales it.",
                  "one bullet, on its own", "**Bold lead.**", "Then more words here.", "a", "b", "cell one", "cell two"], ss
    assert [check_sentences.words(s) for s in ss[:3]] == [5, 8, 5]
    long = " ".join(["word"] * (check_sentences.MAX_WORDS + 1)) + "."
    path = _nb(tmp_path / "03_demo.ipynb", ("markdown", "Short one. " + long), ("code", long))
    st = check_sentences.stats(path)
    assert st["sentences"] == 2 and st["long"] == [long] and st["mean"] == (2 + check_sentences.MAX_WORDS + 1) / 2
    assert check_sentences.main(["--nbs", str(tmp_path)]) == 1
    path.write_text(path.read_text().replace(long, "Short two."))
    assert check_sentences.main(["--nbs", str(tmp_path)]) == 0


def test_the_check_finds_numbers_after_a_minus_in_years_and_in_formulas(tmp_path):
    "Three ways a hand-typed result used to slip through: a negative number, a number that looks like a year, and a "
    "value given to a symbol inside a formula."
    nb = _nb(tmp_path / "08_demo.ipynb",
             ("markdown", "The reward fell to -27.1 after 2000 steps."),
             ("markdown", "With $\\beta = 0.5$ and $\\mathrm{clip}(x, 0.8, 1.2)$ it held."),
             ("markdown", "Set `max_steps=12` (Hu et al., 2021; Pal et al. (2024)) at $t+1$ with $h \\bmod 2^{32}$, $V = 0$, top-5, `1e-5`."))
    found = [(i, num) for i, num, _ in check_prose.find(nb, {})]
    assert found == [(0, "27.1"), (0, "2000"), (1, "0.5"), (1, "0.8"), (1, "1.2")], found
    assert check_prose.find(nb, {"08_demo": ["to -27.1 after 2000 steps", "$\\beta = 0.5$",
                                             "0.8, 1.2)$"]}) == []


def test_the_check_finds_a_number_alone_in_backticks_and_lets_named_settings_through(tmp_path):
    "The fourth hole: backticks around a bare number (`12`) do not make it code; a named setting (`max_steps=12`) is code."
    nb = _nb(tmp_path / "08_demo.ipynb",
             ("markdown", "Ran `12` rounds of ` 8 ` and scored `0.5%`; set `max_steps=12`, `lr=3e-4` and `ranks=(4, 16)`."),
             ("code", 'Markdown(f"after `{n}` steps and `16` more")'))
    found = [(i, num) for i, num, _ in check_prose.find(nb, {})]
    assert found == [(0, "12"), (0, "8"), (0, "0.5%"), (1, "16")], found
    assert check_prose.find(nb, {"08_demo": ["`12` rounds of ` 8 `", "`0.5%`", "`16` more"]}) == []
