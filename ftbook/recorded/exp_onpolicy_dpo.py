"""DPO of SmolLM2-135M-Instruct on pairs made from its own answers (on-policy), ranked by a verifiable rule.

Chapter 8 runs this recipe small on a CPU; this experiment runs it at the size its headline needs:

- **Questions**: the shipped `general_qa` set. The first 40 are held out; the other 60 train.
- **On-policy pairs** (`ftbook.dpo.on_policy_pairs`): 8 answers per training question, sampled from the starting policy
  at temperature 1 (32 new tokens, seed 1), scored by `ftbook.judge.contains_answer` (1 where the answer contains the
  reference answer or an alias, else 0), and paired best with worst, at most 2 pairs per question. Held-out pairs are
  made the same way from the held-out questions (seed 2): they measure the policy's own preference.
- **DPO**: full fine-tuning, `DPORunConfig.for_profile("cpu")` with 3 epochs, learning rate 2e-5 and an SFT term of
  weight 1 on the chosen answers (TRL's "sft" loss, RPO), so the chosen answers do not lose likelihood.
- **Evaluation before and after, on the 40 held-out questions**: 8 sampled answers each (temperature 1, seed 5) and one
  greedy answer, all judged by the same rule. The rule is a fact check that no model was trained on.

Written as JSON, with the machine:

    python -m ftbook.recorded.exp_onpolicy_dpo --json exp_onpolicy_dpo.json     # about 14 minutes on 2 idle CPU cores
"""
import argparse
import hashlib
import json
import os
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
import numpy as np
import torch

from ftbook.data import DATA_DIR, SHIPPED, load_data
from ftbook.dpo import DPORunConfig, on_policy_pairs, train_dpo
from ftbook.judge import answer_prompts, contains_answer
from ftbook.models import load_model, load_tokenizer

POLICY, HELD, K, PER, SAMPLES, NEW_TOKENS = "smollm2-135m-instruct", 40, 8, 2, 8, 32
CFG = dict(num_epochs=3, learning_rate=2e-5, sft_weight=1.0)
if os.environ.get("EXP_SMOKE"):  # a seconds-long run of every code path, on a tiny random model
    POLICY, HELD, K, PER, SAMPLES, NEW_TOKENS, CFG = "tiny-llama", 4, 4, 1, 2, 4, dict(max_steps=1, learning_rate=2e-5, sft_weight=1.0)


def sampled_scores(model, tok, questions, judge, seed=5) -> np.ndarray:
    "(questions, SAMPLES) 0/1 scores of SAMPLES sampled answers per question, and the answers."
    asked = [q for q in questions for _ in range(SAMPLES)]
    answers = answer_prompts(model, tok, asked, max_new_tokens=NEW_TOKENS, do_sample=True, seed=seed, batch_size=64)
    return judge(asked, answers).reshape(len(questions), SAMPLES), [answers[i * SAMPLES:(i + 1) * SAMPLES] for i in range(len(questions))]


def main(out: Path):
    t0 = time.time()
    torch.manual_seed(0)
    qa = load_data("general_qa")
    questions = list(qa["question"])
    judge = contains_answer(questions, qa["answer"], qa["aliases"])
    held, train = questions[:HELD], questions[HELD:] if not os.environ.get("EXP_SMOKE") else questions[HELD:2 * HELD]
    tok, model = load_tokenizer(POLICY), load_model(POLICY)
    rank = (lambda ps, rs: np.array([len(r) for r in rs], float)) if os.environ.get("EXP_SMOKE") else judge  # a random model is never right
    pairs = on_policy_pairs(model, tok, train, rank, k=K, pairs_per_prompt=PER, max_new_tokens=NEW_TOKENS, seed=1)
    held_pairs = on_policy_pairs(model, tok, held, rank, k=K, pairs_per_prompt=PER, max_new_tokens=NEW_TOKENS, seed=2)
    greedy_before = answer_prompts(model, tok, held, max_new_tokens=NEW_TOKENS)
    before, samples_before = sampled_scores(model, tok, held, judge)
    cfg = DPORunConfig.for_profile("cpu", **CFG)
    res = train_dpo(model, tok, pairs, held_pairs, cfg)
    greedy_after = answer_prompts(model, tok, held, max_new_tokens=NEW_TOKENS)
    after, samples_after = sampled_scores(model, tok, held, judge)
    gb, ga = judge(held, greedy_before), judge(held, greedy_after)
    rows = [{"question": q, "greedy_before": b, "greedy_after": a, "greedy_correct_before": float(x), "greedy_correct_after": float(y),
             "sampled_correct_before": float(sb.mean()), "sampled_correct_after": float(sa.mean()),
             "sample_before": s0[0], "sample_after": s1[0]}
            for q, b, a, x, y, sb, sa, s0, s1 in zip(held, greedy_before, greedy_after, gb, ga, before, after, samples_before, samples_after)]
    result = {
        "what": __doc__.split("\n\n")[0], "policy": POLICY, "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores, "
        f"torch {torch.__version__}", "seconds": round(time.time() - t0), "data_sha256": hashlib.sha256(
            (DATA_DIR / SHIPPED["general_qa"][0]).read_bytes()).hexdigest(),
        "held_out_questions": len(held), "training_questions": len(train), "samples_per_question": SAMPLES, "k": K,
        "pairs_per_prompt": PER, "max_new_tokens": NEW_TOKENS, "train_pairs": len(pairs), "held_out_pairs": len(held_pairs),
        "config": asdict(cfg), "metrics": res.metrics, "lines": res.lines, "predictions": res.predictions, "rows": rows,
    }
    out.write_text(json.dumps(result, indent=1) + "\n")
    print("\n".join(res.lines))
    print(f"sampled accuracy {before.mean():.3f} -> {after.mean():.3f}; greedy {gb.mean():.3f} -> {ga.mean():.3f}; "
          f"{result['seconds']} s; wrote {out}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", type=Path, default=Path(__file__).with_suffix(".json"))
    main(ap.parse_args().json)
