"""Every notebook runs top to bottom (cpu profile, offline) the way a user runs it: copied alone into an empty folder,
with ftbook imported from its wheel (the `wheel_site` fixture, conftest.py), so a read of `../tools` or any other path
relative to the notebook's folder fails the test, and so does a file the chapter needs that the wheel does not ship.
(A second test reads the code cells for paths into the clone, which a Colab user does not have.) The book's own
asserts are tests. Cells flagged `#| notest` are skipped, as `nbdev-test`
skips them, except the closing export cell: "Run all" runs it, so here it runs too, and outside the repository it must
do nothing.

Each `#| gpu` cell runs three times, where it stands in the notebook. First as "Run all" runs it on a machine without a
GPU: it must print one line and nothing else. Then as a dry run of the `colab` profile and of the `gpu` profile
(`FTBOOK_GPU_DRY`, chapter 0): the same code on random-init two-layer models of the same architectures, capped at
two steps, so a GPU cell that raises fails here on every push. The dry runs check code paths; what they measure is not read.

A notebook's time is reported, not asserted. The summary at the end of the run (conftest.py) lists each notebook's
wall seconds and the CPU seconds of the process that ran it, slowest first, so a reviewer sees a notebook that grew.
No time limit is checked (the 1800 s timeout only stops a hung notebook), because none can be set that does not
flake: the same unchanged notebook (06) took 103 s, 134 s and 178 s in three CI runs on the same machine type, and
under `pytest -n 2` a notebook shares the machine with whatever the other worker runs. What keeps `.ci/run` short is
the size of each notebook's runs; the CI log's per-stage times show where it goes."""
import json
import os
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


RUN = """import os, sys, time
import torch
from execnb.shell import CaptureShell
from nbdev.config import get_config
from nbdev.process import NBProcessor
from nbdev.test import _skip_cell
fn, cfg = sys.argv[1], get_config(sys.argv[2])  # the repository's settings, as nbdev-test would read them there
import ftbook
if not ftbook.__file__.startswith(sys.argv[3]): sys.exit(f"ftbook was imported from {ftbook.__file__}, not from the wheel in {sys.argv[3]}")
skip = [f for f in cfg.tst_flags.split() if f != "gpu"]
nb = NBProcessor(fn, rm_directives=False, process=True).nb
skipped, k = _skip_cell(nb, skip), CaptureShell(fn, profile=False)
os.environ["IN_TEST"] = "1"

def run(cell, dry=None):
    if dry: os.environ["FTBOOK_GPU_DRY"] = dry
    t0 = time.perf_counter()
    try: k.cell(cell, timeout=int(cfg.cell_timeout))
    finally: os.environ.pop("FTBOOK_GPU_DRY", None)
    if k.exc:
        sys.stderr.write((k.prettytb(fname=fn) or repr(k.exc)) + "\\n")
        sys.exit(f"cell {cell.idx_} failed" + (f" in the {dry} dry run" if dry else ""))
    return time.perf_counter() - t0

os.chdir(os.path.dirname(os.path.abspath(fn)))  # the notebook's own folder, as Jupyter starts it
for cell in nb.cells:
    if skipped(cell): continue
    if "gpu" not in (getattr(cell, "directives_", {}) or {}): run(cell); continue
    if not torch.cuda.is_available():  # what "Run all" does on a laptop: one line, nothing else
        run(cell)
        said = "".join(o.get("text", "") if isinstance(o.get("text", ""), str) else "".join(o["text"]) for o in cell.outputs)
        kinds = {o.get("output_type") for o in cell.outputs}
        if kinds != {"stream"} or len(said.strip().splitlines()) != 1 or "needs a GPU" not in said:
            sys.exit(f"gpu cell {cell.idx_} without a GPU: want one line saying it needs a GPU and no other output, got {kinds}: {said[-500:]!r}")
        if k.user_ns.get("gpu_profile", "unset") is not None: sys.exit(f"gpu cell {cell.idx_} without a GPU: its guard did not set gpu_profile to None")
    for dry in ("colab", "gpu"):
        k.user_ns.pop("gpu_profile", None)
        print(f"gpu cell {cell.idx_}: {dry} dry run {run(cell, dry):.1f} s")
        got = k.user_ns.get("gpu_profile")  # the guard's profile: proof that the cell's body ran, on the dry profile asked for
        if got is None or not got.dry or got.name != dry: sys.exit(f"gpu cell {cell.idx_}: the {dry} dry run did not enter the cell's body (gpu_profile={got!r})")"""


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
def test_notebook_runs(nb, tmp_path, record_property, wheel_site):
    copy = alone(nb, tmp_path / "alone")
    t0, cpu0 = time.perf_counter(), child_cpu_seconds()
    env = {k: v for k, v in os.environ.items() if k != "FTBOOK_GPU_DRY"}  # the script sets it around each dry run, and only there
    env["PYTHONPATH"] = str(wheel_site)  # the notebook, and every process it starts (`ftbook`, `accelerate launch`), import the wheel's ftbook
    r = subprocess.run([sys.executable, "-c", RUN, str(copy), str(nb.parent), str(wheel_site)], capture_output=True, text=True,
                       cwd=copy.parent, timeout=1800, env=env)
    record_property("notebook_seconds", time.perf_counter() - t0)  # printed at the end of the run (conftest.py)
    record_property("notebook_cpu_seconds", child_cpu_seconds() - cpu0)
    assert r.returncode == 0, f"{nb.name} failed:\n{(r.stdout + r.stderr)[-6000:]}"
    print(r.stdout)  # the dry runs' times


REPO_PATH = re.compile(r"""\.\./|parents\[\d+\]|["']tools/|["']nbs/""")


@pytest.mark.parametrize("nb", NBS, ids=[p.stem for p in NBS])
def test_no_code_cell_reads_the_repository(nb):
    "A path into the clone (`../`, `.parents[1]`, `tools/`, `nbs/`) works in CI's editable install and fails in Colab."
    cells = [c for c in json.loads(nb.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code"]
    bad = [line.strip() for c in cells for line in "".join(c["source"]).splitlines()
           if REPO_PATH.search(line) and not line.lstrip().startswith("#")]
    assert not bad, f"{nb.name} reads the repository; ship the file in the package and read it from there: {bad}"
