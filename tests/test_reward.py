"""Reward models: the Bradley-Terry loss against TRL's trainer, the shortcut baselines on files built to be decided by
length or by a cue word, the report card's flags, encoding, loading pairs, and a short training run."""
import json

import numpy as np
import pytest
import torch
from datasets import Dataset

from ftbook.config import ConfigError, DataError
from ftbook.models import load_tokenizer
from ftbook.reward import (RewardModelConfig, score, bag_of_words_baseline, bradley_terry_loss, encode_response, length_baseline,
                           load_preferences, load_reward_model, reliability, report_card, reward_trainer, score_pairs,
                           train_pairwise, train_regression, with_cue)

TOPICS = ["the tide", "the boom", "a reef", "the chart", "the mast", "the anchor", "a knot", "the hull", "the wind", "the sheet"]


def _pairs(rows): return Dataset.from_list([{"prompt": p, "chosen": c, "rejected": r} for p, c, r in rows])


def _length_decides(n=30):
    "Pairs where the chosen response is always the longer one, and the words carry no signal (both sides share them)."
    rows = []
    for i in range(n):
        t = TOPICS[i % len(TOPICS)]
        short, long = f"{t} is fine", f"{t} is fine and " + " and ".join([t] * (1 + i % 3))
        rows.append((f"About {t}?", long, short))
    return _pairs(rows)


def _cue_decides(n=30):
    "Pairs the word 'honestly' decides, with the chosen side the shorter one in every pair."
    return _pairs([(f"About {t}?", f"Honestly, {t} helps.", f"{t.capitalize()} helps here a great deal, in my view.")
                   for t in (TOPICS * 3)[:n]])


def test_bradley_terry_loss_by_hand():
    assert bradley_terry_loss(torch.zeros(3), torch.zeros(3)).item() == pytest.approx(np.log(2), abs=1e-6)
    rc, rr = torch.tensor([1.0, -0.5]), torch.tensor([0.0, 0.5])
    want = np.mean([np.log1p(np.exp(-1.0)), np.log1p(np.exp(1.0))])
    assert bradley_terry_loss(rc, rr).item() == pytest.approx(want, abs=1e-6)


def test_bradley_terry_loss_equals_reward_trainer_on_one_batch(tmp_path):
    tok = load_tokenizer("tiny-bert")
    cfg = RewardModelConfig(batch_size=4, max_length=64)
    model = load_reward_model("tiny-bert", cfg)
    trainer = reward_trainer(model, tok, _cue_decides(6), cfg, tmp_path / "run")
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(3)])
    model.eval()
    with torch.no_grad():  # aim the head along the first pair's difference, so chosen and rejected score apart on any
        # tiny-bert build (random [CLS] states differ little from input to input, and by how much varies by machine)
        h = model.bert(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).pooler_output
        d = h[0] - h[3]
        model.classifier.weight.copy_((2.0 * d / d.pow(2).sum())[None])
        theirs = trainer.compute_loss(model, dict(batch)).item()
        r = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, 0]
    ours = bradley_terry_loss(r[:3], r[3:]).item()
    assert (r[0] - r[3]).item() == pytest.approx(2.0, abs=1e-3)  # the first pair's scores are 2 apart, by construction
    assert ours == pytest.approx(theirs, abs=1e-6) and abs(ours - np.log(2)) > 1e-3


def test_length_baseline_is_right_when_length_decides():
    ds = _length_decides()
    assert length_baseline(ds["chosen"], ds["rejected"]).mean() == 1.0
    assert length_baseline(ds["rejected"], ds["chosen"]).mean() == 0.0


def test_bag_of_words_finds_a_cue_word_that_decides():
    ds = _cue_decides(30)
    bw = bag_of_words_baseline(ds.select(range(20)), ds.select(range(20, 30)))
    assert bw["accuracy"] == 1.0 and "honestly" in bw["favoured"][:3]
    assert length_baseline(ds["chosen"], ds["rejected"]).mean() == 0.0  # the cue file is not a length file


def test_bag_of_words_is_near_chance_without_a_signal():
    rng = np.random.default_rng(0)
    words = "tide boom reef chart mast anchor knot hull wind sheet sail keel".split()
    rows = [("q", " ".join(rng.choice(words, 6)), " ".join(rng.choice(words, 6))) for _ in range(200)]
    ds = _pairs(rows)
    bw = bag_of_words_baseline(ds.select(range(120)), ds.select(range(120, 200)))
    assert 0.3 < bw["accuracy"] < 0.7


def test_report_card_flags_a_model_that_reads_the_cue():
    train, ev = _cue_decides(30).select(range(20)), _cue_decides(30).select(range(20, 30))
    cue = lambda texts: np.array([float(t.startswith("Honestly")) for t in texts])
    card = report_card(cue(ev["chosen"]), cue(ev["rejected"]), ev, train, "cue reader")
    assert card["metrics"]["pairwise_accuracy"] == 1.0 and "bag_of_words" in card["flags"]
    assert card["metrics"]["agreement_bag_of_words"] == 1.0 and card["metrics"]["length_only_accuracy"] == 0.0
    assert "Warning" in card["sentence"]


def test_report_card_does_not_flag_a_model_that_beats_both():
    rng = np.random.default_rng(1)
    words = "tide boom reef chart mast anchor knot hull wind sheet sail keel".split()
    rows = [("q", " ".join(rng.choice(words, 6)), " ".join(rng.choice(words, 4 + i % 5))) for i in range(300)]
    ds = _pairs(rows)
    train, ev = ds.select(range(100)), ds.select(range(100, 300))
    n = len(ev)
    card = report_card(np.ones(n), np.zeros(n), ev, train, "oracle")  # always right: the labels are arbitrary here
    m = card["metrics"]
    assert m["pairwise_accuracy"] == 1.0 and card["flags"] == [] and m["pairwise_low"] > 0.95
    assert 0.3 < m["length_only_accuracy"] < 0.7 and 0.3 < m["bag_of_words_accuracy"] < 0.7  # no signal for either
    assert m["mean_confidence"] == pytest.approx(1 / (1 + np.exp(-1))) and m["calibration_error"] == pytest.approx(1 - m["mean_confidence"])


def test_reliability_bins_by_confidence():
    rows = reliability(np.array([3.0, 3.0, 0.1, -3.0]), np.zeros(4), bins=5)
    assert sum(r["n"] for r in rows) == 4
    top = rows[-1]
    assert top["n"] == 3 and top["accuracy"] == pytest.approx(2 / 3)  # two right at 95% confidence, one wrong


def test_encode_response_pair_and_chat():
    bert = load_tokenizer("tiny-bert")
    toks = bert.convert_ids_to_tokens(encode_response(bert, "how to reef", "ease the sheet"))
    assert toks[0] == "[CLS]" and toks.count("[SEP]") == 2 and toks[-1] == "[SEP]"
    llama = load_tokenizer("tiny-llama")
    text = llama.decode(encode_response(llama, "how to reef", "ease the sheet"))
    assert "how to reef" in text and text.rstrip().endswith("ease the sheet<|im_end|>")
    cut = encode_response(llama, "how to reef " * 50, "ease the sheet", max_length=16)
    assert len(cut) == 16 and llama.decode(cut).rstrip().endswith("ease the sheet<|im_end|>")  # the end is kept
    pair = encode_response(bert, "how to reef " * 50, "ease the sheet", max_length=16)
    assert len(pair) == 16 and bert.decode(pair).endswith("[SEP] ease the sheet [SEP]")  # the long prompt is cut, not the answer


def test_score_is_the_same_in_any_batch_and_order():
    tok = load_tokenizer("tiny-bert")
    model = load_reward_model("tiny-bert", RewardModelConfig(max_length=64))
    prompts = [f"About {t}?" for t in TOPICS]
    responses = [f"{t} " * (1 + i % 4) + "matters" for i, t in enumerate(TOPICS)]
    one = score(model, tok, prompts, responses, batch_size=1)
    many = score(model, tok, prompts, responses, batch_size=32)
    assert np.allclose(one, many, atol=1e-5) and len(set(np.round(one, 5))) > 1
    rev = score(model, tok, prompts[::-1], responses[::-1], batch_size=3)
    assert np.allclose(rev[::-1], one, atol=1e-5)


def test_load_preferences_plain_and_conversational(tmp_path):
    conv = {"prompt": [{"role": "user", "content": "Capital of France?"}],
            "chosen": [{"role": "assistant", "content": "Paris."}], "rejected": [{"role": "assistant", "content": "Lyon."}]}
    (tmp_path / "c.jsonl").write_text(json.dumps(conv) + "\n")
    assert load_preferences(tmp_path / "c.jsonl")[0] == {"prompt": "Capital of France?", "chosen": "Paris.", "rejected": "Lyon."}
    ds = load_preferences("preferences")
    assert {"prompt", "chosen", "rejected", "chosen_rating", "rejected_rating"} <= set(ds.column_names)


@pytest.mark.parametrize("rec,field", [({"prompt": "Hi", "chosen": "Hello!", "rejected": "Hello!"}, "rejected"),
                                       ({"prompt": "Hi", "chosen": "", "rejected": "Go away."}, "chosen"),
                                       ({"prompt": "Hi", "response": "Hello!", "rating": 7}, None)])
def test_load_preferences_rejects_bad_files(tmp_path, rec, field):
    (tmp_path / "bad.jsonl").write_text(json.dumps(rec) + "\n")
    with pytest.raises(DataError) as e: load_preferences(tmp_path / "bad.jsonl")
    assert "bad.jsonl" in str(e.value) and (field is None or field in str(e.value))


def test_with_cue_and_config_errors():
    ds = with_cue(_length_decides(3), "Sure!", side="rejected")
    assert all(r.startswith("Sure! ") for r in ds["rejected"]) and not any(c.startswith("Sure!") for c in ds["chosen"])
    with pytest.raises(ConfigError): with_cue(ds, side="both")
    with pytest.raises(ConfigError): RewardModelConfig(mode="ranking")


def test_train_pairwise_learns_a_cue_on_tiny_bert(tmp_path):
    tok = load_tokenizer("tiny-bert")
    ds = _cue_decides(30)
    cfg = RewardModelConfig(max_steps=30, batch_size=4, max_length=64, learning_rate=1e-3, warmup_steps=0)
    res = train_pairwise(load_reward_model("tiny-bert", cfg), tok, ds.select(range(20)), ds.select(range(20, 30)), cfg, tmp_path)
    assert res.metrics["train_steps"] == 30 and len(res.predictions) == 10
    assert res.metrics["pairwise_accuracy"] >= 0.9, res.metrics  # the cue decides every held-out pair


def test_train_regression_reports_against_the_mean(tmp_path):
    tok = load_tokenizer("tiny-bert")
    rated = Dataset.from_list([{"prompt": "q", "response": ("good " if i % 2 else "bad ") + TOPICS[i % 10], "rating": 8.0 if i % 2 else 2.0}
                               for i in range(40)])
    cfg = RewardModelConfig(mode="regression", max_steps=40, batch_size=8, max_length=32, learning_rate=1e-3, warmup_steps=0)
    model = load_reward_model("tiny-bert", cfg)
    res = train_regression(model, tok, rated.select(range(30)), rated.select(range(30, 40)), cfg)
    m = res.metrics
    assert m["mse_predict_mean"] == pytest.approx(9.0, rel=0.1)  # ratings 2 and 8 around a mean near 5
    assert m["mse"] < m["mse_predict_mean"] and m["pearson"] > 0.9
    assert model.config.ftbook_rating_scale[0] == pytest.approx(np.mean(rated.select(range(30))["rating"]))


def _twins(n=10):
    "Each subject asked two ways, each answer the better one for one of the prompts: every response chosen once, rejected once."
    rows = []
    for t in TOPICS[:n]:
        win, lose = f"{t} is what wins.", f"{t} is what loses, sadly."
        rows += [{"prompt": f"Best thing about {t}?", "chosen": win, "rejected": lose, "group": t},
                 {"prompt": f"Worst thing about {t}?", "chosen": lose, "rejected": win, "group": t}]
    return Dataset.from_list(rows)


def test_shortcuts_have_nothing_to_learn_on_twins():
    tw = _twins()
    bw = bag_of_words_baseline(tw.select(range(12)), tw.select(range(12, 20)))
    assert bw["ties"] == 8  # the words favour each response as often as they disfavour it: no preference at all
    lengths = length_baseline(tw["chosen"], tw["rejected"])
    assert lengths.reshape(-1, 2).sum(1).tolist() == [1] * 10  # longer-wins is right on exactly one pair of each twin


def test_ties_are_coin_flips_not_losses():
    same = length_baseline(["abc"] * 1000, ["xyz"] * 1000)
    assert 0.45 < same.mean() < 0.55 and (same == length_baseline(["abc"] * 1000, ["xyz"] * 1000)).all()  # seeded
    assert (same != length_baseline(["abc"] * 1000, ["xyz"] * 1000, seed=1)).any()


def test_load_preferences_keeps_groups_and_split_respects_them():
    from ftbook.data import split_data
    ds = load_preferences("preferences")
    assert "group" in ds.column_names
    tr, ev = split_data(ds, eval_size=0.2, seed=0)
    assert not set(tr["group"]) & set(ev["group"])


def test_bag_of_words_folds_take_pairs_with_and_without_a_group():
    rows = [dict(r, group=(r["group"] if i % 3 else None)) for i, r in enumerate(_twins())]  # some pairs carry no group
    bw = bag_of_words_baseline(Dataset.from_list(rows[:12]), Dataset.from_list(rows[12:]))
    assert len(bw["correct"]) == 8 and 0 <= bw["accuracy"] <= 1
