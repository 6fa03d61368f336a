"""Every notebook runs top to bottom (cpu profile, offline) the way a user runs it: copied alone into an empty folder,
with ftbook installed, so a read of `../tools` or any other repository path fails the test. The book's own asserts are
tests. Cells flagged `#| notest` or `#| gpu` are skipped, as `nbdev-test` skips them, except the closing export cell:
"Run all" runs it, so here it runs too, and outside the repository it must do nothing.

A notebook's time is reported, not asserted. The summary at the end of the run (conftest.py) lists each notebook's
wall seconds and the CPU seconds of the process that ran it, slowest first, so a reviewer sees a notebook that grew.
No time limit is checked (the 1800 s timeout only stops a hung notebook), because none can be set that does not
flake: the same unchanged notebook (06) took 103 s, 134 s and 178 s in three CI runs on the same machine type, and
under `pytest -n 2` a notebook shares the machine with whatever the other worker runs. What keeps `.ci/run` short is
the size of each notebook's runs; the CI log's per-stage times show where it goes."""
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
NBS = sorted((Path(__file__).resolve().parent.parent / "nbs").glob("*.ipynb"))


def child_cpu_seconds() -> float:
    "User and system CPU seconds of this process's finished children: the process that runs the notebook, and what it waited for."
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


RUN = """import sys
from nbdev.test import test_nb
ok, _ = test_nb(sys.argv[1], skip_flags=["notest", "gpu"], profile=False)  # the flags of pyproject.toml's tst_flags
sys.exit(0 if ok else 1)"""


def alone(nb: Path, folder: Path) -> Path:
    "A copy of `nb` in `folder` (empty), its closing export cell no longer `notest`: what a user opens and runs."
    book = json.loads(nb.read_text(encoding="utf-8"))
    for c in book["cells"]:
        if c["cell_type"] == "code" and "nbdev_export()" in "".join(c["source"]):
            c["source"] = [l for l in c["source"] if l.strip() != "#| notest"]
    folder.mkdir()
    (folder / nb.name).write_text(json.dumps(book), encoding="utf-8")
    return folder / nb.name


@pytest.mark.parametrize("nb", NBS, ids=[p.stem for p in NBS])
def test_notebook_runs(nb, tmp_path, record_property):
    copy = alone(nb, tmp_path / "alone")
    t0, cpu0 = time.perf_counter(), child_cpu_seconds()
    r = subprocess.run([sys.executable, "-c", RUN, str(copy)], capture_output=True, text=True, cwd=copy.parent, timeout=1800)
    record_property("notebook_seconds", time.perf_counter() - t0)  # printed at the end of the run (conftest.py)
    record_property("notebook_cpu_seconds", child_cpu_seconds() - cpu0)
    assert r.returncode == 0, f"{nb.name} failed:\n{(r.stdout + r.stderr)[-6000:]}"
