"""The wheel builds, installs into a fresh virtual environment with its pinned dependencies, and runs."""
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def sh(*cmd, cwd=None, timeout=1200):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, cwd=cwd, timeout=timeout)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{(r.stdout + r.stderr)[-4000:]}"
    return r.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    sh(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", out, ROOT)
    return next(out.glob("ftbook-*.whl"))


def test_wheel_ships_data_metrics_and_modules(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for f in ["ftbook/cli.py", "ftbook/models.py", "ftbook/data/reviews.jsonl", "ftbook/data/README.md",
              "ftbook/data/domain_sailing.txt", "ftbook/metric_modules/accuracy/accuracy.py",
              "ftbook/metric_modules/perplexity/perplexity.py"]:
        assert f in names, f
    meta = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert "Requires-Dist: torch==" in meta and "Requires-Dist: transformers==" in meta


def test_fresh_venv_installs_and_runs_ftbook_models(wheel, tmp_path):
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    torch_pin = next(d for d in cfg["project"]["dependencies"] if re.match(r"torch\b", d))
    venv = tmp_path / "venv"
    sh(sys.executable, "-m", "venv", venv)
    py, pip = venv / "bin" / "python", [venv / "bin" / "python", "-m", "pip", "install", "-q"]
    sh(*pip, torch_pin)
    sh(*pip, wheel)
    sh(*pip, "--no-deps", *cfg["tool"]["ftbook"]["install-no-deps"])
    where = sh(py, "-c", "import ftbook; print(ftbook.__file__)", cwd=tmp_path)
    assert where.startswith(str(venv)), where
    out = sh(venv / "bin" / "ftbook", "models", cwd=tmp_path)
    rows = {l.split()[0]: l.split() for l in out.splitlines()[1:] if l.strip()}
    assert rows["smollm2-135m-instruct"][2] == "yes" and rows["minilm-l6"][2] == "yes"
