"""Every notebook runs top to bottom (cpu profile, offline) the way a user runs it: copied alone into an empty folder,
with ftbook installed, so a read of `../tools` or any other path relative to the notebook's folder fails the test. (CI
installs ftbook editable, so a path built from `ftbook.__file__` could still reach the clone: a second test reads the
code cells for such paths.) The book's own asserts are tests. Cells flagged `#| notest` or `#| gpu` are skipped, as `nbdev-test` skips them, except the closing export cell:
"Run all" runs it, so here it runs too, and outside the repository it must do nothing.

A notebook's time is reported, not asserted. The summary at the end of the run (conftest.py) lists each notebook's
wall seconds and the CPU seconds of the process that ran it, slowest first, so a reviewer sees a notebook that grew.
No time limit is checked (the 1800 s timeout only stops a hung notebook), because none can be set that does not
flake: the same unchanged notebook (06) took 103 s, 134 s and 178 s in three CI runs on the same machine type, and
under `pytest -n 2` a notebook shares the machine with whatever the other worker runs. What keeps `.ci/run` short is
the size of each notebook's runs; the CI log's per-stage times show where it goes."""
import json
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest
from nbdev.config import is_nbdev

pytestmark = pytest.mark.slow
NBS = sorted((Path(__file__).resolve().parent.parent / "nbs").glob("*.ipynb"))


def child_cpu_seconds() -> float:
    "User and system CPU seconds of this process's finished children: the process that runs the notebook, and what it waited for."
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


RUN = """import sys
from nbdev.config import get_config
from nbdev.test import test_nb
cfg = get_config(sys.argv[2])  # the repository's settings, as nbdev-test would read them there
ok, _ = test_nb(sys.argv[1], skip_flags=cfg.tst_flags.split(), profile=False, cell_timeout=int(cfg.cell_timeout))
sys.exit(0 if ok else 1)"""


def alone(nb: Path, folder: Path) -> Path:
    "A copy of `nb` in `folder` (empty), its closing export cell no longer `notest`: what a user opens and runs."
    book = json.loads(nb.read_text(encoding="utf-8"))
    for c in book["cells"]:
        if c["cell_type"] == "code" and "nbdev_export()" in "".join(c["source"]):
            c["source"] = [l for l in c["source"] if l.strip() != "#| notest"]
    folder.mkdir()
    assert not is_nbdev(folder), f"{folder} lies inside an nbdev project: its closing cell would export there"
    (folder / nb.name).write_text(json.dumps(book), encoding="utf-8")
    return folder / nb.name


@pytest.mark.parametrize("nb", NBS, ids=[p.stem for p in NBS])
def test_notebook_runs(nb, tmp_path, record_property):
    copy = alone(nb, tmp_path / "alone")
    t0, cpu0 = time.perf_counter(), child_cpu_seconds()
    r = subprocess.run([sys.executable, "-c", RUN, str(copy), str(nb.parent)], capture_output=True, text=True, cwd=copy.parent,
                       timeout=1800)
    record_property("notebook_seconds", time.perf_counter() - t0)  # printed at the end of the run (conftest.py)
    record_property("notebook_cpu_seconds", child_cpu_seconds() - cpu0)
    assert r.returncode == 0, f"{nb.name} failed:\n{(r.stdout + r.stderr)[-6000:]}"


REPO_PATH = re.compile(r"""\.\./|parents\[\d+\]|["']tools/|["']nbs/""")


@pytest.mark.parametrize("nb", NBS, ids=[p.stem for p in NBS])
def test_no_code_cell_reads_the_repository(nb):
    "A path into the clone (`../`, `.parents[1]`, `tools/`, `nbs/`) works in CI's editable install and fails in Colab."
    cells = [c for c in json.loads(nb.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code"]
    bad = [line.strip() for c in cells for line in "".join(c["source"]).splitlines()
           if REPO_PATH.search(line) and not line.lstrip().startswith("#")]
    assert not bad, f"{nb.name} reads the repository; ship the file in the package and read it from there: {bad}"
