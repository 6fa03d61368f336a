"""Every notebook runs top to bottom (cpu profile, offline), as `nbdev-test` runs it: the book's own asserts are tests.

Each notebook has a time budget on the cpu profile, so that the whole `.ci/run` stays under 45 minutes on 2 cores as
chapters are added. The times are printed at the end of the run (see conftest.py)."""
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
NBS = sorted((Path(__file__).resolve().parent.parent / "nbs").glob("*.ipynb"))
BUDGET_S = 150
"Seconds a notebook may take on the cpu profile on a 2-core machine."
OVER_BUDGET_S = {"03_pitfalls": 180, "04_selfsup": 180, "05a_classify": 180}
"""Notebooks that measured 126-139 s, 137-152 s and 147 s alone on the 2-core machine: about BUDGET_S, close enough that
run-to-run variance in CI could fail them. The limit they are held to until they are cut further."""
TIMES: dict[str, float] = {}


@pytest.mark.parametrize("nb", NBS, ids=[p.stem for p in NBS])
def test_notebook_runs_within_its_budget(nb):
    t0 = time.perf_counter()
    r = subprocess.run([str(Path(sys.executable).parent / "nbdev-test"), str(nb)], capture_output=True, text=True,
                       cwd=nb.parent.parent, timeout=1800)
    TIMES[nb.stem] = secs = time.perf_counter() - t0
    assert r.returncode == 0, f"{nb.name} failed:\n{(r.stdout + r.stderr)[-6000:]}"
    budget = OVER_BUDGET_S.get(nb.stem, BUDGET_S)
    assert secs <= budget, f"{nb.name} took {secs:.0f} s, over its {budget} s budget on the cpu profile: make its runs smaller"
