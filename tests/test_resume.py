"""Kill and resume: each training verb, killed with SIGKILL at a random step after its first complete checkpoint and
run again with `--resume`, ends with exactly the weights of a run that was never interrupted, having trained on the
same examples in the same order. A later verb gets the same test by adding one line here."""
import json

import pytest
import torch

from resume_check import assert_resumes_exactly

pytestmark = pytest.mark.slow  # real subprocesses killed mid-run and resumed

REVIEWS = [("great value, works well", 1), ("broke on day two", 0), ("lovely staff and quick service", 1),
           ("cold food and a long wait", 0), ("would buy again", 1), ("the lid cracked", 0),
           ("fast delivery and kind notes", 1), ("refund took a month", 0)]
SAILING = [f"Reef the mainsail early when the wind rises above {n} knots; ease the sheets and keep the boat balanced "
           f"on the {side} tack." for n in range(10, 40) for side in ("port", "starboard")]


def _jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.fixture
def files(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    return {
        "cls_train": _jsonl(d / "cls_train.jsonl", [{"text": f"{t} ({i})", "label": l} for i in range(8) for t, l in REVIEWS]),
        "cls_eval": _jsonl(d / "cls_eval.jsonl", [{"text": t, "label": l} for t, l in REVIEWS]),
        "sft": _jsonl(d / "sft.jsonl", [{"messages": [{"role": "user", "content": f"Name colour number {i}."},
                                                     {"role": "assistant", "content": f"Colour {i} is {c}."}]}
                                       for i, c in enumerate(["red", "blue", "green", "amber", "teal", "grey"] * 5)]),
        "text": _jsonl(d / "text.jsonl", [{"text": s} for s in SAILING]),
        "pairs": _jsonl(d / "pairs.jsonl", [{"prompt": f"Wind {n} knots on the {side} tack?", "chosen": f"Reef at {n} knots and ease the sheet.",
                                             "rejected": f"Carry full sail at {n} knots."} for n in range(10, 30) for side in ("port", "starboard")]),
        "prompts": _jsonl(d / "prompts.jsonl", [{"prompt": f"In {n} knots of wind on the {side} tack, what should I do?"}
                                                for n in range(10, 30) for side in ("port", "starboard")]),
    }


# 64 texts in batches of 16 for 3 epochs: 12 steps, a checkpoint every 2.
def test_classify_resumes_exactly(tmp_path, files):
    assert_resumes_exactly(tmp_path, ["classify", "--allow-overlap", "--model", "tiny-bert", "--train", files["cls_train"], "--eval",
                                      files["cls_eval"], "--epochs", "3", "--save-steps", "2"])


def test_classify_lora_resumes_exactly(tmp_path, files):
    assert_resumes_exactly(tmp_path, ["classify", "--allow-overlap", "--model", "tiny-bert", "--train", files["cls_train"], "--eval",
                                      files["cls_eval"], "--epochs", "3", "--save-steps", "2", "--lora"])


def test_sft_resumes_exactly(tmp_path, files):
    assert_resumes_exactly(tmp_path, ["sft", "--allow-overlap", "--model", "tiny-llama", "--train", files["sft"], "--eval", files["sft"],
                                      "--max-steps", "10", "--save-steps", "2"])


def test_pretrain_clm_resumes_exactly(tmp_path, files):
    assert_resumes_exactly(tmp_path, ["pretrain", "--allow-overlap", "--objective", "clm", "--model", "tiny-llama", "--train", files["text"],
                                      "--max-steps", "10", "--save-steps", "2", "--block-size", "32", "--batch-size", "4"])


def test_pretrain_mlm_resumes_exactly(tmp_path, files):
    "Masks are drawn per example, so a resumed run masks the same words the uninterrupted run did."
    assert_resumes_exactly(tmp_path, ["pretrain", "--allow-overlap", "--objective", "mlm", "--model", "tiny-bert", "--train", files["text"],
                                      "--max-steps", "10", "--save-steps", "2", "--block-size", "32", "--batch-size", "4"])


def test_classify_resumes_exactly_mid_epoch_in_a_later_epoch(tmp_path, files):
    """Length-grouped batches (classify's default) resumed from step 10, halfway through the third epoch of 4 steps:
    the order of that epoch must not depend on the random state the checkpoint happened to store."""
    import shutil
    from resume_check import _finish, _run, _steps, _weights
    args = ["classify", "--allow-overlap", "--model", "tiny-bert", "--train", files["cls_train"], "--eval", files["cls_eval"],
            "--epochs", "3", "--save-steps", "2"]
    full, cut = tmp_path / "full", tmp_path / "cut"
    _finish(_run(args + ["--out", full], tmp_path / "full.trace"), 900)
    shutil.copytree(full, cut)
    shutil.rmtree(cut / "model")  # as if killed right after checkpoint-10 was complete
    (cut / "metrics.json").unlink()
    for c in (cut / "checkpoints").glob("checkpoint-*"):
        if c.name != "checkpoint-10": shutil.rmtree(c)
    _finish(_run(args + ["--out", cut, "--resume"], tmp_path / "resume.trace"), 900)
    reference, resumed = _steps(tmp_path / "full.trace"), _steps(tmp_path / "resume.trace")
    assert [s for s, _ in resumed] == [11, 12]
    assert resumed == reference[10:], "the resumed epoch trained on other examples than the uninterrupted run"
    a, b = _weights(full / "model"), _weights(cut / "model")
    assert all(torch.equal(a[k], b[k]) for k in a), "weights differ"


def test_reward_resumes_exactly(tmp_path, files):
    assert_resumes_exactly(tmp_path, ["reward", "--allow-overlap", "--model", "tiny-bert", "--train", files["pairs"], "--eval", files["pairs"],
                                      "--max-steps", "10", "--save-steps", "2", "--batch-size", "4"])


def test_dpo_resumes_exactly(tmp_path, files):
    assert_resumes_exactly(tmp_path, ["dpo", "--allow-overlap", "--model", "tiny-llama", "--train", files["pairs"], "--eval", files["pairs"],
                                      "--max-steps", "10", "--save-steps", "2", "--batch-size", "4"])


def test_rlhf_ppo_resumes_exactly(tmp_path, files):
    "ftbook's own PPO loop: weights, value head, optimizer, beta and the prompt order all come back from the checkpoint."
    assert_resumes_exactly(tmp_path, ["rlhf", "--allow-overlap", "--policy", "tiny-llama", "--reward", "rule:brevity", "--prompts", files["prompts"],
                                      "--max-steps", "10", "--save-steps", "2", "--batch-size", "4", "--max-new-tokens", "8"])


def test_rlhf_grpo_resumes_exactly(tmp_path, files):
    "TRL's GRPO under `ftbook rlhf`: the sampling of each update comes back with the checkpoint's random state."
    assert_resumes_exactly(tmp_path, ["rlhf", "--allow-overlap", "--algo", "grpo", "--policy", "tiny-llama", "--reward", "rule:brevity",
                                      "--prompts", files["prompts"], "--max-steps", "10", "--save-steps", "2", "--batch-size", "4",
                                      "--max-new-tokens", "8"])
