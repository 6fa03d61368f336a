"""The docs build runs every notebook cell that imports something (so that the page's later cells can be shown with
their names resolved); a cell that imports and also computes would run out of order there and fail. Imports go in
cells of their own, or in exported cells (which only define)."""
import json
import re
from pathlib import Path

import pytest

NBS = sorted((Path(__file__).resolve().parent.parent / "nbs").glob("*.ipynb"))
IMPORT = re.compile(r"\s*(import \S|from \S+ import )")


def mixed_import_cells(nb: dict) -> list[int]:
    "Indices of code cells that are run (not `eval: false`), not exported, hold an import, and hold other statements too."
    bad = []
    for i, c in enumerate(nb["cells"]):
        src = "".join(c["source"]) if c["cell_type"] == "code" else ""
        if not src or src.lstrip().startswith("#| export") or "#| eval: false" in src: continue
        lines = [l for l in src.splitlines() if l.strip() and not l.lstrip().startswith("#") and not l.startswith((" ", ")", "]"))]
        if any(IMPORT.match(l) for l in lines) and not all(IMPORT.match(l) or l.startswith(("!", "%")) for l in lines): bad.append(i)
    return bad


def test_the_check_finds_a_mixed_cell():
    nb = {"cells": [{"cell_type": "code", "source": ["from scipy.stats import binomtest\n", "p = binomtest(3, 4).pvalue"]},
                    {"cell_type": "code", "source": ["import json\n", "from pathlib import Path"]},
                    {"cell_type": "code", "source": ["#| export\n", "import numpy as np\n", "def f(): return np.zeros(1)"]}]}
    assert mixed_import_cells(nb) == [0]


@pytest.mark.parametrize("nb", NBS, ids=[p.stem for p in NBS])
def test_imports_sit_in_cells_of_their_own(nb):
    assert mixed_import_cells(json.loads(nb.read_text())) == [], f"{nb.name}: move these cells' imports into an import cell"
