"""The GPU check (ftbook/recorded/gpu_check.py) is ready the day a card is: its dry run runs every part on the CPU here,
and its table of configurations covers every chapter that has a `#| gpu` cell."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import ast

import pytest
import torch

from ftbook.config import get_profile
from ftbook.recorded.gpu_check import CELLS, plans
from test_gpu_plans import CELLS as NOTEBOOK_GPU_CELLS, _namespace, _split, _src

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


@pytest.mark.parametrize("profile", ["colab", "gpu"])
def test_each_entry_plans_what_its_cell_plans(profile, monkeypatch):
    "CELLS repeats the cells' configurations: on each GPU profile, its plans are the ones the cells make (tests/test_gpu_plans.py runs the cells' plan statements)."
    if torch.cuda.is_available(): pytest.skip("plans against the nominal cards are made on a machine without a GPU")
    monkeypatch.setenv("FTBOOK_PROFILE", profile)
    ours: dict[str, list[str]] = {}
    for nb, _, _, plan, _ in plans(get_profile(profile)): ours.setdefault(nb, []).append(plan.line)
    for stem, idx in NOTEBOOK_GPU_CELLS:
        if not CELLS[stem]: continue  # 01 (inference) and 10a (the bench part): no training configuration to repeat
        config, _, names = _split(_src(json.loads((NBS / f"{stem}.ipynb").read_text())["cells"][idx]))
        ns = _namespace(stem)
        exec(compile(ast.Module(body=config, type_ignores=[]), f"{stem} gpu cell", "exec"), ns)
        assert sorted(ours[stem]) == sorted(ns[n].line for n in names), f"{stem}: gpu_check.CELLS plans differ from the cell's"


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
