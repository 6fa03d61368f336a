"""Can any masked-LM head on the frozen MiniLM encoder fill masks better than a unigram guess, given all the English text
that ships offline? A longer warm-up than chapter 4 can afford on a CPU.

Chapter 4 gives `all-MiniLM-L6-v2` (which ships without a masked-LM head) a BERT head and trains it for a few steps on
general English with the encoder frozen; its fill-mask top-5 accuracy does not beat a unigram guess. This experiment
asks whether that is only a matter of steps. With the encoder frozen, its outputs at masked positions can be computed
once (`--draws` masking patterns of every warm-up block) and the head trained on them for many steps: hundreds of times
the chapter's warm-up, in minutes. Arms:

  - plain: AdamW at 1e-3, no weight decay, a batch of 256 masked positions;
  - regularised: AdamW at 3e-4, weight decay 0.1, dropout 0.3 on the encoder's outputs, the same batch.

The warm-up text is the chapter's (the replay half of `general` and the `reviews` texts, in 64-token blocks). The
evaluation is the chapter's method on more tokens: `fill_mask_hits` (each scored token masked alone) on every held-out
sailing and general-probe text, 16 tokens each, against the same add-one-smoothed unigram guess, compared with
`ftbook.stats.compare` (paired bootstrap interval, McNemar test). Written as JSON, with the machine:

    python -m ftbook.recorded.exp_mlm_head --json exp_mlm_head.json          # about 8 minutes on 2 CPU cores
"""
import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import numpy as np
import torch

from ftbook.config import get_profile
from ftbook.data import load_data, split_data
from ftbook.models import load_model, load_tokenizer
from ftbook.selfsup import PretrainConfig, fill_mask_hits, make_blocks, new_head_parameters
from ftbook.stats import compare

ARMS = {"plain": dict(lr=1e-3, weight_decay=0.0, dropout=0.0), "regularised": dict(lr=3e-4, weight_decay=0.1, dropout=0.3)}


class ContextFree(torch.nn.Module):
    "Scores every position with the same log-probabilities (the unigram guess), as in chapter 4."
    device = torch.device("cpu")
    def __init__(self, logp): super().__init__(); self.logp = logp
    def forward(self, input_ids, **kw): return SimpleNamespace(logits=self.logp.expand(*input_ids.shape, -1))


@torch.no_grad()
def masked_features(model, tok, blocks, draws, rate, seed):
    "The frozen encoder's last hidden state at each masked position, for `draws` random maskings of each block; and the true ids."
    g = torch.Generator().manual_seed(seed)
    H, Y = [], []
    for b in blocks:
        ids = torch.tensor(b)
        special = torch.tensor(tok.get_special_tokens_mask(b, already_has_special_tokens=True)).bool()
        for _ in range(draws):
            m = (torch.rand(len(ids), generator=g) < rate) & ~special
            if not m.any(): continue
            x = ids.clone(); x[m] = tok.mask_token_id
            H.append(model.base_model(input_ids=x[None]).last_hidden_state[0, m]); Y.append(ids[m])
    return torch.cat(H), torch.cat(Y)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=256, help="masked positions per step")
    ap.add_argument("--draws", type=int, default=8, help="masking patterns per warm-up text")
    ap.add_argument("--arms", default=",".join(ARMS))
    ap.add_argument("--eval-texts", type=int, default=0, help="held-out texts per set (0: all; chapter 4 uses 12)")
    ap.add_argument("--positions", type=int, default=16, help="tokens scored per text (chapter 4 uses 8)")
    ap.add_argument("--json", help="write the result here")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    p = get_profile("cpu")
    cfg = PretrainConfig.for_profile("cpu", objective="mlm")
    sailing_train, sailing_eval = split_data(load_data("sailing"), eval_size=0.2, seed=0)
    general_replay, general_probe = split_data(load_data("general"), eval_size=0.5, seed=0)
    head_text = list(general_replay["text"]) + list(load_data("reviews")["text"])  # chapter 4's warm-up text
    n = args.eval_texts or None
    evals = {"domain": list(sailing_eval["text"][:n]), "general": list(general_probe["text"][:n])}
    tok = load_tokenizer(p.encoder_offline)
    blocks = list(make_blocks(tok, head_text, cfg.block_size, "mlm")["input_ids"])  # the warm-up's 64-token blocks
    ids = torch.tensor(blocks + list(make_blocks(tok, list(sailing_train["text"]), cfg.block_size, "mlm")["input_ids"])).flatten()
    counts = torch.bincount(ids[~torch.isin(ids, torch.tensor(tok.all_special_ids))], minlength=len(tok)).float() + 1
    counts[tok.all_special_ids] = 0
    unigram = ContextFree((counts / counts.sum()).log())
    hit = lambda model: {k: fill_mask_hits(model, tok, v, 5, cfg.eval_length, args.positions) for k, v in evals.items()}
    uni_hits = hit(unigram)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"
    out = {"experiment": "exp_mlm_head", "machine": device, "torch": torch.__version__, "steps": args.steps, "batch": args.batch, "draws": args.draws,
           "warmup_texts": len(head_text), "warmup_blocks": len(blocks), "eval_texts": {k: len(v) for k, v in evals.items()}, "eval_tokens": {k: len(v) for k, v in uni_hits.items()},
           "unigram_top5": {k: float(v.mean()) for k, v in uni_hits.items()}, "arms": {}}
    t0 = time.perf_counter()
    for arm in args.arms.split(","):
        hp = ARMS[arm]
        model = load_model(p.encoder_offline, task="masked-lm").eval()
        fresh = set(new_head_parameters(model, p.encoder_offline))
        H, Y = masked_features(model, tok, blocks, args.draws, cfg.mlm_probability, seed=0)
        head = model.cls.predictions  # transform (dense, GELU, LayerNorm) -> decoder tied to the word embeddings, + bias
        params = [q for n, q in model.named_parameters() if n in fresh]
        for n, q in model.named_parameters(): q.requires_grad = n in fresh
        opt = torch.optim.AdamW(params, lr=hp["lr"], weight_decay=hp["weight_decay"])
        g, losses = torch.Generator().manual_seed(0), []
        head.train()
        for step in range(args.steps):
            idx = torch.randint(len(Y), (args.batch,), generator=g)
            loss = torch.nn.functional.cross_entropy(head(torch.nn.functional.dropout(H[idx], hp["dropout"])), Y[idx])
            opt.zero_grad(); loss.backward(); opt.step(); losses.append(loss.item())
        model.eval()
        hits = hit(model)
        res = {"hyperparameters": hp, "train_positions": len(Y), "train_loss_first": float(np.mean(losses[:20])),
               "train_loss_last": float(np.mean(losses[-20:])), "top5": {k: float(v.mean()) for k, v in hits.items()},
               "vs_unigram": {k: {kk: vv for kk, vv in compare(hits[k], uni_hits[k], ("the trained head", "the unigram guess")).items()
                                  if isinstance(vv, (int, float, str, bool))} for k in evals}}
        out["arms"][arm] = res
        print(arm, json.dumps({k: res[k] for k in ("train_loss_first", "train_loss_last", "top5")}), flush=True)
        for k in evals: print("  ", k, res["vs_unigram"][k]["sentence"], flush=True)
    out["seconds"] = time.perf_counter() - t0
    print("unigram", out["unigram_top5"], f"{out['seconds']:.0f} s")
    if args.json: Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
