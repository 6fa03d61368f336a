"""Benchmark `ftbook.leakage.leakage_report` on 100,000 training x 10,000 evaluation short texts, beside two baselines.

All three arms run in one process on the same generated data:

- `leakage_report`: ftbook's report (exact pass, NumPy shingling, `MinHash.bulk`, the smaller side indexed in
  `MinHashLSH`, candidates verified by exact Jaccard);
- `naive_datasketch`: the usual way of using datasketch, as in its README: one `MinHash` per text updated shingle by
  shingle, every training text inserted into a `MinHashLSH`, every evaluation text queried, candidates checked with
  `MinHash.jaccard`;
- `exact_only`: a dictionary of normalised training texts (fast, but blind to near-duplicates).

The texts are 8 to 30 words drawn with the word frequencies of ftbook's shipped English text. 2% of the evaluation
rows are training texts re-typed (case, spacing, punctuation) and 3% are training texts with one word changed or a
clause added. For each arm the benchmark reports wall and CPU seconds, the share of planted rows it found (with the right training
row), the same share among the plants whose true similarity reaches the threshold (a one-word edit of an 8-word text
may not), and the rows it flagged that were not planted.

    python -m ftbook.recorded.bench_leakage                 # 100k x 10k, writes bench_leakage.json here
    python -m ftbook.recorded.bench_leakage --n-train 20000 --n-eval 2000 --out /tmp/b.json
"""
from __future__ import annotations

import argparse
import collections
import datetime
import json
import os
import platform
import re
import time
from pathlib import Path

import numpy as np


def make_data(n_train: int, n_eval: int, seed: int = 0, exact_share: float = 0.02, near_share: float = 0.03):
    "Training texts, evaluation texts with planted leaks, and planted eval row -> train row."
    from ftbook.config import DATA_DIR
    words = re.findall(r"[a-z']+", " ".join(p.read_text(encoding="utf-8").lower() for p in sorted(DATA_DIR.glob("*.txt"))))
    counts = collections.Counter(words)
    vocab = np.array(sorted(counts))
    p = np.array([counts[w] for w in vocab], float); p /= p.sum()
    rng = np.random.default_rng(seed)

    def texts(n):
        lens = rng.integers(8, 31, n)
        toks = rng.choice(vocab, size=int(lens.sum()), p=p)
        ends = np.cumsum(lens)
        return [" ".join(toks[e - l:e]).capitalize() + "." for e, l in zip(ends, lens)]

    train, ev = texts(n_train), texts(n_eval)
    n_exact, n_near = int(exact_share * n_eval), int(near_share * n_eval)
    rows = rng.choice(n_eval, size=n_exact + n_near, replace=False)
    src = rng.choice(n_train, size=n_exact + n_near, replace=False)
    planted = {}
    for k, (i, j) in enumerate(zip(rows.tolist(), src.tolist())):
        t = train[j]
        if k < n_exact: t = "  " + t.upper().replace(" ", "  ").rstrip(".") + "!"
        elif k % 2: t = t.rstrip(".") + ", as far as I know."
        else:
            w = t.split(); w[int(rng.integers(len(w)))] = "banana"; t = " ".join(w)
        ev[i], planted[i] = t, j
    return train, ev, planted


def findable(train, ev, planted, threshold) -> set:
    "Planted rows whose true Jaccard similarity to their source reaches the threshold (a one-word edit of a short text may not)."
    from ftbook.leakage import normalize_text, shingle_hashes
    out = set()
    for i, j in planted.items():
        a, b = (set(s.tolist()) for s in shingle_hashes([normalize_text(train[j]), normalize_text(ev[i])]))
        if len(a & b) / len(a | b) >= threshold: out.add(i)
    return out


def run_report(train, ev, threshold):
    from ftbook.pitfalls import leakage_report
    rep = leakage_report(train, ev, threshold=threshold)
    return {m.eval_index: m.train_index for m in rep.exact + rep.near}


def run_exact(train, ev, threshold):
    from ftbook.pitfalls import normalize_text
    first = {}
    for j, t in enumerate(train): first.setdefault(normalize_text(t), j)
    return {i: first[n] for i, n in enumerate(map(normalize_text, ev)) if n in first}


def run_naive(train, ev, threshold, num_perm=128, n=5):
    from datasketch import MinHash, MinHashLSH
    from ftbook.pitfalls import normalize_text

    def minhash(text):
        t = normalize_text(text)
        m = MinHash(num_perm=num_perm)
        for s in {t[i:i + n] for i in range(max(1, len(t) - n + 1))}: m.update(s.encode("utf-8"))
        return m

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    train_m = [minhash(t) for t in train]
    for j, m in enumerate(train_m): lsh.insert(j, m)
    found = {}
    for i, t in enumerate(ev):
        m = minhash(t)
        scored = [(m.jaccard(train_m[j]), -j) for j in lsh.query(m)]
        best = max(scored, default=None)
        if best and best[0] >= threshold: found[i] = -best[1]
    return found


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration): pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cpu}, {cores} cores, load average {os.getloadavg()[0]:.1f} at start"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n-train", type=int, default=100_000)
    ap.add_argument("--n-eval", type=int, default=10_000)
    ap.add_argument("--threshold", type=float, default=0.6)
    ap.add_argument("--skip-naive", action="store_true", help="skip the slow naive-datasketch baseline")
    ap.add_argument("--out", default="bench_leakage.json")  # in the current folder: the shipped result stays as it is
    a = ap.parse_args(argv)
    import datasketch, ftbook.leakage  # noqa: F401  imported here, so that no arm pays for the imports
    where = machine()
    t0 = time.perf_counter()
    train, ev, planted = make_data(a.n_train, a.n_eval)
    reachable = findable(train, ev, planted, a.threshold)
    print(f"{where}\n{a.n_train:,} train x {a.n_eval:,} eval texts, {len(planted)} leaks planted, {len(reachable)} of them at "
          f"Jaccard >= {a.threshold} (generated in {time.perf_counter() - t0:.1f} s)")
    arms = [("leakage_report", run_report), ("exact_only", run_exact)] + ([] if a.skip_naive else [("naive_datasketch", run_naive)])
    results = []
    for name, fn in arms:
        t0, c0 = time.perf_counter(), time.process_time()
        found = fn(train, ev, a.threshold)
        secs, cpu = time.perf_counter() - t0, time.process_time() - c0  # CPU seconds: what other processes cannot inflate
        hits = {i for i, j in planted.items() if i in found and (found[i] == j or train[found[i]] == train[j])}
        results.append({"name": name, "seconds": round(secs, 2), "cpu_seconds": round(cpu, 2), "recall": len(hits) / len(planted),
                        "recall_at_threshold": len(hits & reachable) / len(reachable),
                        "false_alarms": len(set(found) - set(planted))})
        r = results[-1]
        print(f"{name:18} {secs:7.1f} s   recall {r['recall']:6.1%} (at J >= {a.threshold}: {r['recall_at_threshold']:6.1%})"
              f"   false alarms {r['false_alarms']}", flush=True)
    rec = {"machine": where, "date": datetime.date.today().isoformat(), "n_train": a.n_train, "n_eval": a.n_eval,
           "threshold": a.threshold, "planted": len(planted), "planted_at_threshold": len(reachable), "arms": results}
    Path(a.out).write_text(json.dumps(rec, indent=2) + "\n")
    print(f"Wrote {a.out}")


if __name__ == "__main__":
    main()
