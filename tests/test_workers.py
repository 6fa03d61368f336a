"""How `pytest -n 2` splits the suite (conftest.py): workers do not oversubscribe the cores, and a module's shared
fixture is built once."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import conftest

TESTS = Path(__file__).resolve().parent


@pytest.mark.skipif(not os.environ.get("PYTEST_XDIST_WORKER"), reason="checks the worker split of `pytest -n N`")
def test_each_worker_and_the_processes_it_starts_use_their_share_of_the_cores():
    import torch
    share = max(1, len(os.sched_getaffinity(0)) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    assert torch.get_num_threads() == share
    r = subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads())"], capture_output=True, text=True)
    assert r.returncode == 0 and int(r.stdout) == share, r.stderr  # notebooks and CLI runs inherit the limit


def test_every_module_with_a_module_fixture_runs_on_one_worker():
    "A module-scoped fixture (a trained model, a built site) would be built once per worker if its tests were split."
    shared = {p.stem for p in TESTS.glob("test_*.py") if re.search(r"fixture\(scope=\"(module|package)\"", p.read_text())}
    assert shared == conftest.SHARED_FIXTURES


def test_shared_modules_go_to_one_worker_and_other_tests_one_by_one():
    assert conftest.scope_of("tests/test_lora.py::test_a") == conftest.scope_of("tests/test_lora.py::test_b") == "tests/test_lora.py"
    assert conftest.scope_of("tests/test_notebooks.py::test_notebook_runs[03_pitfalls]") != conftest.scope_of(
        "tests/test_notebooks.py::test_notebook_runs[04_selfsup]")


def test_heavy_tests_are_handed_out_first():
    class Item:
        def __init__(self, nodeid, slow): self.nodeid, self.slow = nodeid, slow
        def get_closest_marker(self, name): return name == "slow" and self.slow or None
    items = [Item("tests/test_data.py::test_x", False), Item("tests/test_sft.py::test_long", True),
             Item("tests/test_notebooks.py::test_notebook_runs[00_config]", True),
             Item("tests/test_cli.py::test_quick_tour_offline", True)]
    conftest.pytest_collection_modifyitems(items)
    assert [i.nodeid.split("::")[0] for i in items] == ["tests/test_cli.py", "tests/test_notebooks.py", "tests/test_sft.py",
                                                        "tests/test_data.py"]


def test_no_tested_notebook_rewrites_the_package():
    """nbdev's export truncates and rewrites every module of ftbook/. Two notebooks tested side by side, or one beside a
    test importing ftbook, could read a half-written module, so the export cell carries `#| notest` (nbdev-test skips
    it). `.ci/run` checks the export once, before the tests."""
    import json
    from nbdev.config import get_config
    from nbdev.test import nb_test_cells
    assert "notest" in get_config().tst_flags.split()
    for nb in sorted((TESTS.parent / "nbs").glob("*.ipynb")):
        tested = [c.source for c in nb_test_cells(nb, skip_flags=get_config().tst_flags.split())]
        assert not [s for s in tested if "nbdev_export" in s], f"{nb.name}: mark its export cell `#| notest`"
        assert json.loads(nb.read_text())["cells"]  # the notebook was read
