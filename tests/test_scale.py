"""Chapter 11: the training verbs under `accelerate launch` with two CPU processes (PyTorch's gloo backend).

Two processes at half the micro-batch against one process at the whole, same seed: each optimizer step trains on the
same examples (from the batch traces), the loss curves agree, both runs report the same global batch, and only the
first process writes: one model, one metrics.json. A two-process run killed mid-training resumes exactly. Chapter 11's
notebook shows `sft`'s comparison over 20 steps; here each verb runs 8 (sft 12, as its run is also killed and resumed).
"""
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_cli
from resume_check import _run_here, _steps, assert_resumes_exactly
from ftbook.scale import scale_config

pytestmark = pytest.mark.slow  # each case starts three or four runs, two of them with two processes


def free_port() -> int:
    "A TCP port nothing listens on now: each launch rendezvous on its own (tests may run side by side)."
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launcher(processes: int = 2) -> list[str]:
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(scale_config("ddp")),
            "--num_processes", str(processes), "--main_process_port", str(free_port()), "-m", "ftbook"]


def no_dropout(model: str, folder: Path) -> Path:
    "A copy of a preset with every dropout probability set to 0: with dropout each process draws its own masks."
    from ftbook.models import resolve_model
    shutil.copytree(resolve_model(model), folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg.update({k: 0.0 for k, v in cfg.items() if "dropout" in k and isinstance(v, float)})
    (folder / "config.json").write_text(json.dumps(cfg))
    return folder


def _jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def data(tmp_path):
    words = [("great", "pos"), ("awful", "neg")]
    things = ("film", "book", "meal", "show", "song", "trip")
    return {
        "cls": _jsonl(tmp_path / "cls.jsonl", [{"text": f"{w} {t} " + "and more " * k, "label": lab}
                                               for k in range(4) for w, lab in words for t in things]),
        "cls_eval": _jsonl(tmp_path / "cls_eval.jsonl", [{"text": f"{w} {t}", "label": lab} for w, lab in words for t in things]),
        "sft": _jsonl(tmp_path / "sft.jsonl", [{"messages": [{"role": "user", "content": f"Name colour number {i}."},
                                                            {"role": "assistant", "content": f"Colour {i} is {c}." + " Yes." * (i % 3)}]}
                                              for i, c in enumerate(["red", "blue", "green", "amber", "teal", "grey"] * 8)]),
        "text": _jsonl(tmp_path / "text.jsonl", [{"text": f"Reef the mainsail early when the wind rises above {n} knots; ease "
                                                          f"the sheets on the {side} tack."} for n in range(10, 30) for side in ("port", "starboard")]),
        "pairs": _jsonl(tmp_path / "pairs.jsonl", [{"prompt": f"Wind {n} knots on the {side} tack?", "chosen": f"Reef at {n} knots.",
                                                    "rejected": f"Carry full sail at {n} knots."} for n in range(10, 22) for side in ("port", "starboard")]),
        "prompts": _jsonl(tmp_path / "prompts.jsonl", [{"prompt": f"Say something kind about boat {i}."} for i in range(12)]),
    }


def _losses(out: Path) -> list[tuple[int, float]]:
    "(step, training loss) of every logged step, from the run's last checkpoint."
    state = sorted(out.glob("checkpoints/checkpoint-*/trainer_state.json"), key=lambda p: int(p.parent.name.rsplit("-", 1)[1]))[-1]
    return [(h["step"], h["loss"]) for h in json.loads(state.read_text())["log_history"] if "loss" in h]


def _files(out: Path) -> list[str]:
    "Every file the run left outside its checkpoints (where each process keeps its own RNG state, by design)."
    return sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and "checkpoints" not in p.parts)


def _compare(tmp_path, verb_args: list, micro: int, rel_tol: float):
    one, two = tmp_path / "one", tmp_path / "two"
    _run_here([*verb_args, "--batch-size", 2 * micro, "--out", one], tmp_path / "one.trace")  # in this process: no interpreter start
    r2 = subprocess.run(launcher(2) + [*map(str, verb_args), "--batch-size", str(micro), "--out", str(two)],
                        capture_output=True, text=True, timeout=900,
                        env={**os.environ, "FTBOOK_TRACE_BATCHES": str(tmp_path / "two.trace")})
    assert r2.returncode == 0, (r2.stdout + r2.stderr)[-4000:]
    assert "2 processes x" in r2.stdout and r2.stdout.count("plan:") == 1, r2.stdout[-2000:]  # printed once, by rank 0
    # each global step trained on the one-process step's examples: rank 0's share and rank 1's
    ref = _steps(tmp_path / "one.trace")
    got = [(s, f"{a} {b}") for (s, a), (_, b) in zip(_steps(tmp_path / "two.trace"), _steps(tmp_path / "two.trace", 1))]
    assert ref and len(got) == len(ref) and all(sorted(a.split()) == sorted(b.split()) for (_, a), (_, b) in zip(ref, got)), \
        f"first steps: {ref[:2]} against {got[:2]}"
    a, b = _losses(one), _losses(two)
    assert a and [s for s, _ in a] == [s for s, _ in b]
    worst = max(abs(x - y) / x for (_, x), (_, y) in zip(a, b))
    assert worst <= rel_tol, f"loss curves differ by up to {worst:.2%} (tolerance {rel_tol:.2%}): {a} against {b}"
    m1, m2 = (json.loads((d / "metrics.json").read_text()) for d in (one, two))
    assert (m1["world_size"], m2["world_size"]) == (1, 2) and m1["global_batch"] == m2["global_batch"] == 2 * micro
    assert _files(one) == _files(two), (_files(one), _files(two))  # one set of artifacts, as one process writes
    return worst


def test_classify_two_processes_match_one(tmp_path, data):
    model = no_dropout("tiny-bert", tmp_path / "tiny-bert-no-dropout")
    worst = _compare(tmp_path, ["classify", "--allow-overlap", "--model", model, "--train", data["cls"], "--eval", data["cls_eval"],
                                "--max-steps", "30", "--learning-rate", "2e-3"], micro=4, rel_tol=1e-4)
    assert worst < 1e-4


@pytest.mark.parametrize("verb", ["pretrain", "reward", "dpo"])  # sft: test_two_process_sft_matches_one_and_resumes_exactly
def test_other_verbs_two_processes_match_one(tmp_path, data, verb):
    args = {"pretrain": ["pretrain", "--allow-overlap", "--objective", "clm", "--model", "tiny-llama", "--train", data["text"], "--block-size", "32"],
            "reward": ["reward", "--allow-overlap", "--model", no_dropout("tiny-bert", tmp_path / "tiny-bert-no-dropout"), "--train", data["pairs"],
                       "--eval", data["pairs"]],
            "dpo": ["dpo", "--allow-overlap", "--model", "tiny-llama", "--train", data["pairs"], "--eval", data["pairs"]]}[verb]
    print(verb, _compare(tmp_path, args + ["--max-steps", "8", "--save-steps", "4"], micro=2, rel_tol=5e-3))


def test_rlhf_ppo_refuses_two_processes(tmp_path, data):
    r = subprocess.run(launcher(2) + ["rlhf", "--allow-overlap", "--policy", "tiny-llama", "--reward", "rule:brevity", "--prompts", str(data["prompts"]),
                                      "--out", str(tmp_path / "out")],
                       capture_output=True, text=True, timeout=600)
    # each process exits 2 with ftbook's message; the launcher then exits 1 and prints its own report of the exit codes
    assert r.returncode != 0 and "ftbook rlhf: error: ftbook's PPO runs in one process" in r.stderr, (r.stdout + r.stderr)[-3000:]
    assert "--algo grpo" in r.stderr and "exitcode  : 2" in r.stderr, r.stderr[-3000:]
    assert not (tmp_path / "out").exists()


def test_rlhf_grpo_two_processes_split_each_update(tmp_path, data):
    # an update is --batch-size prompts in all: with two processes each takes half (it used to be twice as many prompts,
    # and 10 training prompts were then fewer than one update: TRL ran no step at all)
    out = tmp_path / "out"
    r = subprocess.run(launcher(2) + ["rlhf", "--allow-overlap", "--algo", "grpo", "--policy", "tiny-llama", "--reward", "rule:brevity", "--prompts",
                                      str(data["prompts"]), "--batch-size", "8", "--max-steps", "3", "--save-steps", "3", "--out", str(out)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    state = json.loads((out / "checkpoints/checkpoint-3/trainer_state.json").read_text())
    assert state["global_step"] == 3 and len([h for h in state["log_history"] if "reward" in h]) == 3
    m = json.loads((out / "metrics.json").read_text())
    assert (m["world_size"], m["global_batch"]) == (2, 8)
    assert sorted(p.name for p in out.iterdir()) == ["checkpoints", "metrics.json", "model", "rlhf.png", "samples.jsonl"]


def test_two_process_classify_resumes_exactly(tmp_path, data):
    # a checkpoint every step: tiny-bert trains 18 steps in about a second, and the kill must land mid-run
    info = assert_resumes_exactly(tmp_path, ["classify", "--allow-overlap", "--model", "tiny-bert", "--train", data["cls"], "--eval",
                                             data["cls_eval"], "--epochs", "3", "--save-steps", "1", "--batch-size", "4"],
                                  launcher=lambda: launcher(2), processes=2)  # a fresh port for each of the three runs
    assert info["resumed_from"] < info["steps"]


def test_two_process_sft_matches_one_and_resumes_exactly(tmp_path, data):
    "sft in two processes against one, as the other verbs above; then that two-process run is the uninterrupted reference of a kill and resume."
    args = ["sft", "--allow-overlap", "--model", "tiny-llama", "--train", data["sft"], "--eval", data["sft"], "--max-steps", "12", "--save-steps", "1"]
    print("sft", _compare(tmp_path, args, micro=2, rel_tol=5e-3))
    info = assert_resumes_exactly(tmp_path, args + ["--batch-size", "2"], launcher=lambda: launcher(2), processes=2,
                                  uninterrupted=tmp_path / "two")  # _compare's two-process run: the same arguments
    assert info["resumed_from"] < info["steps"]


def test_scale_config_verb_lists_and_refuses():
    r = run_cli("scale-config", "--list")
    assert r.returncode == 0 and all(n in r.stdout for n in ("single-gpu", "ddp", "fsdp2", "zero2", "zero3")), r.stdout
    r = run_cli("scale-config", "zero3", "--path")
    assert r.returncode == 0 and Path(r.stdout.strip()) == scale_config("zero3")
    r = run_cli("scale-config", "zero4")
    assert r.returncode == 2 and "Traceback" not in r.stderr and "zero3" in r.stderr


def test_fsdp2_split_weights_save_whole(tmp_path):
    # Accelerate runs the fsdp2 config as plain DDP on CPUs, so FSDP2 is applied here directly, as it does on GPUs
    import torch
    from transformers import AutoModelForCausalLM
    from ftbook.models import load_model
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
                        str(Path(__file__).parent / "fsdp_save_check.py"), str(tmp_path / "model")],
                       capture_output=True, text=True, timeout=180)  # 18 s here; saving split weights from one process hangs
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    saved, ref = AutoModelForCausalLM.from_pretrained(tmp_path / "model").state_dict(), load_model("tiny-llama").state_dict()
    assert saved.keys() == ref.keys()
    bad = [k for k in ref if saved[k].shape != ref[k].shape or not torch.equal(saved[k], ref[k])]
    assert not bad, f"saved weights differ from the model's: {bad[:3]}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # one folder, written once, no temporary left
