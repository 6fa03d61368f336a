"""Every test runs offline, on the cpu profile, with a temporary Hugging Face home.

The variables are set in `os.environ` so that the subprocesses the tests start (the CLI, nbdev-test) inherit them.
FTBOOK_CACHE (converted and generated models) is kept if the caller set it, so that one conversion of the SmolLM2
GGUF file serves the whole run; otherwise it is temporary too.
"""
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

_tmp = Path(tempfile.mkdtemp(prefix="ftbook-tests-"))
os.environ.update({"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(_tmp / "hf"),
                   "FTBOOK_PROFILE": "cpu", "MPLBACKEND": "Agg", "TOKENIZERS_PARALLELISM": "false"})
os.environ.setdefault("FTBOOK_CACHE", str(_tmp / "ftbook-cache"))  # under xdist, set once by the main process
THREADS = None
"""Under `pytest -n N`, each worker and the processes it starts use cores // N threads (1 each with `-n 2` on 2 cores),
counting the cores this process may run on.
On this project's 2-core x86_64 CI machine, two workers with 2 threads each ran a training workload (2 AdamW
steps of a random MiniLM-sized BERT at batch 16 x 128, six times) 2.7x slower than one worker alone;
with 1 thread each they finished the two in 1.3x its time. Set before torch is imported (the test modules import it, not this file)."""
if os.environ.get("PYTEST_XDIST_WORKER"):
    THREADS = max(1, len(os.sched_getaffinity(0)) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    os.environ.update({"OMP_NUM_THREADS": str(THREADS), "MKL_NUM_THREADS": str(THREADS)})

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


def _once(tmp_path_factory, name: str, make) -> Path:
    """`make(folder)` run once per test run into a folder both `pytest -n 2` workers share, under a lock; the folder.
    The workers' temporary folders share a parent, and xdist's run id keeps a later run from reusing it."""
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    base = tmp_path_factory.getbasetemp()
    base = base.parent / f"shared-{run}" if run else base
    base.mkdir(exist_ok=True)
    with open(base / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = base / name
        if not done.exists():
            work = base / f"{name}.partial"
            shutil.rmtree(work, ignore_errors=True)
            make(work)
            work.rename(done)
    return done


def _sh(*cmd):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{(r.stdout + r.stderr)[-4000:]}"


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    "ftbook's wheel, built once from this clone (without its dependencies)."
    build = lambda out: _sh("env", f"PYTHON={sys.executable}", "bash", ROOT / "tools" / "build_wheel.sh", out)  # as .ci/lower-bounds builds it
    return next(_once(tmp_path_factory, "dist", build).glob("ftbook-*.whl"))


@pytest.fixture(scope="session")
def wheel_site(tmp_path_factory, wheel) -> Path:
    """A folder holding only the installed wheel (ftbook and its `ftbook` command), for PYTHONPATH: a process started
    with it imports ftbook as `pip install ftbook` ships it, and the rest (torch, transformers) from this environment.
    Python searches PYTHONPATH before the editable install's finder."""
    # compiled as pip installs it: where PYTHONDONTWRITEBYTECODE is set (as on the CI machine), every notebook and every
    # process it starts would otherwise compile ftbook again
    return _once(tmp_path_factory, "wheel-site", lambda out: _sh(sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                                                                "--target", out, wheel))


def run_cli(*args, cwd=None, timeout=900, fresh=False):
    """Run the `ftbook` command; returns a CompletedProcess (exit status, stdout, stderr) either way.

    By default in this process: `ftbook.cli.main` with stdout and stderr captured, an exception printed as the
    traceback a console would show (status 1), and argparse's exits kept (status 2). A new interpreter costs about
    8 s on 2 cores, mostly importing torch, and most calls here end in one line. `fresh=True` starts one: for a test
    that needs the process's environment (PYTHONPATH, a network guard) or a clean one. `timeout` applies to a fresh
    process only."""
    import subprocess
    if fresh:
        return subprocess.run([sys.executable, "-c", "import sys; from ftbook.cli import main; sys.exit(main())", *map(str, args)],
                              capture_output=True, text=True, cwd=cwd, timeout=timeout)
    import contextlib, io, traceback
    from ftbook.cli import main
    out, err, here = io.StringIO(), io.StringIO(), os.getcwd()
    try:
        if cwd: os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try: rc = main([str(a) for a in args])
            except SystemExit as e: rc = e.code if isinstance(e.code, int) else 0 if e.code is None else 1
            except Exception: traceback.print_exc(); rc = 1
    finally:
        os.chdir(here)
    return subprocess.CompletedProcess(["ftbook", *map(str, args)], rc, out.getvalue(), err.getvalue())


SHARED_FIXTURES = {"test_classify", "test_docs", "test_dpo", "test_fast", "test_lora", "test_models", "test_pitfalls",
                   "test_selfsup"}
"Modules whose tests share a module-scoped fixture (a trained model, a built site): their tests run on one worker."
HEAVY = ("tests/test_cli.py::test_quick_tour", "tests/test_notebooks.py", "tests/test_scale.py", "tests/test_resume.py",
         "tests/test_docs.py")
"Started first under `-n 2`, the heavy ones in this order, so that neither worker is left with a long test at the end while the other idles."


def pytest_collection_modifyitems(items):
    "Heavy tests first (HEAVY's order), then the other slow ones, then the fast lane; a stable sort keeps the rest in place."
    def rank(item):
        hit = next((i for i, h in enumerate(HEAVY) if item.nodeid.startswith(h)), None)
        return (0, hit) if hit is not None else (1, 0) if item.get_closest_marker("slow") else (2, 0)
    items.sort(key=rank)


def scope_of(nodeid: str) -> str:
    "The unit of work `pytest -n N` hands to one worker: a SHARED_FIXTURES module's tests together, any other test alone."
    module = nodeid.split("::", 1)[0]
    return module if Path(module).stem in SHARED_FIXTURES else nodeid


def pytest_xdist_make_scheduler(config, log):
    """Under `pytest -n N` (xdist's default `--dist load`): units of work (scope_of) go out in the collection's order,
    heavy first. Another `--dist` is left to xdist."""
    if config.getvalue("dist") != "load": return None
    from xdist.scheduler import LoadScopeScheduling

    class HeavyFirst(LoadScopeScheduling):
        def _split_scope(self, nodeid): return scope_of(nodeid)

    config.option.loadscopereorder = False  # xdist would otherwise put the units with the most tests first
    return HeavyFirst(config, log)


STAGES = ("notebooks", "docs", "slow tests", "fast lane")
RESULTS: dict[str, dict] = {}
"nodeid -> its stage, its seconds (setup + call + teardown) and the figures it recorded; filled on the main process."


def stage(nodeid: str, keywords) -> str:
    "Where a test's time is counted in the CI summary: its notebook, docs, other slow test or fast-lane share."
    if nodeid.startswith("tests/test_notebooks.py"): return "notebooks"
    if nodeid.startswith("tests/test_docs.py"): return "docs"
    return "slow tests" if "slow" in keywords else "fast lane"


def pytest_runtest_logreport(report):
    "Add each phase's seconds and recorded figures to RESULTS (under xdist, the workers' reports arrive here)."
    r = RESULTS.setdefault(report.nodeid, {"stage": stage(report.nodeid, report.keywords), "seconds": 0.0, "props": {}})
    r["seconds"] += report.duration
    r["props"].update(dict(report.user_properties))


def pytest_terminal_summary(terminalreporter):
    """Where the time went: seconds per stage (summed over tests; with `-n 2` two run at once, so the stages add up to
    about twice the wall time), each notebook's wall and CPU seconds, and each quick-tour recipe's seconds."""
    if not RESULTS: return
    tour = next((r["props"]["tour_seconds"] for r in RESULTS.values() if "tour_seconds" in r["props"]), None)
    if tour:
        terminalreporter.section("quick tour: seconds per recipe (test_cli.py)")
        for name, secs in sorted(tour.items(), key=lambda kv: -kv[1]):
            terminalreporter.write_line(f"{secs:7.1f} s  {name}")
    nbs = {nid.split("[")[-1].rstrip("]"): r["props"] for nid, r in RESULTS.items() if "notebook_seconds" in r["props"]}
    if nbs:
        terminalreporter.section("notebook times (cpu profile; reported, not asserted)")
        terminalreporter.write_line("   wall      cpu  notebook")
        for name, p in sorted(nbs.items(), key=lambda kv: -kv[1]["notebook_seconds"]):
            terminalreporter.write_line(f"{p['notebook_seconds']:7.1f} s {p['notebook_cpu_seconds']:7.1f} s  {name}")
    terminalreporter.section("where the test time went")
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT") or getattr(terminalreporter.config.option, "numprocesses", None) or 1
    for st in STAGES:
        rs = [r for r in RESULTS.values() if r["stage"] == st]
        if rs: terminalreporter.write_line(f"{sum(r['seconds'] for r in rs):8.1f} s  {st} ({len(rs)} tests)")
    terminalreporter.write_line(f"{sum(r['seconds'] for r in RESULTS.values()):8.1f} s  in all, over {workers} worker(s)")
