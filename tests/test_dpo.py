"""DPO: the hand-written loss against TRL's on one batch, a run that lifts held-out accuracy above chance beyond its
interval, the monitor's silence on a healthy run (its displacement alarm, and the SFT term that reduces it, are asserted by
chapter 8's notebook, which runs that example), and malformed preference records refused before anything is written."""
import json
import math
import random

import pytest
import torch
from datasets import Dataset

from ftbook.config import ConfigError, DataError
from ftbook.data import split_data
from ftbook.dpo import (DPOMonitor, DPORunConfig, _next_token_logits, as_conversation, dpo_loss, dpo_trainer, load_pairs,
                        pair_summary, response_logps, train_dpo)
from ftbook.models import load_tokenizer
from ftbook.rlhf import load_policy
from conftest import run_cli

TINY = "tiny-llama"
WORDS = "apple river stone cloud garden window candle bridge forest mirror".split()


def _pairs(n, seed, chosen, rejected):
    rng = random.Random(seed)
    return Dataset.from_list([as_conversation({"prompt": f"Name a thing: {a} or {b}?", "chosen": chosen.format(a=a, b=b),
                                               "rejected": rejected.format(a=a, b=b)}) for a, b in (rng.sample(WORDS, 2) for _ in range(n))])


@pytest.fixture(scope="module")
def tok(): return load_tokenizer(TINY)


def test_dpo_loss_by_hand_on_toy_numbers():
    loss, rw, rl = dpo_loss(torch.tensor([-10.0]), torch.tensor([-14.0]), torch.tensor([-11.0]), torch.tensor([-12.0]), beta=0.1)
    assert torch.allclose(rw, torch.tensor([0.1])) and torch.allclose(rl, torch.tensor([-0.2]))
    assert abs(float(loss) - math.log1p(math.exp(-0.3))) < 1e-6  # -log sigmoid(0.3)


@pytest.mark.parametrize("beta", [0.1, 0.5])
def test_hand_written_loss_equals_trl_on_one_batch(tmp_path, tok, beta):
    cfg = DPORunConfig.for_profile(beta=beta)
    policy = load_policy(TINY, cfg)
    with torch.no_grad():
        for p in policy.parameters(): p.add_(0.02 * torch.randn_like(p, generator=torch.Generator().manual_seed(1)))
    pairs = split_data(load_pairs("preferences"), eval_size=0.2, seed=0)[0].select(range(8))
    trainer = dpo_trainer(policy, tok, pairs, None, cfg, tmp_path, ref_model=load_policy(TINY, cfg))
    batch = next(iter(trainer.get_train_dataloader()))
    with torch.no_grad():
        trl = float(trainer.compute_loss(trainer.model, batch))
        ids, attn, comp = batch["input_ids"], batch["attention_mask"], batch["completion_mask"]
        pol = response_logps(_next_token_logits(trainer.model, ids, attn), ids, comp)
        ref = response_logps(_next_token_logits(trainer.ref_model, ids, attn), ids, comp)
    n = len(pol) // 2
    ours = float(dpo_loss(pol[:n], pol[n:], ref[:n], ref[n:], beta)[0].mean())
    assert abs(ours - math.log(2)) > 1e-3, "the policy must differ from its reference for the check to mean anything"
    assert abs(ours - trl) < 1e-5, (ours, trl)


def test_dpo_lifts_held_out_accuracy_above_chance_beyond_its_interval(tok):
    train, held = _pairs(64, 0, "Sure: {a}.", "No. {b}."), _pairs(32, 1, "Sure: {a}.", "No. {b}.")
    cfg = DPORunConfig.for_profile(beta=0.3, max_steps=12, learning_rate=1e-3, batch_size=8, eval_steps=6)
    mon = DPOMonitor(verbose=False)
    res = train_dpo(load_policy(TINY, cfg), tok, train, held, cfg, monitor=mon)
    m = res.metrics
    assert m["reward_accuracy_low"] > 0.5, m  # the interval's lower end is above chance
    assert m["reward_accuracy"] > m["reference_accuracy"], m  # and above the untrained model's own preference
    assert abs(m["eval_loss_before"] - math.log(2)) < 1e-6 and m["eval_loss_after"] < m["eval_loss_before"]
    assert [h["step"] for h in res.history if "accuracy" in h] == [0, 6, 12]
    assert "displacement" not in [a["kind"] for a in mon.alarms] and "chance" not in [a["kind"] for a in mon.alarms]


def test_lora_policy_is_its_own_reference_with_no_second_copy(tmp_path, tok):
    cfg = DPORunConfig.for_profile(lora_r=4)
    policy = load_policy(TINY, cfg)
    trainer = dpo_trainer(policy, tok, _pairs(8, 0, "Sure: {a}.", "No. {b}."), None, cfg, tmp_path)
    assert trainer.ref_model is None and list(policy.peft_config) == ["default"]  # TRL's "ref" adapter copy is dropped
    with torch.no_grad():
        loss = float(trainer.compute_loss(trainer.model, next(iter(trainer.get_train_dataloader()))))
    assert abs(loss - math.log(2)) < 1e-6  # a fresh adapter: the policy equals its reference


def test_monitor_explains_and_raises_each_alarm_once():
    s = lambda step, **kw: {"step": step, "accuracy": 0.7, "accuracy_low": 0.5, "accuracy_high": 0.85, "margin": 0.1,
                            "chosen_logp_change": -0.2, "rejected_logp_change": -1.0, "kl": 1.0, "saturated": 0.1, "loss": 0.6, **kw}
    mon = DPOMonitor(total_steps=10, verbose=False)
    mon.update(s(0, margin=0.0, chosen_logp_change=0.0, kl=0.0)); mon.update(s(2))
    assert mon.alarms == []
    mon.update(s(4, margin=0.3, chosen_logp_change=-2.5))
    mon.update(s(6, accuracy=0.5, kl=25.0, saturated=0.95))
    assert sorted(a["kind"] for a in mon.alarms) == ["chance", "displacement", "kl_runaway", "saturated"]
    assert mon.update(s(8, margin=0.9, chosen_logp_change=-4.0)) == []
    text = DPOMonitor.explain(s(4, margin=0.3, chosen_logp_change=-0.5))
    assert "70% of held-out pairs" in text and "rejected fall faster" in text


@pytest.mark.parametrize("pairs, fires", [(4, False), (5, False), (6, True), (24, True)])
def test_chance_alarm_needs_pairs_that_could_beat_chance(pairs, fires):
    "On 5 pairs even 5 of 5 has an exact 95% interval reaching below 50%: 'still at chance' would say nothing."
    mon = DPOMonitor(total_steps=4, verbose=False)
    mon.update({"step": 4, "pairs": pairs, "accuracy": 0.5, "accuracy_low": 0.1, "accuracy_high": 0.9, "margin": 0.0,
                "chosen_logp_change": 0.0, "rejected_logp_change": 0.0, "kl": 0.0, "saturated": 0.0, "loss": 0.69})
    assert (["chance"] if fires else []) == [a["kind"] for a in mon.alarms]


def test_pair_summary_counts_ties_as_half():
    z = {k: [0.0, 0.0] for k in ("policy_chosen", "policy_rejected", "ref_chosen", "ref_rejected", "kl", "chosen_nll")} | {"chosen_tokens": [3, 5]}
    import numpy as np
    s = pair_summary({k: np.array(v) for k, v in z.items()}, beta=0.1)
    assert s["accuracy"] == 0.5 and s["margin"] == 0 and abs(s["loss"] - math.log(2)) < 1e-9


BAD = [({"prompt": "Hi?", "chosen": "Hello.", "rejected": "Hello."}, "field 'rejected'"),
       ({"prompt": "Hi?", "chosen": "  ", "rejected": "Go away."}, "field 'chosen'"),
       ({"chosen": "Hello.", "rejected": "Go away."}, "'prompt'"),
       ({"prompt": [{"role": "user", "content": "Hi?"}], "chosen": [{"role": "user", "content": "Hi?"}],
         "rejected": [{"role": "assistant", "content": "Go away."}]}, "field 'chosen'"),
       ({"prompt": [{"role": "user", "content": "Hi?"}], "chosen": [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "No."}],
         "rejected": [{"role": "assistant", "content": "No."}]}, "field 'rejected'")]


@pytest.mark.parametrize("rec,where", BAD)
def test_malformed_pairs_are_refused_with_file_line_and_field(tmp_path, rec, where):
    good = {"prompt": "Hi?", "chosen": "Hello.", "rejected": "Go away."}
    f = tmp_path / "p.jsonl"
    f.write_text(json.dumps(good) + "\n" + json.dumps(rec) + "\n")
    with pytest.raises(DataError) as e: load_pairs(f)
    assert str(f) in str(e.value) and "line 2" in str(e.value) and where in str(e.value) and "Fix:" in str(e.value)


def test_pairs_keep_their_group_and_the_default_split_keeps_a_group_on_one_side(tmp_path):
    """`ftbook dpo` without --eval splits --train with `split_data`. Its loader used to drop `group`: with the shipped
    pairs, 60 of the 76 held-out pairs had their answers in training (twin prompts share their two answers)."""
    answers = lambda ds: {m["content"] for side in ("chosen", "rejected") for turns in ds[side] for m in turns}
    train, held = split_data(load_pairs("preferences"), eval_size=0.2, seed=0)  # what cmd_dpo does without --eval
    assert len(held) > 50 and not answers(train) & answers(held)
    rows = [{"prompt": f"Q{i}?", "chosen": f"good {i // 2}", "rejected": f"bad {i // 2}", **({"group": f"g{i // 2}"} if i else {})}
            for i in range(40)]  # the first record has no group: the column must not be lost with it
    f = tmp_path / "p.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    pairs = load_pairs(f)
    assert pairs["group"][:3] == [None, "g0", "g1"]
    train, held = split_data(pairs, eval_size=0.3, seed=0)
    assert len(held) and {g for g in held["group"] if g}.isdisjoint(train["group"])


def test_cli_refuses_malformed_pairs_before_writing_anything(tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text(json.dumps({"prompt": "Hi?", "chosen": "Hello.", "rejected": "Go away."}) + "\n" + json.dumps({"prompt": "Hi?", "chosen": "", "rejected": "x"}) + "\n")
    r = run_cli("dpo", "--allow-overlap", "--model", TINY, "--train", f, "--out", tmp_path / "out")
    assert r.returncode == 2 and "Traceback" not in r.stderr and "line 2" in r.stderr, r.stderr
    assert not (tmp_path / "out").exists()


def test_config_rejects_bad_values():
    with pytest.raises(ConfigError): DPORunConfig(beta=0)
    with pytest.raises(ConfigError): DPORunConfig(sft_weight=-1)


def test_on_policy_pairs_put_the_better_scored_answer_first_and_skip_ties(tok):
    from ftbook.dpo import on_policy_pairs
    policy = load_policy(TINY, DPORunConfig())
    by_length = lambda prompts, responses: [float(len(r)) for r in responses]  # a scorer whose answers rarely tie
    prompts = [f"Name a thing: {w}?" for w in WORDS[:3]]
    pairs = on_policy_pairs(policy, tok, prompts, by_length, k=4, pairs_per_prompt=2, max_new_tokens=6, seed=0)
    assert len(pairs) > 0 and all(c > r for c, r in zip(pairs["chosen_score"], pairs["rejected_score"]))
    assert all(len(c[0]["content"]) > len(r[0]["content"]) for c, r in zip(pairs["chosen"], pairs["rejected"]))
    assert max(list(pairs["group"]).count(g) for g in set(pairs["group"])) <= 2  # pairs_per_prompt
    assert {p[0]["content"] for p in pairs["prompt"]} <= set(prompts)
    again = on_policy_pairs(policy, tok, prompts, by_length, k=4, pairs_per_prompt=2, max_new_tokens=6, seed=0)
    assert again["chosen"] == pairs["chosen"]  # the seed makes the sampling again
    with pytest.raises(ConfigError, match="no pairs"):
        on_policy_pairs(policy, tok, prompts, lambda p, r: [1.0] * len(r), k=2, max_new_tokens=4)
    with pytest.raises(ConfigError, match="k must be >= 2"):
        on_policy_pairs(policy, tok, prompts, by_length, k=1)


def test_the_recorded_on_policy_experiment_runs_end_to_end(tmp_path):
    "exp_onpolicy_dpo's every code path, on a tiny random model (EXP_SMOKE): the JSON chapter 8 reads, with its fields."
    import os
    import subprocess
    import sys
    out = tmp_path / "exp.json"
    r = subprocess.run([sys.executable, "-m", "ftbook.recorded.exp_onpolicy_dpo", "--json", str(out)], capture_output=True, text=True,
                       env={**os.environ, "EXP_SMOKE": "1"}, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(out.read_text())
    assert {"machine", "seconds", "data_sha256", "rows", "predictions", "metrics", "train_pairs", "held_out_pairs"} <= set(got)
    assert {"sampled_correct_before", "sampled_correct_after", "greedy_before", "greedy_after"} <= set(got["rows"][0])
