"""The GPU check (ftbook/recorded/gpu_check.py) is ready the day a card is: its dry run runs every part on the CPU here,
and its table of configurations covers every chapter that has a `#| gpu` cell."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ftbook.recorded.gpu_check import CELLS

NBS = Path(__file__).resolve().parent.parent / "nbs"


def gpu_chapters() -> set[str]:
    "Notebooks with a code cell flagged `#| gpu`."
    return {nb.stem for nb in NBS.glob("*.ipynb")
            if any(c["cell_type"] == "code" and re.match(r"#\|\s*gpu\b", "".join(c["source"]))
                   for c in json.loads(nb.read_text(encoding="utf-8"))["cells"])}


def test_every_gpu_cell_has_a_check():
    chapters = gpu_chapters()
    assert chapters, "no #| gpu cell found: the test reads the wrong folder"
    missing = chapters - set(CELLS)
    assert not missing, f"chapters with a #| gpu cell and no entry in gpu_check.CELLS (add its configuration there): {sorted(missing)}"
    gone = set(CELLS) - chapters
    assert not gone, f"gpu_check.CELLS names chapters that have no #| gpu cell: {sorted(gone)}"


@pytest.mark.slow
def test_dry_run(tmp_path):
    out = tmp_path / "gpu_check.json"
    r = subprocess.run([sys.executable, "-m", "ftbook.recorded.gpu_check", "--dry", "--out", str(out)],
                       capture_output=True, text=True, cwd=tmp_path, timeout=900, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    print(r.stdout[-3000:])
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    res = json.loads(out.read_text())
    assert res["dry"] and "dry run" in res["machine"]
    runs = {(p["notebook"], p["run"]) for p in res["plans"]}
    want = {(nb, name) for nb, cells in CELLS.items() for name, *_ in cells}
    assert runs == want, f"configurations not planned: {sorted(want - runs)}"
    assert all(p["fits"] and isinstance(p["measured_gib"], float) for p in res["plans"]), res["plans"]
    arms = {a["name"]: a for a in res["bench"]["arms"]}
    assert set(arms) == {"trl_defaults", "ftbook"} and all(a["tokens_per_s"] > 0 for a in arms.values())
    launch = res["launch"]
    assert (launch["config"], launch["processes"], launch["returncode"]) == ("ddp", 2, 0), launch
    assert launch["metrics"]["train_steps"] == 4, launch["metrics"]
