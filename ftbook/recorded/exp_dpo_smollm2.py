"""DPO of SmolLM2-135M-Instruct on the shipped preference pairs, full and LoRA, against the chapter-07 PPO run on the
same data, starting policy and budget.

Chapter 8 runs its live DPO small, because a DPO step through SmolLM2 takes seconds on a CPU. This experiment runs the
comparison the chapter reports:

- **DPO, full and LoRA** (rank 16, all linear layers; the reference is the adapters switched off), each in its own
  process so its peak memory is its own: 12 steps of 8 training pairs, the chapter-07 PPO budget (12 updates of 8 prompts).
- **PPO**: the run recorded in `ftbook/recorded/exp_rlhf_smollm2.json` (its `ppo` arm: the chapter-06 MiniLM reward model trained on
  the same training pairs, 12 updates of 8 prompts). Its held-out responses before and after are read from that file.
- **Held-out prompts and sampling**: the first 32 prompts of the held-out pairs, one response each, sampled exactly as
  chapter 7 samples them (`evaluate_policy`: pure sampling at temperature 1, 24 new tokens, seed 1234 before and after),
  so every arm's "before" responses are the same text; the script checks that they equal the PPO file's.
- **The judge**: a MiniLM reward model trained on the held-out pairs (2 epochs), which neither policy nor PPO's reward
  model saw. Its quality is checked on the training pairs, which it never saw. A win is a held-out prompt where the
  judge scores the response after training above the one before (a tie counts as half).
- **KL to the reference**: chapter 7's measure for every arm, on the held-out prompts' sampled responses (nats per response).

Written as JSON, with the machine:

    python -m ftbook.recorded.exp_dpo_smollm2 --json exp_dpo_smollm2.json     # about 15 minutes on 2 idle CPU cores
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
from datasets import Dataset

from ftbook.data import DATA_DIR, SHIPPED, split_data
from ftbook.dpo import DPOMonitor, DPORunConfig, as_conversation, train_dpo
from ftbook.models import load_tokenizer
from ftbook.reward import RewardModelConfig, load_preferences, load_reward_model, train_pairwise
from ftbook.rlhf import RLHFConfig, distinct_words, evaluate_policy, load_policy, reward_model_fn
from ftbook.train import quiet, save_model

POLICY, JUDGE = "smollm2-135m-instruct", "minilm-l6"
STEPS, PAIRS, EVAL_PROMPTS, EVAL_PAIRS = 12, 8, 32, 32
if os.environ.get("EXP_SMOKE"):  # a seconds-long run of every code path, on tiny models
    POLICY, JUDGE, STEPS, PAIRS, EVAL_PROMPTS, EVAL_PAIRS = "tiny-llama", "tiny-bert", 2, 2, 4, 4
ARMS = {"dpo-full": dict(), "dpo-lora": dict(lora_r=16)}  # DPORunConfig overrides
PPO_FILE = Path(__file__).with_name("exp_rlhf_smollm2.json")


def splits():
    "Chapter 6's split of the shipped pairs (seed 0): training pairs, held-out pairs, and the held-out prompts."
    train, test = split_data(load_preferences("preferences"), eval_size=0.2, seed=0)
    return train, test, list(dict.fromkeys(test["prompt"]))[:EVAL_PROMPTS]


def sampling_cfg() -> RLHFConfig:
    "Chapter 7's held-out sampling, as its PPO arm ran it."
    return RLHFConfig.for_profile("cpu", max_steps=STEPS, max_new_tokens=24, batch_size=8)


def conversational(ds) -> Dataset: return Dataset.from_list([as_conversation(r) for r in ds])


def run_arm(arm: str) -> dict:
    "One DPO arm, in this process: held-out pair measurements, and held-out responses before and after."
    train, test, eval_p = splits()
    cfg = DPORunConfig.for_profile("cpu", max_steps=STEPS, batch_size=PAIRS, eval_steps=STEPS // 2, **ARMS[arm])
    tok = load_tokenizer(POLICY)
    policy = load_policy(POLICY, cfg)
    scfg = sampling_cfg()
    ref = None if cfg.lora_r else load_policy(POLICY, cfg).eval().requires_grad_(False)  # the frozen copy KL is measured against
    before = evaluate_policy(policy, tok, eval_p, distinct_words, scfg, None, ref)
    t0 = time.perf_counter()
    res = train_dpo(policy, tok, conversational(train), conversational(test.select(range(EVAL_PAIRS))), cfg,
                    monitor=DPOMonitor(verbose=False), ref_model=ref)
    secs = time.perf_counter() - t0
    after = evaluate_policy(policy, tok, eval_p, distinct_words, scfg, None, ref)
    rows = [{"prompt": b["prompt"], "response_before": b["response"], "response_after": a["response"]}
            for b, a in zip(before["rows"], after["rows"])]
    return {"arm": arm, "config": asdict(cfg), "seconds": secs, "metrics": {**res.metrics, "kl_sampled": after["kl_to_reference"],
            "mean_length_before": before["mean_length"], "mean_length_after": after["mean_length"]},
            "history": [h for h in res.history if "accuracy" in h], "rows": rows, "alarms": res.lines[1:]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--arm", choices=list(ARMS), help=argparse.SUPPRESS)  # one arm, in a child process
    ap.add_argument("--part", help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    quiet()
    if args.arm:
        Path(args.part).write_text(json.dumps(run_arm(args.arm)))
        return
    train, test, eval_p = splits()
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"
    data = hashlib.sha256((DATA_DIR / SHIPPED["preferences"][0]).read_bytes()).hexdigest()
    ppo_exp = json.loads(PPO_FILE.read_text())
    assert ppo_exp["data_sha256"] == data, "the PPO run was recorded on other preference data"
    ppo = next(a for a in ppo_exp["arms"] if a["arm"] == "ppo")
    out = {"experiment": "exp_dpo_smollm2", "machine": device, "torch": torch.__version__, "data_sha256": data,
           "policy": POLICY, "judge": JUDGE, "train_pairs": len(train), "eval_prompts": len(eval_p), "eval_pairs": EVAL_PAIRS,
           "ppo_machine": ppo_exp["machine"], "arms": []}
    with tempfile.TemporaryDirectory() as tmp:
        jcfg = RewardModelConfig.for_profile("cpu", num_epochs=2, **({"max_steps": 2} if os.environ.get("EXP_SMOKE") else {}))
        jm, jtok = load_reward_model(JUDGE, jcfg), load_tokenizer(JUDGE)
        r = train_pairwise(jm, jtok, test, train, jcfg)  # trained on the held-out pairs, checked on the training pairs
        out["judge_accuracy_on_training_pairs"] = r.metrics["pairwise_accuracy"]
        out["judge_checked_on"] = len(train)
        print(f"judge: {r.lines[0]}", flush=True)
        judge = reward_model_fn(jm, jtok)
        for arm in ARMS:
            part = Path(tmp) / f"{arm}.json"
            subprocess.run([sys.executable, __file__, "--arm", arm, "--part", str(part)], check=True)
            out["arms"].append(json.loads(part.read_text()))
        ppo_arm = {"arm": "ppo", "config": ppo["config"], "seconds": ppo["seconds"],
                   "metrics": {"kl_sampled": ppo["metrics"]["kl_to_reference"], "peak_memory_mb": ppo["metrics"]["peak_memory_mb"],
                               "mean_length_before": ppo["metrics"]["mean_length_before"],
                               "mean_length_after": ppo["metrics"]["mean_length_after"]},
                   "history": [], "alarms": ppo["alarms"],
                   "rows": [{k: r[k] for k in ("prompt", "response_before", "response_after")} for r in ppo["rows"]]}
        out["arms"].insert(0, ppo_arm)
        for a in out["arms"]:
            ps = [r["prompt"] for r in a["rows"]]
            jb, ja = judge(ps, [r["response_before"] for r in a["rows"]]), judge(ps, [r["response_after"] for r in a["rows"]])
            for r, b, x in zip(a["rows"], jb, ja): r["judge_before"], r["judge_after"] = float(b), float(x)
            wins = [1.0 if x > b else 0.5 if x == b else 0.0 for b, x in zip(jb, ja)]
            a["win_rate"] = float(np.mean(wins))
            print(f"{a['arm']}: win rate {a['win_rate']:.2f}, KL {a['metrics']['kl_sampled']:.2f}, {a['seconds']:.0f} s, "
                  f"{a['metrics']['peak_memory_mb']:.0f} MB", flush=True)
        same = len({tuple(r["response_before"] for r in a["rows"]) for a in out["arms"]}) == 1
        out["same_before_responses"] = same
        print(f"every arm's responses before training are the same text: {same}", flush=True)
    if args.json: Path(args.json).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
