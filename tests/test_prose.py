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
