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
