"""RLHF of SmolLM2-135M-Instruct with a verifiable reward: ftbook's PPO and TRL's GRPO, rewarded by a fact check.

Chapter 7 runs this recipe small on a CPU; this experiment runs it at the size its headline needs:

- **Questions**: the shipped `general_qa` set, split as in chapter 8's on-policy run. The first 40 are held out; the
  other 60 train.
- **Reward**: `ftbook.judge.contains_answer`, 1 where the answer contains the reference answer or an alias as whole
  words, else 0. Reinforcement learning with a checkable reward like this is called RL with verifiable rewards.
- **Arms**: ftbook's PPO (16 prompts, one answer each, per update) and TRL's GRPO (4 prompts, 4 answers each), so
  that both score 16 answers per update. Both: 16 updates, full fine-tuning at learning rate 2e-5, beta 0.05, answers
  of up to 32 new tokens sampled at temperature 1.
- **Evaluation before and after, on the 40 held-out questions**: 8 sampled answers each (temperature 1 with
  transformers' default top-k of 50, seeded once with 5 before the batches) and one greedy answer, judged by the same
  rule. Training samples without top-k. The KL to the starting model is measured on one sampled answer per held-out
  question, as `train_rlhf` reports it.

Written as JSON, with the machine:

    python -m ftbook.recorded.exp_rlhf_facts --json exp_rlhf_facts.json     # about 16 minutes on 2 idle CPU cores
"""
import argparse
import hashlib
import json
import os
import platform
import time
from dataclasses import asdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
import numpy as np
import torch

from ftbook.data import DATA_DIR, SHIPPED, load_data
from ftbook.judge import answer_prompts, contains_answer, words
from ftbook.models import load_tokenizer
from ftbook.rlhf import RLHFConfig, load_policy, train_rlhf
from ftbook.train import quiet

POLICY, HELD, SAMPLES, NEW_TOKENS, STEPS, RESPONSES = "smollm2-135m-instruct", 40, 8, 32, 16, 16
ARMS = {  # name -> RLHFConfig overrides; both score RESPONSES answers per update
    "ppo": dict(algo="ppo", batch_size=RESPONSES),
    "grpo": dict(algo="grpo", batch_size=RESPONSES // 4, num_generations=4),
}
COMMON = dict(max_steps=STEPS, max_new_tokens=NEW_TOKENS, learning_rate=2e-5, kl_coef=0.05)
if os.environ.get("EXP_SMOKE"):  # a seconds-long run of every code path, on a tiny random model
    POLICY, HELD, SAMPLES, NEW_TOKENS, STEPS = "tiny-llama", 4, 2, 4, 1
    COMMON = dict(max_steps=STEPS, max_new_tokens=NEW_TOKENS, learning_rate=2e-5, kl_coef=0.05)


def answers(model, tok, questions, judge):
    "SAMPLES sampled answers per question (seed 5) and one greedy answer each, with their 0/1 scores."
    asked = [q for q in questions for _ in range(SAMPLES)]
    sampled = answer_prompts(model, tok, asked, max_new_tokens=NEW_TOKENS, do_sample=True, seed=5, batch_size=80)
    greedy = answer_prompts(model, tok, questions, max_new_tokens=NEW_TOKENS, batch_size=40)
    s = judge(asked, sampled).reshape(len(questions), SAMPLES)
    return {"sampled_correct": s.mean(1), "sampled_words": np.array([words(a) for a in sampled]).reshape(len(questions), SAMPLES).mean(1),
            "sample": [sampled[i * SAMPLES] for i in range(len(questions))], "greedy": greedy, "greedy_correct": judge(questions, greedy)}


def no_nan(x):
    "The result with NaN (a metric this run does not measure, such as the judge's) written as null: strict JSON."
    if isinstance(x, dict): return {k: no_nan(v) for k, v in x.items()}
    if isinstance(x, list): return [no_nan(v) for v in x]
    return None if isinstance(x, float) and x != x else x


def main(out: Path):
    t0 = time.time()
    quiet()
    qa = load_data("general_qa")
    questions = list(qa["question"])
    judge = contains_answer(questions, qa["answer"], qa["aliases"])
    held, train = questions[:HELD], questions[HELD:] if not os.environ.get("EXP_SMOKE") else questions[HELD:2 * HELD]
    tok = load_tokenizer(POLICY)
    before = answers(load_policy(POLICY, RLHFConfig.for_profile("cpu", **COMMON)), tok, held, judge)
    result = {"what": __doc__.split("\n\n")[0], "policy": POLICY, "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores, "
              f"torch {torch.__version__}", "data_sha256": hashlib.sha256((DATA_DIR / SHIPPED["general_qa"][0]).read_bytes()).hexdigest(),
              "held_out_questions": len(held), "training_questions": train, "samples_per_question": SAMPLES,
              "max_new_tokens": NEW_TOKENS, "arms": []}
    for arm, over in ARMS.items():
        ta = time.time()
        cfg = RLHFConfig.for_profile("cpu", **COMMON, **over)
        policy = load_policy(POLICY, cfg)
        res = train_rlhf(policy, tok, train, held, judge, cfg)
        after = answers(policy, tok, held, judge)
        rows = [{"question": q, **{f"{k}_before": v for k, v in zip(before, vals_b)}, **{f"{k}_after": v for k, v in zip(after, vals_a)}}
                for q, vals_b, vals_a in zip(held, zip(*before.values()), zip(*after.values()))]
        rows = [{k: (float(v) if isinstance(v, (np.floating, float)) else v) for k, v in r.items()} for r in rows]
        result["arms"].append({"arm": arm, "config": asdict(cfg), "seconds": round(time.time() - ta), "metrics": res.metrics,
                               "history": res.history, "lines": res.lines, "rows": rows})
        print(f"{arm}: sampled accuracy {before['sampled_correct'].mean():.3f} -> {after['sampled_correct'].mean():.3f}, greedy "
              f"{before['greedy_correct'].mean():.3f} -> {after['greedy_correct'].mean():.3f}; {res.lines[0]}", flush=True)
    result["seconds"] = round(time.time() - t0)
    out.write_text(json.dumps(no_nan(result), indent=1, allow_nan=False) + "\n")
    print(f"{result['seconds']} s; wrote {out}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", type=Path, default=Path(__file__).with_suffix(".json"))
    main(ap.parse_args().json)
