"""One helper that proves a training verb resumes exactly after being killed.

    assert_resumes_exactly(tmp_path, ["classify", "--model", "tiny-bert", ...])

runs the verb three times: once uninterrupted; once killed with SIGKILL at a random step after its first complete
checkpoint; and once more on the killed run's folder with `--resume`. The killed run and the resumed one are real
subprocesses, so the resume starts from nothing but what the killed process left on disk. The uninterrupted reference
runs in the test's own process (conftest.run_cli), which has already imported torch: that saves one interpreter start
(about 6 s on 2 cores) per test, and a difference between the two kinds of process would show as unequal weights. It then asserts that the
resumed model's weights equal the uninterrupted model's (exactly, or within `atol` where a kernel is
nondeterministic) and, from the FTBOOK_TRACE_BATCHES record of which examples each step trained on, that the killed
and resumed runs together trained on exactly the uninterrupted run's examples, in the same order: nothing skipped,
nothing seen twice. The verb must accept `--out DIR` and `--resume`, checkpoint into `DIR/checkpoints` and save its
model into `DIR/model`. With `launcher` (e.g. `accelerate launch ... -m ftbook`) every run is that command, so a
distributed run is killed (its whole process group) and resumed the same way; every process's trace is compared.
"""
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

from ftbook.train import CKPT_MARKER

CLI = [sys.executable, "-c", "import sys; from ftbook.cli import main; sys.exit(main())"]


def _run(args, trace, launcher=None):
    "Start the verb with its batches traced to `trace` and its output logged beside it (a pipe could fill and block it)."
    env = {**os.environ, "FTBOOK_TRACE_BATCHES": str(trace)}
    with open(trace.with_suffix(".log"), "w") as log:  # its own process group: a kill reaches every process of a launch
        cmd = (launcher() if callable(launcher) else launcher) or CLI
        p = subprocess.Popen(cmd + [str(a) for a in args], env=env, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True)
    p.log = trace.with_suffix(".log")
    return p


def _run_here(args, trace):
    "The verb in this process (conftest.run_cli), its batches traced to `trace`."
    from conftest import run_cli
    before = os.environ.get("FTBOOK_TRACE_BATCHES")
    os.environ["FTBOOK_TRACE_BATCHES"] = str(trace)
    try: r = run_cli(*args)
    finally:
        if before is None: del os.environ["FTBOOK_TRACE_BATCHES"]
        else: os.environ["FTBOOK_TRACE_BATCHES"] = before
    assert r.returncode == 0, f"exit {r.returncode}:\n{(r.stdout + r.stderr)[-4000:]}"


def _kill_tree(pid: int):
    "SIGKILL a process and every process under it (a launcher's workers may run in sessions of their own)."
    import psutil
    children = psutil.Process(pid).children(recursive=True)
    os.kill(pid, signal.SIGKILL)  # reaped by the caller's `wait`, which reads the kill from its exit status
    for q in children:
        try: q.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess: pass
    psutil.wait_procs(children, timeout=30)


def _finish(p, timeout):
    p.wait(timeout=timeout)
    assert p.returncode == 0, f"exit {p.returncode}:\n{p.log.read_text()[-4000:]}"


def _steps(trace: Path, rank: int = 0) -> list[tuple[int, str]]:
    "(step, fingerprints) per complete line of a trace (of process `rank` of a distributed run)."
    trace = trace if rank == 0 else Path(f"{trace}.rank{rank}")
    if not trace.exists(): return []
    lines = trace.read_text().split("\n")[:-1]  # a line cut by the kill has no newline yet
    return [(int(s), f) for s, f in (l.split("\t", 1) for l in lines)]


def _weights(model_dir: Path) -> dict[str, torch.Tensor]:
    out = {}
    for f in sorted(model_dir.glob("*.safetensors")): out.update(load_file(f))
    assert out, f"no safetensors weights in {model_dir}"
    return out


def _complete_checkpoints(ckpts: Path) -> list[int]:
    return sorted(int(p.name.rsplit("-", 1)[1]) for p in ckpts.glob("checkpoint-*") if (p / CKPT_MARKER).exists())


def assert_resumes_exactly(tmp_path: Path, verb_args: list, seed: int = 0, atol: float = 0.0, timeout: float = 900,
                           launcher=None, processes: int = 1,  # launcher: a command list, or a function returning one
                           uninterrupted: Path | None = None):  # a finished run of the same arguments, traced to
                                                                 # UNINTERRUPTED.trace: used instead of running one
    "Run `ftbook *verb_args` uninterrupted, killed-then-resumed, and compare weights and trained examples."
    full, cut = uninterrupted or tmp_path / "uninterrupted", tmp_path / "killed"
    full_trace = full.with_suffix(".trace") if uninterrupted else tmp_path / "full.trace"
    if uninterrupted is None and launcher is None: _run_here([*verb_args, "--out", full], full_trace)
    elif uninterrupted is None: _finish(_run([*verb_args, "--out", full], full_trace, launcher), timeout)
    reference = _steps(full_trace)
    total = max(s for s, _ in reference)

    p = _run([*verb_args, "--out", cut], tmp_path / "cut.trace", launcher)
    deadline, kill_at = time.time() + timeout, None
    while p.poll() is None and time.time() < deadline:
        done = _complete_checkpoints(cut / "checkpoints")
        if done and kill_at is None:
            assert done[0] + 1 < total, "the verb's first checkpoint is too close to its last step: lower --save-steps"
            # well before the end: the kill lands a step or two after the trace shows `kill_at`
            kill_at = random.Random(seed).randint(done[0] + 1, max(done[0] + 1, total - 3))
        if kill_at and any(s >= kill_at for s, _ in _steps(tmp_path / "cut.trace")):
            _kill_tree(p.pid)
            break
        time.sleep(0.05)
    p.wait(timeout=60)
    assert p.returncode == -signal.SIGKILL, f"the run was not killed mid-training (exit {p.returncode}, kill at {kill_at})"
    assert not (cut / "model").exists(), "a killed run must not leave a final model behind"

    resumed_from = _complete_checkpoints(cut / "checkpoints")[-1]
    _finish(_run([*verb_args, "--out", cut, "--resume"], tmp_path / "resume.trace", launcher), timeout)
    for rank in range(processes):
        reference = _steps(full_trace, rank)
        trained = [x for x in _steps(tmp_path / "cut.trace", rank) if x[0] <= resumed_from] + _steps(tmp_path / "resume.trace", rank)
        first = next((i for i, (a, b) in enumerate(zip(trained, reference)) if a != b), min(len(trained), len(reference)))
        assert reference and trained == reference, (
            f"process {rank}: killed at step {kill_at}, resumed from {resumed_from}: the examples trained on differ from "
            f"the uninterrupted run's from entry {first}: {trained[first:first + 2]} instead of {reference[first:first + 2]}")

    a, b = _weights(full / "model"), _weights(cut / "model")
    assert a.keys() == b.keys()
    for k in a:
        if atol: assert torch.allclose(a[k], b[k], atol=atol, rtol=0), k
        else: assert torch.equal(a[k], b[k]), f"{k}: max difference {(a[k] - b[k]).abs().max().item():g}"
    return {"killed_at": kill_at, "resumed_from": resumed_from, "steps": total}
