"""Full versus LoRA: the hand-written layer against PEFT's, parameter counts against PEFT's (MiniLM r=8 on query and value
with a 2-class head: 74,498), the comparison's rows on a tiny model, the round-trip verifier passing on a correct save and
failing, with the step named, on saves that lost the head or the tokenizer, and `ftbook compare`/`ftbook verify` errors."""
import copy
import json

import pytest
import torch
from datasets import Dataset
from peft import LoraConfig, get_peft_model
from safetensors.torch import load_file, save_file

from ftbook.classify import ClassifyConfig, fresh_modules, load_classifier
from ftbook.config import ConfigError
from ftbook.lora import (Arm, LoRALinear, adapted_layers, check_rank_fits, check_ranks, compare, energy_in_top, lora_param_count,
                         lr_sweep, make_arms, random_like_spectrum, trainable_params, update_spectrum, verify)
from ftbook.models import load_model, load_tokenizer
from ftbook.lora import add_lora
from ftbook.train import save_model
from conftest import run_cli


def test_lora_layer_by_hand_equals_peft():
    torch.manual_seed(0)
    base = torch.nn.Linear(24, 16)
    ours = LoRALinear(copy.deepcopy(base), r=4, alpha=12, dropout=0.0)
    theirs = get_peft_model(torch.nn.Sequential(copy.deepcopy(base)), LoraConfig(r=4, lora_alpha=12, target_modules=["0"]))
    layer = theirs.base_model.model[0]
    with torch.no_grad():
        torch.nn.init.normal_(ours.B)  # a trained B: with B = 0 both would equal the base layer trivially
        layer.lora_A["default"].weight.copy_(ours.A); layer.lora_B["default"].weight.copy_(ours.B)
        x = torch.randn(3, 5, 24)
        assert not torch.allclose(ours(x), base(x), atol=1e-3)
        assert torch.allclose(ours(x), theirs(x), atol=1e-5)
        assert torch.allclose(ours.merged_weight(), theirs.merge_and_unload()[0].weight, atol=1e-6)
    assert [n for n, p in ours.named_parameters() if p.requires_grad] == ["A", "B"]
    fresh = LoRALinear(copy.deepcopy(base), r=2)
    with torch.no_grad(): assert torch.equal(fresh(x), base(x))  # B starts at zero: training starts at the pretrained layer


def test_minilm_counts_equal_peft():
    m = load_model("minilm-l6", task="seq-cls", num_labels=2)
    assert lora_param_count(m, 8, "query,value", ["classifier"]) == 74_498
    assert add_lora(m, "seq-cls", 8, targets="query,value").get_nb_trainable_parameters()[0] == 74_498
    assert trainable_params(m) == 74_498


@pytest.mark.parametrize("name,task,r,targets", [("tiny-llama", "causal-lm", 8, "all-linear"), ("tiny-llama", "causal-lm", 4, "q_proj,v_proj"),
                                                 ("tiny-bert", "seq-cls", 4, "all-linear"), ("tiny-bert", "seq-cls", 2, "query,key,value")])
def test_counts_by_hand_equal_peft(name, task, r, targets):
    m = load_model(name, task=task, **({"num_labels": 3} if task == "seq-cls" else {}))
    by_hand = lora_param_count(m, r, targets, ["classifier"] if task == "seq-cls" else [])
    assert by_hand == add_lora(m, task, r, targets=targets).get_nb_trainable_parameters()[0]


def test_all_linear_leaves_out_the_output_layer():
    lm = load_model("tiny-llama")
    assert "lm_head" not in adapted_layers(lm) and any(n.endswith("q_proj") for n in adapted_layers(lm))


def test_ranks_are_checked():
    assert check_ranks("16, 4,8") == [4, 8, 16]
    for bad in ("4,x", "0", "", "4,4", "-2"):
        with pytest.raises(ConfigError, match="--ranks"): check_ranks(bad)
    bert = load_model("tiny-bert", task="seq-cls", num_labels=2)
    narrowest = min(min(s) for s in adapted_layers(bert).values())
    with pytest.raises(ConfigError, match="not below the narrowest"): check_rank_fits(bert, narrowest)
    check_rank_fits(bert, narrowest - 1)
    assert [a.name for a in make_arms((4, 16), attention_rank=4, qlora=False)] == ["full", "lora-r4", "lora-r16", "lora-r4-attn"]


def test_spectrum_of_a_low_rank_change_is_concentrated():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(64, 48, generator=g)
    low = w + torch.randn(64, 2, generator=g) @ torch.randn(2, 48, generator=g)  # a rank-2 change
    assert energy_in_top(update_spectrum(w, low), 2) > 0.999
    assert energy_in_top(random_like_spectrum((64, 48)), 2) < 0.2


@pytest.fixture(scope="module")
def adapter():
    m = load_classifier("tiny-bert", ["neg", "pos"], ClassifyConfig(lora_r=4))
    with torch.no_grad():
        for n, p in m.named_parameters():
            if "lora_B" in n: p.normal_(0, 0.1)  # a trained adapter, so a lost update would show
    return m, load_tokenizer("tiny-bert")


def test_verify_passes_on_a_correct_save(adapter):
    res = verify(*adapter)
    assert res.metrics["passed"] == 1, res.lines
    assert [s["step"] for s in res.history] == ["in memory", "save", "reload", "merge", "merged reload"]


def test_verify_names_the_step_that_lost_the_head(adapter):
    def without_head(model, tok, folder):
        save_model(model, tok, folder)
        f = folder / "adapter_model.safetensors"
        save_file({k: v for k, v in load_file(f).items() if "classifier" not in k}, f)
    res = verify(*adapter, save=without_head)
    assert res.metrics["passed"] == 0
    failed = [s for s in res.history if not s["ok"]]
    assert failed[0]["step"] == "reload" and "classification head was not saved" in failed[0]["note"]


def test_verify_names_a_lost_tokenizer(adapter):
    res = verify(*adapter, save=lambda model, tok, folder: save_model(model, None, folder))
    assert res.metrics["passed"] == 0 and "tokenizer was not saved" in res.lines[-1] and "'save'" in res.lines[-1]


def test_verify_catches_a_changed_weight(adapter):
    def corrupt(model, tok, folder):
        save_model(model, tok, folder)
        f = folder / "adapter_model.safetensors"
        sd = load_file(f)
        k = next(k for k in sd if "lora_B" in k)
        sd[k] = sd[k] + torch.randn(sd[k].shape, generator=torch.Generator().manual_seed(0))  # (a constant would vanish in LayerNorm)
        save_file(sd, f)
    res = verify(*adapter, save=corrupt)
    assert res.metrics["passed"] == 0 and "came back different" in res.lines[-1] and "lora_B" in res.lines[-1]


def test_compare_rows_on_a_tiny_classifier():
    rows = [{"text": f"{w} {t}", "label": lab} for w, lab in [("great", "pos"), ("awful", "neg")] for t in "abcdefgh"]
    ds = Dataset.from_list(rows)
    res = compare("classify", "tiny-bert", ds, ds, [Arm("full"), Arm("lora-r4", 4), Arm("lora-r2-attn", 2, "attention")],
                  ClassifyConfig(max_steps=3, batch_size=8, save_steps=0), probe_texts=["The tide came in.", "A boat sailed."])
    full, r4, attn = res.history
    bert = load_model("tiny-bert", task="seq-cls", num_labels=2)
    assert r4["trainable_params"] == lora_param_count(bert, 4, "all-linear", fresh_modules(bert, "tiny-bert"))
    assert attn["targets"] == "query,key,value" and attn["trainable_params"] < r4["trainable_params"] < full["trainable_params"]
    assert r4["artifact_mb"] < full["artifact_mb"] and all(r["train_steps"] == 3 for r in res.history)
    assert all(0 <= r["metric_low"] <= r["metric"] <= r["metric_high"] <= 1 for r in res.history)
    assert len(res.lines) == 3 and "interval" in res.lines[1]


def test_lr_sweep_chooses_each_rate_on_validation_and_reports_it_on_test():
    rows = [{"text": f"{w} {t}", "label": lab} for w, lab in [("great", "pos"), ("awful", "neg")] for t in "abcdefgh"]
    ds = Dataset.from_list(rows)
    val = ds.select(range(0, 16, 2))
    rates = {"full": (1e-5, 1e-3), "lora-r4": (1e-4, 1e-2)}
    res = lr_sweep("tiny-bert", ds, val, ds, [Arm("full"), Arm("lora-r4", 4)], rates, (0, 1),
                   ClassifyConfig(max_steps=2, batch_size=8, save_steps=0))
    assert len(res["runs"]) == 2 * 2 * 2 and {(r["arm"], r["learning_rate"], r["seed"]) for r in res["runs"]} == {
        (a, lr, s) for a, rs in rates.items() for lr in rs for s in (0, 1)}
    for arm, rs in rates.items():  # the chosen rate is the best mean validation accuracy; the test set plays no part
        val_mean = {g["learning_rate"]: g["val_accuracy"] for g in res["grid"] if g["arm"] == arm}
        assert set(val_mean) == set(rs) and res["best_rate"][arm] == max(rs, key=val_mean.get)
    best = [r for r in res["rows"] if r["rate"] == "best"]
    assert [r["arm"] for r in best] == ["full", "lora-r4"] and [r["learning_rate"] for r in best] == [res["best_rate"]["full"], res["best_rate"]["lora-r4"]]
    r4 = best[1]
    assert r4["vs_low"] <= r4["vs_full_best"] <= r4["vs_high"] and "vs_full_best" not in best[0]
    assert not [r for r in res["rows"] if r["rate"] == "default"]  # neither default rate (1e-4 full, 1e-3 LoRA) was swept here
    attn = lr_sweep("tiny-bert", ds, val, ds, [Arm("lora-r2-attn", 2, "attention")], {"lora-r2-attn": (1e-3,)}, (0, 1),
                    ClassifyConfig(max_steps=1, batch_size=8, save_steps=0))  # 'attention' names the model's own projections
    assert attn["best_rate"] == {"lora-r2-attn": 1e-3} and len(attn["runs"]) == 2 and len(attn["runs"][0]["test_correct"]) == len(ds)
    with pytest.raises(ConfigError, match="QLoRA"): lr_sweep("tiny-bert", ds, val, ds, [Arm("qlora-r4", 4, quantize=True)], {"qlora-r4": (1e-3,)}, (0, 1))
    with pytest.raises(ConfigError, match="two seeds"): lr_sweep("tiny-bert", ds, val, ds, [Arm("full")], rates, (0,))
    with pytest.raises(ConfigError, match="lora-r8"): lr_sweep("tiny-bert", ds, val, ds, [Arm("lora-r8", 8)], rates, (0, 1))


@pytest.mark.slow  # a fresh interpreter and every arm, rate and seed of the script (about ten seconds)
def test_the_recorded_learning_rate_sweep_runs_end_to_end(tmp_path):
    "exp_lora_lr's every code path, on a tiny random model (EXP_SMOKE): the JSON chapter 9 reads, with its fields."
    import os
    import subprocess
    import sys
    out = tmp_path / "exp.json"
    r = subprocess.run([sys.executable, "-m", "ftbook.recorded.exp_lora_lr", "--json", str(out)], capture_output=True, text=True,
                       env={**os.environ, "EXP_SMOKE": "1"}, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(out.read_text())
    assert {"machine", "seconds", "data_sha256", "n_train", "n_val", "n_test", "seeds", "rates", "best_rate", "rows", "grid"} <= set(got)
    assert set(got["best_rate"]) == {"full", "lora-r4", "lora-r16"}
    assert len(got["runs"]) == sum(len(v) for v in got["rates"].values()) * len(got["seeds"])


def test_cli_refuses_bad_ranks_and_bad_files_before_writing(tmp_path):
    f = tmp_path / "t.jsonl"
    f.write_text("".join(json.dumps({"text": f"{w} {i}", "label": lab}) + "\n" for w, lab in [("good", "pos"), ("bad", "neg")] for i in range(3)))
    for ranks in ("4,x", "0"):
        r = run_cli("compare", "--task", "classify", "--model", "tiny-bert", "--train", f, "--eval", f, "--ranks", ranks, "--out", tmp_path / "o")
        assert r.returncode == 2 and "Traceback" not in r.stderr and "--ranks" in r.stderr, r.stderr
    r = run_cli("compare", "--task", "classify", "--model", "tiny-bert", "--train", f, "--eval", f, "--ranks", "4096", "--allow-overlap", "--out", tmp_path / "o")
    assert r.returncode == 2 and "not below the narrowest" in r.stderr, r.stderr
    (tmp_path / "two.jsonl").write_text(json.dumps({"text": "good", "label": "pos"}) + "\n" + json.dumps({"text": "bad", "label": "neg"}) + "\n")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": "good", "label": "pos"}) + "\n" + json.dumps({"txt": "oops", "label": "neg"}) + "\n")
    r = run_cli("compare", "--task", "classify", "--model", "tiny-bert", "--train", bad, "--eval", f, "--out", tmp_path / "o")
    assert r.returncode == 2 and "line 2" in r.stderr and "Traceback" not in r.stderr, r.stderr
    r = run_cli("compare", "--task", "classify", "--model", "tiny-bert", "--train", f.with_name("two.jsonl"), "--eval", f, "--out", tmp_path / "o")
    assert r.returncode == 2 and "at least 3 training examples" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "o").exists()


def test_cli_verify(tmp_path, adapter):
    save_model(adapter[0], adapter[1], tmp_path / "ok")
    r = run_cli("verify", tmp_path / "ok")
    assert r.returncode == 0 and "Round trip verified" in r.stdout, r.stdout + r.stderr
    save_model(adapter[0], None, tmp_path / "notok")
    r = run_cli("verify", tmp_path / "notok")
    assert r.returncode == 1 and "no tokenizer" in r.stdout, r.stdout + r.stderr
    r = run_cli("verify", tmp_path / "missing")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    r = run_cli("verify", tmp_path / "ok", "--texts", tmp_path / "nope.txt")
    assert r.returncode == 2 and "nope.txt" in r.stderr and "Traceback" not in r.stderr, r.stderr
    save_model(adapter[0], adapter[1], tmp_path / "headless")
    f = tmp_path / "headless" / "adapter_model.safetensors"
    save_file({k: v for k, v in load_file(f).items() if "classifier" not in k}, f)
    r = run_cli("verify", tmp_path / "headless")
    assert r.returncode == 1 and "head was not saved" in r.stdout and "Traceback" not in r.stderr, r.stdout + r.stderr
