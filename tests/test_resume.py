"""Kill and resume: each training verb, killed with SIGKILL at a random step after its first complete checkpoint and
run again with `--resume`, ends with exactly the weights of a run that was never interrupted, having trained on the
same examples in the same order. A later verb gets the same test by adding one line here."""
import json

import pytest

from resume_check import assert_resumes_exactly

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
    }


# 64 texts in batches of 16 for 3 epochs: 12 steps, a checkpoint every 2.
def test_classify_resumes_exactly(tmp_path, files):
    assert_resumes_exactly(tmp_path, ["classify", "--model", "tiny-bert", "--train", files["cls_train"], "--eval",
                                      files["cls_eval"], "--epochs", "3", "--save-steps", "2"])


def test_classify_lora_resumes_exactly(tmp_path, files):
    assert_resumes_exactly(tmp_path, ["classify", "--model", "tiny-bert", "--train", files["cls_train"], "--eval",
                                      files["cls_eval"], "--epochs", "3", "--save-steps", "2", "--lora"])


def test_sft_resumes_exactly(tmp_path, files):
    assert_resumes_exactly(tmp_path, ["sft", "--model", "tiny-llama", "--train", files["sft"], "--eval", files["sft"],
                                      "--max-steps", "10", "--save-steps", "2"])


def test_pretrain_clm_resumes_exactly(tmp_path, files):
    assert_resumes_exactly(tmp_path, ["pretrain", "--objective", "clm", "--model", "tiny-llama", "--train", files["text"],
                                      "--max-steps", "10", "--save-steps", "2", "--block-size", "32", "--batch-size", "4"])


def test_pretrain_mlm_resumes_exactly(tmp_path, files):
    "Masks are drawn per example, so a resumed run masks the same words the uninterrupted run did."
    assert_resumes_exactly(tmp_path, ["pretrain", "--objective", "mlm", "--model", "tiny-bert", "--train", files["text"],
                                      "--max-steps", "10", "--save-steps", "2", "--block-size", "32", "--batch-size", "4"])
