"""Forgetting, measured without confounds: full fine-tuning, LoRA and replay at matched settings, over seeds.

Chapter 3 shows one fine-tune forgetting; one run on 40 questions cannot say how large the effect is, or whether
LoRA and replay reduce it. This experiment gives every arm the same model (SmolLM2-135M-Instruct), the same 24
sailing texts (the replay arm mixes 8 general texts in, so its steps see about 18 of the sailing texts), the same
number of optimizer steps, batch, sequence length and constant learning-rate schedule, and the same probe: the probe
part of the shipped `general` paragraphs (`general_split`, for perplexity) and all 100 `general_qa` questions
(accuracy, scored per question so that before/after pairs can be tested). Arms:

  - full, at two learning rates (1e-4 and 3e-4);
  - LoRA r=16 at the same 3e-4 (matched learning rate) and at 1e-3 (its usual, ten times the full rate);
  - replay: full at 3e-4 with a quarter of the training texts from the replay pool of `general`, the same step budget;
  - control: full at 3e-4 on general prose instead of sailing (the replay pool of `general`), the same step budget.
    SmolLM2-Instruct was last tuned on chat transcripts, so training on plain prose may change how well it predicts
    plain prose whether or not it forgets; the control measures that effect.

Each arm runs with three seeds (data order, LoRA initialisation). The result is written as JSON, with the machine,
for chapter 3 to load and plot:

    python -m ftbook.recorded.exp_forgetting --json exp_forgetting.json          # about 20 minutes on 2 CPU cores
    python -m ftbook.recorded.exp_forgetting --seeds 0 --arms full-3e-4 --json /tmp/x.json
"""
import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ARMS = {  # name -> ForgettingConfig overrides and the training text
    "full-1e-4": dict(learning_rate=1e-4),
    "full-3e-4": dict(learning_rate=3e-4),
    "lora-3e-4": dict(learning_rate=3e-4, lora_r=16),
    "lora-1e-3": dict(learning_rate=1e-3, lora_r=16),
    "replay-3e-4": dict(learning_rate=3e-4, replay=0.25),
    "control-3e-4": dict(learning_rate=3e-4, train_on="general"),
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    ap.add_argument("--steps", type=int, default=12, help="optimizer steps, the same for every arm")
    ap.add_argument("--json", help="write the results here (after every run)")
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from ftbook.data import load_data
    from ftbook.models import load_model, load_tokenizer
    from ftbook.pitfalls import ForgettingConfig, ForgettingProbe, domain_finetune, general_split, measure_general
    from ftbook.train import quiet
    quiet()
    name = "smollm2-135m-instruct"
    tok = load_tokenizer(name)
    sailing = list(load_data("sailing")["text"])
    domain_train, domain_eval = sailing[:48], sailing[-16:]
    replay_pool = list(general_split()[0]["text"])
    probe = ForgettingProbe.shipped(n_texts=0, n_questions=0)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"
    t0 = time.perf_counter()
    base = load_model(name)
    before = measure_general(base, tok, probe)
    del base
    out = {"model": name, "device": device, "threads": torch.get_num_threads(), "torch": torch.__version__,
           "steps": args.steps, "probe_texts": len(probe.texts), "probe_questions": len(probe.questions),
           "before": {"general_ppl": before["general_ppl"], "qa_correct": [int(x) for x in before["qa_correct"]]},
           "runs": []}
    print(f"before: general perplexity {before['general_ppl']:.2f}, {sum(before['qa_correct'])} of {len(probe.questions)} questions",
          flush=True)
    for arm in args.arms:
        spec = dict(ARMS[arm])
        train_on = spec.pop("train_on", "sailing")
        for seed in args.seeds:
            cfg = ForgettingConfig.for_profile("cpu", max_steps=args.steps, seed=seed, **spec)
            texts = replay_pool if train_on == "general" else domain_train
            t1 = time.perf_counter()
            res = domain_finetune(load_model(name), tok, texts, cfg, probe, replay_texts=replay_pool,
                                  domain_eval=domain_eval, before=before)
            after = res.history[-1]
            m = res.metrics
            row = {"arm": arm, "seed": seed, "learning_rate": cfg.learning_rate, "lora_r": cfg.lora_r, "replay": cfg.replay,
                   "train_on": train_on, "general_ppl_after": m["general_ppl_after"], "domain_ppl_before": m["domain_ppl_before"],
                   "domain_ppl_after": m["domain_ppl_after"], "qa_correct_after": [int(x) for x in after["qa_correct"]],
                   "qa_lost": m["qa_lost"], "qa_gained": m["qa_gained"], "seconds": time.perf_counter() - t1}
            out["runs"].append(row)
            print(f"{arm:13} seed {seed}: general ppl {before['general_ppl']:.2f} -> {row['general_ppl_after']:.2f}, "
                  f"domain ppl {row['domain_ppl_before']:.1f} -> {row['domain_ppl_after']:.1f}, "
                  f"lost {row['qa_lost']} gained {row['qa_gained']} ({row['seconds']:.0f} s)", flush=True)
            out["seconds"] = time.perf_counter() - t0
            if args.json: Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
