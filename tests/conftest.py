"""Every test runs offline, on the cpu profile, with a temporary Hugging Face home.

The variables are set in `os.environ` so that the subprocesses the tests start (the CLI, nbdev-test) inherit them.
FTBOOK_CACHE (converted and generated models) is kept if the caller set it, so that one conversion of the SmolLM2
GGUF file serves the whole run; otherwise it is temporary too.
"""
import os
import sys
import tempfile
from pathlib import Path

import pytest

_tmp = Path(tempfile.mkdtemp(prefix="ftbook-tests-"))
os.environ.update({"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(_tmp / "hf"),
                   "FTBOOK_PROFILE": "cpu", "MPLBACKEND": "Agg", "TOKENIZERS_PARALLELISM": "false"})
os.environ.setdefault("FTBOOK_CACHE", str(_tmp / "ftbook-cache"))

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


def run_cli(*args, cwd=None, timeout=900):
    "Run the `ftbook` command in a subprocess; returns the CompletedProcess."
    import subprocess
    return subprocess.run([sys.executable, "-c", "import sys; from ftbook.cli import main; sys.exit(main())", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=timeout)


def pytest_terminal_summary(terminalreporter):
    "Print how long each notebook took (test_notebooks.py), slowest first, against its budget; and each quick-tour recipe."
    tc = sys.modules.get("test_cli")
    if tc is not None and tc.TOUR_TIMES:
        terminalreporter.section("quick tour: seconds per recipe (test_cli.py)")
        for name, secs in sorted(tc.TOUR_TIMES.items(), key=lambda kv: -kv[1]):
            terminalreporter.write_line(f"{secs:7.1f} s  {name}")
    tn = sys.modules.get("test_notebooks")
    if tn is None or not tn.TIMES: return
    terminalreporter.section("notebook times (cpu profile)")
    factor = tn.SPEED.get("factor", 1.0)
    terminalreporter.write_line(f"reference workload: {tn.SPEED.get('measured_s', float('nan')):.2f} s against "
                                f"{tn.REFERENCE_S} s on the reference machine: budgets x {factor:.2f}")
    for name, secs in sorted(tn.TIMES.items(), key=lambda kv: -kv[1]):
        budget = tn.OVER_BUDGET_S.get(name, tn.BUDGET_S) * factor
        terminalreporter.write_line(f"{secs:7.1f} s  {name}  (budget {budget:.0f} s){'  OVER' if secs > budget else ''}")
