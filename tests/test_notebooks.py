"""Every notebook runs top to bottom (cpu profile, offline), as `nbdev-test` runs it: the book's own asserts are tests."""
import subprocess
import sys
from pathlib import Path

import pytest

NBS = sorted((Path(__file__).resolve().parent.parent / "nbs").glob("*.ipynb"))


@pytest.mark.parametrize("nb", NBS, ids=[p.stem for p in NBS])
def test_notebook_runs(nb):
    r = subprocess.run([str(Path(sys.executable).parent / "nbdev-test"), str(nb)], capture_output=True, text=True,
                       cwd=nb.parent.parent, timeout=1800)
    assert r.returncode == 0, f"{nb.name} failed:\n{(r.stdout + r.stderr)[-6000:]}"
