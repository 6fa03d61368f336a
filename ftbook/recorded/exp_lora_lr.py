"""Full fine-tuning against LoRA, each at its own best learning rate: a sweep on MiniLM and the shipped reviews.

A comparison at each method's default rate can make a method lose for its rate alone. A fair comparison gives each arm
the rate that suits it, as "LoRA Without Regret" (Thinking Machines, 2025) does. This experiment sweeps the rate per
arm, and chapter 9 reads it:

- **Data**: the shipped `reviews`, split as chapter 9 splits them (`split_data`, a fifth held out as the test set). The
  rest is split again (a quarter for validation, seed 1); 256 balanced reviews of what remains train every run.
- **Arms**: full fine-tuning; LoRA of rank 4 and of rank 16 on every linear layer (alpha = 2r, the head trained in full).
- **Rates**: four per arm, about half a decade apart: a third of each method's default, the default, and three and ten
  times it (defaults: full 1e-4, LoRA ten times that).
- **Budget**: 2 epochs of batches of 16 (32 steps), warm-up then linear decay, the `cpu` profile's other settings;
  seeds 0, 1 and 2 for every arm and rate.
- **Selection**: each arm's best rate is the one with the highest mean validation accuracy over the seeds. Only then
  is the test set read: each arm at its chosen rate, and at its default rate, against full fine-tuning at its chosen
  rate. The test set plays no part in choosing.

Written as JSON, with the machine:

    python -m ftbook.recorded.exp_lora_lr --json exp_lora_lr.json      # about 10 minutes on 2 idle CPU cores
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
import torch

from ftbook.data import DATA_DIR, SHIPPED, split_data
from ftbook.classify import ClassifyConfig, balanced_sample, load_labelled
from ftbook.lora import Arm, lr_sweep

MODEL, N_TRAIN, EPOCHS, SEEDS = "minilm-l6", 256, 2, (0, 1, 2)
ARMS = [Arm("full"), Arm("lora-r4", 4), Arm("lora-r16", 16)]
RATES = {"full": (3e-5, 1e-4, 3e-4, 1e-3), "lora-r4": (3e-4, 1e-3, 3e-3, 1e-2), "lora-r16": (3e-4, 1e-3, 3e-3, 1e-2)}
if os.environ.get("EXP_SMOKE"):  # a seconds-long run of every code path, on a tiny random model
    MODEL, N_TRAIN, EPOCHS, SEEDS = "tiny-bert", 16, 1, (0, 1)
    RATES = {k: v[1:3] for k, v in RATES.items()}


def data():
    "Train, validation and test: the test set is chapter 9's; validation and train come from the rest."
    rest, test = split_data(load_labelled("reviews"), eval_size=0.2)
    pool, val = split_data(rest, eval_size=0.25, seed=1)
    return balanced_sample(pool, N_TRAIN), val, test


def main(out: Path):
    t0 = time.time()
    train, val, test = data()
    cfg = ClassifyConfig.for_profile("cpu", save_steps=0, num_epochs=EPOCHS)
    res = lr_sweep(MODEL, train, val, test, ARMS, RATES, SEEDS, cfg)
    result = {"what": __doc__.split("\n\n")[0], "model": MODEL, "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores, "
              f"torch {torch.__version__}", "data_sha256": hashlib.sha256((DATA_DIR / SHIPPED["reviews"][0]).read_bytes()).hexdigest(),
              "n_train": len(train), "n_val": len(val), "n_test": len(test), "epochs": EPOCHS, "seeds": list(SEEDS),
              "batch_size": cfg.batch_size, "rates": RATES, **res, "seconds": round(time.time() - t0)}
    out.write_text(json.dumps(result, indent=1, allow_nan=False) + "\n")
    print(f"wrote {out} in {result['seconds']} s")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", type=Path, default=Path(__file__).with_suffix(".json"))
    main(ap.parse_args().json)
