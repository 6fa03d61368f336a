"""`ftbook classify` with its default settings against a plain `transformers.Trainer`, side by side in one process.

Both arms fine-tune the same model (default: the `minilm-l6` preset) for the same number of epochs on the same
training split and are scored on the same held-out split. The ftbook arm is the command itself, called in-process
(`ftbook.cli.main(["classify", ...])`, defaults for everything but the model, files, columns, epochs and seed). The
plain arm is what the transformers documentation shows: `AutoModelForSequenceClassification`, `TrainingArguments`
defaults (learning rate 5e-5, batch 8, no warm-up, no weight decay), dynamic padding, `Trainer.evaluate`.

Data: every labelled set ftbook ships, split with `ftbook.data.split_data(eval_size=0.2)` (hash split):
  - reviews / label: 840 short reviews, positive or negative;
  - reviews / category: the same 840 reviews, 16 product and experience categories;
  - sailing_topics / label: 320 sailing sentences, 4 topics.
That is 2,000 labelled examples of 1,160 distinct texts, the largest labelled real text available offline.

    python -m ftbook.recorded.bench_classify                      # 1 seed, 3 epochs; prints a table
    python -m ftbook.recorded.bench_classify --seeds 0 1 2 --json bench_classify.json
    python -m ftbook.recorded.bench_classify --tasks reviews/label
"""
import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

TASKS = [("reviews", "label"), ("reviews", "category"), ("sailing_topics", "label")]


def _write(rows, path: Path, label_field: str):
    path.write_text("".join(json.dumps({"text": r["text"], label_field: r[label_field]}) + "\n" for r in rows))


def plain_trainer(model_dir: str, train, test, label_field: str, epochs: float, seed: int, out: str) -> dict:
    "A plain transformers fine-tune: the documented defaults, nothing from ftbook but the metric function."
    import torch
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer,
                              TrainingArguments, set_seed)
    from ftbook.metrics import classification_metrics
    set_seed(seed)
    tok = AutoTokenizer.from_pretrained(model_dir)
    labels = sorted(set(train[label_field]))
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=len(labels))
    enc = lambda ds: ds.map(lambda r: {**tok(r["text"], truncation=True), "labels": labels.index(r[label_field])},
                            remove_columns=ds.column_names)
    args = TrainingArguments(output_dir=out, num_train_epochs=epochs, seed=seed, report_to="none", save_strategy="no",
                             use_cpu=not torch.cuda.is_available(), disable_tqdm=True)
    trainer = Trainer(model=model, args=args, train_dataset=enc(train), eval_dataset=enc(test),
                      data_collator=DataCollatorWithPadding(tok), compute_metrics=classification_metrics)
    t0 = time.perf_counter()
    trainer.train()
    secs = time.perf_counter() - t0
    m = trainer.evaluate()
    return {"accuracy": m["eval_accuracy"], "macro_f1": m["eval_macro_f1"], "train_seconds": secs, "steps": trainer.state.global_step}


def ftbook_classify(model: str, train_file: Path, test_file: Path, label_field: str, epochs: float, seed: int, out: Path) -> dict:
    "`ftbook classify` with its defaults, run in this process."
    from ftbook.cli import main
    rc = main(["classify", "--model", model, "--train", str(train_file), "--eval", str(test_file), "--label-field", label_field,
               "--epochs", str(epochs), "--seed", str(seed), "--out", str(out)])
    if rc != 0: raise SystemExit(f"ftbook classify failed with status {rc}")
    m = json.loads((out / "metrics.json").read_text())
    return {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "train_seconds": m["train_seconds"], "steps": m["train_steps"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="minilm-l6")
    ap.add_argument("--epochs", type=float, default=3, help="epochs for both arms (ftbook classify's default: 3)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--tasks", nargs="+", default=[f"{s}/{f}" for s, f in TASKS], help="which of the tasks to run (default: all)")
    ap.add_argument("--json", help="also write the results to this file")
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from ftbook.data import load_data, split_data
    from ftbook.models import resolve_model
    from ftbook.train import quiet
    quiet()
    model_dir = resolve_model(args.model)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"
    tmp = Path(tempfile.mkdtemp(prefix="bench-classify-"))
    results = []
    for source, field in [t.split("/") for t in args.tasks]:
        train, test = split_data(load_data(source), eval_size=0.2)
        tf, ef = tmp / f"{source}-{field}-train.jsonl", tmp / f"{source}-{field}-test.jsonl"
        _write(train, tf, field); _write(test, ef, field)
        for seed in args.seeds:
            row = {"task": f"{source}/{field}", "classes": len(set(train[field])), "train": len(train), "test": len(test), "seed": seed}
            print(f"== {row['task']} seed {seed}", flush=True)
            row["ftbook"] = ftbook_classify(args.model, tf, ef, field, args.epochs, seed, tmp / f"run-{source}-{field}-{seed}")
            row["trainer"] = plain_trainer(model_dir, train, test, field, args.epochs, seed, str(tmp / "plain"))
            print(f"   ftbook classify {row['ftbook']['accuracy']:.3f}   plain Trainer {row['trainer']['accuracy']:.3f}", flush=True)
            results.append(row)
            if args.json:  # after every run, so that a long benchmark keeps what it has measured
                Path(args.json).write_text(json.dumps({"model": args.model, "epochs": args.epochs, "device": device,
                                                       "threads": torch.get_num_threads(), "results": results}, indent=1) + "\n")
    print(f"\n{args.model}, {args.epochs:g} epochs, {device}, {torch.get_num_threads()} threads")
    head = f"{'task':22} {'classes':>7} {'train':>5} {'test':>4} {'seed':>4}  {'ftbook acc':>10} {'Trainer acc':>11}  {'ftbook F1':>9} {'Trainer F1':>10}  {'ftbook s':>8} {'Trainer s':>9}"
    print(head)
    for r in results:
        f, t = r["ftbook"], r["trainer"]
        print(f"{r['task']:22} {r['classes']:>7} {r['train']:>5} {r['test']:>4} {r['seed']:>4}  {f['accuracy']:>10.3f} {t['accuracy']:>11.3f}"
              f"  {f['macro_f1']:>9.3f} {t['macro_f1']:>10.3f}  {f['train_seconds']:>8.0f} {t['train_seconds']:>9.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
