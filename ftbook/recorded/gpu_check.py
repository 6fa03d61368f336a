"""The GPU check: what the book's `#| gpu` cells plan, measured on a card, in one JSON.

Three parts, with no network (the models are random-init copies of the real architectures, built from
`ftbook.train.KNOWN_CONFIGS`; memory and throughput do not depend on the weights):
  1. plans: the configuration of every chapter's `#| gpu` cell at a profile's size (the card's, or `--profile`). For
     each, the memory plan (`ftbook.train.plan_memory`) beside the peak the CUDA allocator measures over two AdamW
     steps of that configuration (the plan's micro-batch, sequence length, precision, checkpointing, LoRA, frozen copies).
  2. bench: `ftbook bench` on the Llama-3.2-1B shape, TRL's defaults against ftbook's defaults, in one process.
  3. launch: `ftbook sft` on the two-layer `tiny-llama` preset, started by `accelerate launch` under a shipped config:
     `ddp` on two GPUs where there are two, else `fsdp2` on one (two ranks cannot share one card).
It writes gpu_check.json, which names the card. It has not yet run on a card, and no chapter reads its JSON yet; once
a run's JSON is copied to ftbook/recorded/gpu_check.json, a chapter can cite it with `ftbook.config.recorded("gpu_check")`.

    python -m ftbook.recorded.gpu_check                   # on a GPU: writes ./gpu_check.json
    python -m ftbook.recorded.gpu_check --profile colab   # the colab profile's configurations, on whatever card this is
    python -m ftbook.recorded.gpu_check --dry             # anywhere: the same code on the CPU, tiny shapes, a few steps

The dry run is what CI runs (tests/test_gpu_check.py): it checks that every part runs, not what it measures. It plans
the `colab` profile's dry sizes (`ftbook.config.dry_profile`) on the two-layer `tiny-llama` and `tiny-bert` presets,
measures the CPU's resident set, benches the `tiny` shape for two steps, and launches two CPU processes under `ddp`.

CELLS repeats each `#| gpu` cell's configuration. tests/test_gpu_check.py fails when a chapter with such a cell has no
entry here, and when an entry's plans differ from the plans its cell makes, on the colab and gpu profiles.
"""
import argparse
import gc
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from ftbook.bench import bench
from ftbook.classify import ClassifyConfig, load_labelled
from ftbook.config import DATA_DIR, detect_profile, dry_profile, get_profile
from ftbook.data import load_data, split_data
from ftbook.dpo import DPORunConfig
from ftbook.pitfalls import ForgettingConfig
from ftbook.reward import RewardModelConfig
from ftbook.rlhf import RLHFConfig
from ftbook.scale import launch_command
from ftbook.selfsup import PretrainConfig
from ftbook.sft import InstructConfig
from ftbook.train import PRECISIONS, add_lora, memory_now_mb, model_config, peak_memory_mb, plan_memory, reset_peak_memory


def _forgetting(p):
    cfg = ForgettingConfig.for_profile(p)
    return cfg, {"n_train_examples": cfg.n_domain, "max_epochs": 8}


def _sailing_tokens() -> int:
    return sum(len(t) for t in split_data(load_data("sailing"), eval_size=0.2, seed=0)[0]["text"]) // 4  # about 4 characters a token


def _rlhf(p):
    cfg = RLHFConfig.for_profile(p, mini_batches=8)
    return cfg, dict(copies=1, micro_batch=cfg.batch_size // cfg.mini_batches, seq_len=cfg.max_length + cfg.max_new_tokens,
                     precision="fp32", can_checkpoint=False)


CELLS = {  # notebook -> [(name, role, task, a function: profile -> (config, plan_memory's keyword arguments))], as in its #| gpu cell
    "01_pretrained": [],  # inference only: its plan holds the weights and a little room; nothing trains
    "03_pitfalls": [("forgetting, full arm", "causal_lm", "causal-lm", _forgetting)],
    "04_selfsup": [("masked-LM continued pretraining", "encoder", "masked-lm",
                    lambda p: (PretrainConfig.for_profile(p, objective="mlm", batch_size=8, head_steps=10), {"n_train_tokens": _sailing_tokens()})),
                   ("causal-LM continued pretraining", "causal_lm", "causal-lm",
                    lambda p: (PretrainConfig.for_profile(p, objective="clm", batch_size=8, eval_every=2), {"n_train_tokens": _sailing_tokens()}))],
    "05_sft": [("SFT", "causal_lm", "causal-lm",
                lambda p: (InstructConfig.for_profile(p, num_epochs=3, max_length=512, batch_size=16, grad_accum=1, save_steps=0), {}))],
    "05a_classify": [("classifier", "encoder", "seq-cls",
                      lambda p: (ClassifyConfig.for_profile(p, max_steps=300, save_steps=0),
                                 {"n_train_examples": len(split_data(load_labelled("reviews"), eval_size=0.2)[0]), "max_epochs": 5}))],
    "06_reward": [("pairwise reward model", "causal_lm", "seq-cls",
                   lambda p: (RewardModelConfig.for_profile(p, num_epochs=2, batch_size=16), {"sequences_per_example": 2}))],
    "07_rlhf": [("PPO", "causal_lm", "causal-lm", _rlhf)],
    "08_dpo": [("DPO with LoRA", "causal_lm", "causal-lm",
                lambda p: (DPORunConfig.for_profile(p, lora_r=16, eval_steps=25), {"sequences_per_example": 2}))],
    "09_lora": [("SFT comparison, full arm", "causal_lm", "causal-lm", lambda p: (InstructConfig.for_profile(p, max_steps=50, save_steps=0), {}))],
    "10a_bench": [],  # part 2 below
    "11_scale": [("SFT under FSDP2", "causal_lm", "causal-lm", lambda p: (InstructConfig.for_profile(p, max_steps=30, save_steps=0), {}))],
}


def plans(profile) -> list[tuple]:
    "(notebook, name, task, plan, plan_memory's keyword arguments) for every configuration in CELLS, at `profile`'s size."
    out = []
    for nb, cells in CELLS.items():
        for name, role, task, make in cells:
            cfg, kw = make(profile)
            out.append((nb, name, task, plan_memory(getattr(profile, role), cfg, profile, task=task, **kw), kw))
    return out


def measure(plan, task: str, sequences_per_example: int = 1, copies: float = 0, steps: int = 2) -> dict:
    """GiB at the peak of `steps` AdamW steps of the planned run on a random-init model: `measured_gib` is what the
    tensors held at most (the CUDA allocator's peak, or the CPU's resident set), `reserved_gib` what the allocator kept
    from the card at most (the tensors plus its cache; CUDA only). What the process held before is left out."""
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, AutoModelForSequenceClassification
    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    config = model_config(plan.arch.name)
    if task == "seq-cls": config.num_labels, config.pad_token_id = 1, config.pad_token_id or 0
    cls = {"causal-lm": AutoModelForCausalLM, "masked-lm": AutoModelForMaskedLM, "seq-cls": AutoModelForSequenceClassification}[task]
    gc.collect()  # the previous configuration's models (PEFT's hold reference cycles) are freed before this one starts
    if cuda: torch.cuda.empty_cache()
    reset_peak_memory()
    start = memory_now_mb()  # what the card's tensors (or the CPU's resident set) hold already; the peak now starts here
    start_reserved = torch.cuda.memory_reserved() / 2**20 if cuda else 0.0
    model = cls.from_config(config, dtype=torch.float32).to(device)  # float32 master weights, as the chapters train
    frozen = [cls.from_config(config, dtype=torch.float32).to(device).requires_grad_(False) for _ in range(int(round(copies)))]
    if plan.method == "lora": model = add_lora(model, task, plan.config.lora_r)
    if plan.checkpointing: model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    opt = torch.optim.AdamW([w for w in model.parameters() if w.requires_grad], lr=1e-5)
    rows = plan.micro_batch * sequences_per_example
    low = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(plan.precision)
    for _ in range(steps):
        ids = torch.randint(5, config.vocab_size - 1, (rows, plan.seq_len), device=device)
        labels = torch.zeros(rows, dtype=torch.float, device=device) if task == "seq-cls" else ids
        with torch.autocast(device, dtype=low or torch.float32, enabled=low is not None and cuda):
            for f in frozen:
                with torch.no_grad(): f(input_ids=ids)
            loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    out = {"measured_gib": round((peak_memory_mb() - start) / 1024, 2)}
    if cuda: out["reserved_gib"] = round((torch.cuda.max_memory_reserved() / 2**20 - start_reserved) / 1024, 2)
    del model, frozen, opt
    gc.collect()
    return out


def check_plans(profile, log) -> list[dict]:
    rows = []
    for nb, name, task, plan, kw in plans(profile):
        row = {"notebook": nb, "run": name, "model": plan.arch.name, "task": task, "plan": plan.line, "plan_gib": round(plan.total_gib, 2),
               "fits": plan.fits, "micro_batch": plan.micro_batch, "seq_len": plan.seq_len, "precision": plan.precision,
               "method": plan.method, "checkpointing": plan.checkpointing}
        if plan.fits:
            t0 = time.perf_counter()
            row.update(measure(plan, task, kw.get("sequences_per_example", 1), kw.get("copies", 0)))
            row["measure_seconds"] = round(time.perf_counter() - t0, 1)
        log(f"{nb} / {name}: plan {row['plan_gib']} GiB, measured {row.get('measured_gib', 'not run: does not fit')} GiB")
        rows.append(row)
    return rows


def check_launch(dry: bool, out: Path, log) -> dict:
    gpus = torch.cuda.device_count()
    config, n = ("ddp", 2) if dry or gpus >= 2 else ("fsdp", 1)
    verb = f"sft --model tiny-llama --train {DATA_DIR / 'instructions.jsonl'} --max-steps 4 --batch-size 2 --out {out / 'launch'}"
    cmd = launch_command(verb, config=config, gpus=n)
    env = {**os.environ, **({"CUDA_VISIBLE_DEVICES": "", "FTBOOK_PROFILE": "cpu"} if dry else {})}
    argv = [sys.executable, "-m", "accelerate.commands.launch", *shlex.split(cmd)[2:]]  # `accelerate launch` without relying on PATH
    t0 = time.perf_counter()
    r = subprocess.run(argv, capture_output=True, text=True, env=env)
    res = {"config": config, "processes": n, "command": cmd, "returncode": r.returncode, "seconds": round(time.perf_counter() - t0, 1)}
    metrics = out / "launch" / "metrics.json"
    if r.returncode == 0 and metrics.exists():
        res["metrics"] = {k: v for k, v in json.loads(metrics.read_text()).items() if k != "config"}
    else: res["stderr_tail"] = r.stderr[-3000:]
    log(f"launch: {config} x {n}: exit {r.returncode} in {res['seconds']} s")
    return res


def machine() -> str:
    if torch.cuda.is_available(): return f"{torch.cuda.get_device_name(0)} x {torch.cuda.device_count()}"
    return f"{platform.processor() or platform.machine()} CPU, {os.cpu_count()} cores (dry run)"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dry", action="store_true", help="the same code on the CPU, tiny shapes, a few steps (what CI runs)")
    ap.add_argument("--out", default="gpu_check.json", help="where to write the JSON (default: ./gpu_check.json)")
    ap.add_argument("--profile", choices=["colab", "gpu"], help="whose configurations to plan and measure (default: the card's)")
    ap.add_argument("--parts", default="plans,bench,launch", help="comma-separated: plans, bench, launch")
    a = ap.parse_args(argv)
    if not a.dry and not torch.cuda.is_available():
        sys.exit("gpu_check: no CUDA GPU here. Fix: run it on a GPU machine, or pass --dry to check its code on the CPU")
    # a dry run plans the colab profile's dry sizes on its two-layer presets: every part's code in about a minute
    profile = dry_profile(a.profile or "colab") if a.dry else get_profile(a.profile or detect_profile())
    parts, t0 = a.parts.split(","), time.perf_counter()
    log = lambda s: print(f"[{time.perf_counter() - t0:6.1f} s] {s}", flush=True)
    res = {"script": "ftbook/recorded/gpu_check.py", "machine": machine(), "dry": a.dry, "profile": profile.name,
           "torch": torch.__version__, "cuda": torch.version.cuda, "precisions": PRECISIONS}
    with tempfile.TemporaryDirectory(prefix="ftbook-gpu-check-") as tmp:
        if "plans" in parts: res["plans"] = check_plans(profile, log)
        if "bench" in parts:
            arch = "tiny" if a.dry else "llama3.2-1b"
            res["bench"] = bench(arch, arms=["trl_defaults", "ftbook"], **({"steps": 2, "warmup": 0} if a.dry else {}), progress=log)
        if "launch" in parts: res["launch"] = check_launch(a.dry, Path(tmp), log)
    res["seconds"] = round(time.perf_counter() - t0, 1)
    Path(a.out).write_text(json.dumps(res, indent=1) + "\n")
    log(f"wrote {a.out}")
    failed = [p for p in res.get("plans", []) if not p["fits"]] + ([res["launch"]] if res.get("launch", {}).get("returncode") else [])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
