"""RLHF on SmolLM2-135M-Instruct against the chapter-06 reward model: ftbook's PPO, PPO without its KL penalty, and TRL's
RLOO and GRPO, on the same prompts, updates and responses per update.

Chapter 7 runs its live examples small, because sampling from SmolLM2 and back-propagating through it takes seconds per
update on a CPU. This experiment runs the comparison the chapter reports. The reward model is the chapter-06 recipe
(MiniLM, pairwise, one epoch on the training side of the shipped preference pairs); the policies train on the prompts of
those training pairs and are measured on held-out prompts (the prompts of the held-out pairs), sampled with one seed
before and after so the sampling noise is shared. The judge is the `distinct_words` rule, which the policies never see.
Each arm runs in its own process, so its peak memory is its own. Written as JSON, with the machine:

    python -m ftbook.recorded.exp_rlhf_smollm2 --json exp_rlhf_smollm2.json     # about 15 minutes on 2 idle CPU cores
"""
import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
import numpy as np
import torch

from ftbook.data import DATA_DIR, SHIPPED, split_data
from ftbook.models import load_tokenizer
from ftbook.reward import RewardModelConfig, load_preferences, load_reward_model, train_pairwise
from ftbook.rlhf import RLHFConfig, distinct_words, load_policy, reward_model_fn, train_rlhf
from ftbook.train import quiet, save_model

POLICY, REWARD = "smollm2-135m-instruct", "minilm-l6"
STEPS, RESPONSES, NEW_TOKENS, EVAL_PROMPTS = 12, 8, 24, 32
ARMS = {  # name -> RLHFConfig overrides; every arm samples RESPONSES responses per update
    "ppo": dict(algo="ppo", batch_size=RESPONSES),
    "ppo-no-kl": dict(algo="ppo", batch_size=RESPONSES, kl_coef=0.0),
    "rloo": dict(algo="rloo", batch_size=RESPONSES // 4, num_generations=4),
    "grpo": dict(algo="grpo", batch_size=RESPONSES // 4, num_generations=4),
}


def prompts():
    "The chapter's split: training prompts from the reward model's training pairs, held-out prompts from its held-out pairs."
    train, test = split_data(load_preferences("preferences"), eval_size=0.2, seed=0)
    return list(dict.fromkeys(train["prompt"])), list(dict.fromkeys(test["prompt"]))[:EVAL_PROMPTS], train, test


def run_arm(arm: str, rm_dir: str) -> dict:
    "One arm, in this process: its metrics, per-update history and per-prompt before/after rows."
    train_p, eval_p, *_ = prompts()
    cfg = RLHFConfig.for_profile("cpu", max_steps=STEPS, max_new_tokens=NEW_TOKENS, **ARMS[arm])
    tok = load_tokenizer(POLICY)
    t0 = time.perf_counter()
    res = train_rlhf(load_policy(POLICY, cfg), tok, train_p, eval_p, reward_model_fn(rm_dir), cfg, judge_fn=distinct_words)
    return {"arm": arm, "config": asdict(cfg), "seconds": time.perf_counter() - t0, "metrics": res.metrics,
            "history": res.history, "rows": res.predictions, "alarms": [l for l in res.lines[1:]]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--arm", choices=list(ARMS), help=argparse.SUPPRESS)  # one arm, in a child process
    ap.add_argument("--rm", help=argparse.SUPPRESS)
    ap.add_argument("--part", help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    quiet()
    if args.arm:
        Path(args.part).write_text(json.dumps(run_arm(args.arm, args.rm)))
        return
    train_p, eval_p, train, test = prompts()
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"
    data = hashlib.sha256((DATA_DIR / SHIPPED["preferences"][0]).read_bytes()).hexdigest()
    out = {"experiment": "exp_rlhf_smollm2", "machine": device, "torch": torch.__version__, "data_sha256": data,
           "policy": POLICY, "reward_model": REWARD, "train_prompts": len(train_p), "eval_prompts": len(eval_p), "arms": []}
    with tempfile.TemporaryDirectory() as tmp:
        rcfg = RewardModelConfig.for_profile("cpu")  # the chapter-06 recipe
        t0 = time.perf_counter()
        rm, rtok = load_reward_model(REWARD, rcfg), load_tokenizer(REWARD)
        r = train_pairwise(rm, rtok, train, test, rcfg)
        save_model(rm, rtok, Path(tmp) / "rm")
        out["reward_model_accuracy"], out["reward_model_seconds"] = r.metrics["pairwise_accuracy"], time.perf_counter() - t0
        print(f"reward model: {r.lines[0]}", flush=True)
        for arm in ARMS:
            part = Path(tmp) / f"{arm}.json"
            subprocess.run([sys.executable, __file__, "--arm", arm, "--rm", str(Path(tmp) / "rm"), "--part", str(part)], check=True)
            a = json.loads(part.read_text())
            out["arms"].append(a)
            m = a["metrics"]
            print(f"{arm}: reward {m['reward_before']:.3f} -> {m['reward_after']:.3f}, judge {m['judge_before']:.3f} -> "
                  f"{m['judge_after']:.3f}, KL {m['kl_to_reference']:.2f}, {a['seconds']:.0f} s, {m['peak_memory_mb']:.0f} MB", flush=True)
    if args.json: Path(args.json).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
