"""SmolLM2-135M-Instruct as a pairwise reward model on the shipped twin preferences, beside MiniLM trained the same way.

Chapter 6 trains its pairwise reward model on MiniLM, because a SmolLM2 reward model takes too long for a page that
must run on a CPU in CI. This experiment runs the chapter's recipe (`RewardModelConfig.for_profile("cpu")`: one epoch,
batches of 8 pairs, 128 tokens, the chapter's learning rate) on both backbones, on the chapter's split of the shipped
pairs, and reads each one's report card. The two models are then compared on the same held-out pairs with
`ftbook.stats.compare` (paired bootstrap interval, McNemar test). A decoder reads each exchange in its chat template and
its score head reads the last token; an encoder reads `[CLS] prompt [SEP] response [SEP]` (`encode_response`).
Written as JSON, with the machine:

    python -m ftbook.recorded.exp_reward_smollm2 --json exp_reward_smollm2.json     # about 12 minutes on 2 CPU cores
"""
import argparse
import hashlib
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
import numpy as np
import torch

from ftbook.data import DATA_DIR, SHIPPED, split_data
from ftbook.models import load_tokenizer
from ftbook.reward import RewardModelConfig, load_preferences, load_reward_model, report_card, train_pairwise
from ftbook.stats import compare
from ftbook.train import quiet

MODELS = ("minilm-l6", "smollm2-135m-instruct")
CARD_KEYS = ("pairwise_accuracy", "pairwise_low", "pairwise_high", "length_only_accuracy", "bag_of_words_accuracy",
             "length_correlation", "mean_confidence", "calibration_error")


def run(name: str, train, test, cfg: RewardModelConfig) -> dict:
    "Train one backbone with the chapter's recipe; its held-out scores and report card."
    tok = load_tokenizer(name)
    t0 = time.perf_counter()
    res = train_pairwise(load_reward_model(name, cfg), tok, train, test, cfg)
    sc, sr = (np.array([p[k] for p in res.predictions]) for k in ("chosen_score", "rejected_score"))
    card = report_card(sc, sr, test, train, name)
    return {"seconds": time.perf_counter() - t0, "train_seconds": res.metrics["train_seconds"], "train_steps": res.metrics["train_steps"],
            "train_loss": res.metrics["train_loss"], "pairwise_accuracy_before": res.metrics["pairwise_accuracy_before"],
            **{k: card["metrics"][k] for k in CARD_KEYS}, "flags": card["flags"], "sentence": card["sentence"],
            "correct": card["correct"]["model"].tolist()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    quiet()
    train, test = split_data(load_preferences("preferences"), eval_size=0.2, seed=0)  # the chapter's split
    cfg = RewardModelConfig.for_profile("cpu")
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"
    data = hashlib.sha256((DATA_DIR / SHIPPED["preferences"][0]).read_bytes()).hexdigest()  # the chapter checks it reads the same pairs
    out = {"experiment": "exp_reward_smollm2", "machine": device, "torch": torch.__version__, "data_sha256": data, "train_pairs": len(train),
           "eval_pairs": len(test), "config": {k: getattr(cfg, k) for k in ("num_epochs", "batch_size", "max_length", "learning_rate", "seed")},
           "models": {}}
    for name in MODELS:
        out["models"][name] = run(name, train, test, cfg)
        r = out["models"][name]
        print(name, json.dumps({k: r[k] for k in ("train_steps", "train_seconds", "pairwise_accuracy", "pairwise_low", "pairwise_high", "flags")}), flush=True)
    a, b = (np.array(out["models"][m]["correct"]) for m in MODELS[::-1])
    out["smollm2_vs_minilm"] = {k: v for k, v in compare(a, b, ("SmolLM2", "MiniLM")).items() if k != "bootstrap"}
    print(out["smollm2_vs_minilm"]["sentence"])
    if args.json: Path(args.json).write_text(json.dumps(out, indent=1, default=float) + "\n")


if __name__ == "__main__":
    main()
