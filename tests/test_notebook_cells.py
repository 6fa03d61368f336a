"""The docs build runs every notebook cell that imports something (so that the page's later cells can be shown with
their names resolved); a cell that imports and also computes would run out of order there and fail. Imports go in
cells of their own, or in exported cells (which only define)."""
import ast
import json
from pathlib import Path

import pytest

NBS = sorted((Path(__file__).resolve().parent.parent / "nbs").glob("*.ipynb"))
HARMLESS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def mixed_import_cells(nb: dict) -> list[int]:
    """Indices of code cells the docs build runs (not `eval: false`, not exported) that hold an import anywhere, even
    inside a function, as nbdev's `_do_eval` looks, and also a top-level statement that does work there."""
    bad = []
    for i, c in enumerate(nb["cells"]):
        src = "".join(c["source"]) if c["cell_type"] == "code" else ""
        if not src or src.lstrip().startswith("#| export") or "#| eval: false" in src or "nbdev_export()" in src: continue
        code = "\n".join(l for l in src.splitlines() if not l.lstrip().startswith(("!", "%")))
        try: tree = ast.parse(code)
        except SyntaxError: continue
        if not any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in ast.walk(tree)): continue
        if not all(isinstance(t, HARMLESS) for t in tree.body): bad.append(i)
    return bad


def test_the_check_finds_a_mixed_cell():
    nb = {"cells": [{"cell_type": "code", "source": ["from scipy.stats import binomtest\n", "p = binomtest(3, 4).pvalue"]},
                    {"cell_type": "code", "source": ["import json\n", "from pathlib import Path"]},
                    {"cell_type": "code", "source": ["#| export\n", "import numpy as np\n", "def f(): return np.zeros(1)"]},
                    {"cell_type": "code", "source": ["def g():\n", "    from json import dumps\n", "    return dumps(1)\n",
                                                      "x = undefined_elsewhere.pop()"]},
                    {"cell_type": "code", "source": ["def h():\n", "    import json\n", "    return json"]}]}
    assert mixed_import_cells(nb) == [0, 3]


@pytest.mark.parametrize("nb", NBS, ids=[p.stem for p in NBS])
def test_imports_sit_in_cells_of_their_own(nb):
    assert mixed_import_cells(json.loads(nb.read_text())) == [], f"{nb.name}: move these cells' imports into an import cell"


CHAPTERS = [p for p in NBS if p.stem[:2].isdigit() and p.stem != "00_config"]
RUNS_MODELS = ("model_for(", "load_model(", "for_profile(", "get_profile(", "run_cli(", "ftbook ")


def runnable(nb: dict) -> list[str]:
    "The sources of the code cells a reader runs, in order: not exported, not the hidden Colab install."
    return [s for c in nb["cells"] if c["cell_type"] == "code"
            for s in ["".join(c["source"])] if not s.lstrip().startswith(("#| export", "#| default_exp")) and "google.colab" not in s]


@pytest.mark.parametrize("nb", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_a_chapter_that_runs_models_takes_the_cpu_profile_first(nb):
    """On a GPU machine, `get_profile()` would pick the card's profile: a chapter's cells would then load bigger models
    than its prose and checks were written for. `chapter_profile()` (chapter 0) comes before any of that."""
    cells = runnable(json.loads(nb.read_text()))
    first = next((i for i, s in enumerate(cells) if "chapter_profile()" in s), None)
    uses = next((i for i, s in enumerate(cells) if any(k in s for k in RUNS_MODELS) and "chapter_profile()" not in s), None)
    if uses is None: return
    assert first is not None and first < uses, f"{nb.name}: call `profile = chapter_profile()` before cell {cells[uses][:200]!r}"
    bare = [s[:200] for s in cells if "get_profile()" in s]
    assert not bare, f"{nb.name}: use the chapter's `profile` (chapter_profile) instead of get_profile(): {bare}"
