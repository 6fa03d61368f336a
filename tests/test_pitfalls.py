"""Training pitfalls: each detector fires on a run built to have its pitfall and stays silent on a healthy one.

Learning curves use synthetic histories and tiny-BERT runs; forgetting uses a few SmolLM2 steps on a small probe;
memorisation uses tiny-Llama, which memorises four texts in seconds.
"""
import warnings
from types import SimpleNamespace

import numpy as np
import pytest

from ftbook.config import ConfigError
from ftbook.data import load_data, split_data
from ftbook.models import load_model, load_tokenizer
from ftbook.pitfalls import (FitConfig, FitWarning, ForgettingCallback, ForgettingConfig, ForgettingProbe,
                             ForgettingWarning, LearningCurveCallback, _classifier_trainer, answer_in, diagnose_fit,
                             domain_finetune, forgetting_report, keep_best_args, measure_general, memorisation_check)
from ftbook.train import run_training


def history(train, evals, every=10):
    "A log history: one training record per step, one evaluation every `every` steps."
    return [{"step": s + 1, "loss": float(l)} for s, l in enumerate(train)] + \
           [{"step": (i + 1) * every, "eval_loss": float(l)} for i, l in enumerate(evals)]


STEPS = np.arange(80)


# --- learning curves, synthetic ---------------------------------------------------------------------------------

def test_rising_eval_loss_with_falling_train_loss_is_overfitting():
    h = history(0.35 + 0.35 * np.exp(-STEPS / 20), [0.55, 0.5, 0.46, 0.47, 0.49, 0.52, 0.55, 0.6])
    (f,) = diagnose_fit(h)
    assert f.kind == "overfitting" and f.step == 60 and "best checkpoint (step 30" in f.message


def test_stalled_eval_with_widening_gap_is_overfitting():
    h = history(np.r_[np.linspace(0.7, 0.1, 40), np.linspace(0.1, 0.01, 40)], [0.5, 0.45, 0.42, 0.41, 0.41, 0.41, 0.41, 0.41])
    (f,) = diagnose_fit(h)
    assert f.kind == "overfitting" and "gap" in f.message


def test_flat_train_loss_is_underfitting_and_names_the_learning_rate():
    (f,) = diagnose_fit(history(0.69 - 0.0001 * STEPS, [0.69] * 8), learning_rate=2e-7)
    assert f.kind == "underfitting" and "2e-07" in f.message and "barely moved" in f.message
    assert diagnose_fit(history(0.69 - 0.0001 * STEPS, [0.69] * 8), final=False) == []  # judged at the end only


def test_plateau_high_is_underfitting():
    h = history(np.r_[np.linspace(0.9, 0.6, 20), np.full(60, 0.6)], [0.7] * 8)
    (f,) = diagnose_fit(h)
    assert f.kind == "underfitting" and "stopped falling" in f.message
    assert diagnose_fit(h, FitConfig(high_loss=0.65)) == []  # below the stated 'high' level it is a finished run


@pytest.mark.parametrize("seed", range(5))
def test_healthy_noisy_runs_are_silent(seed):
    rng = np.random.default_rng(seed)
    train = 0.7 * np.exp(-STEPS / 40) + 0.2 + rng.normal(0, 0.02, len(STEPS))
    evals = 0.35 + 0.3 * np.exp(-np.arange(1, 9) / 3) + rng.normal(0, 0.003, 8)
    assert diagnose_fit(history(train, evals)) == []


# --- learning curves, real runs ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def topics():
    train, ev = split_data(load_data("sailing_topics"), eval_size=0.2)
    return train, ev


def _run(tmp_path, train, ev, **kw):
    cb = LearningCurveCallback(metric="eval_accuracy")
    trainer = _classifier_trainer(tmp_path, train, ev, [cb], model="tiny-bert", **kw)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FitWarning)
        run_training(trainer)
    return trainer, cb, [w for w in caught if issubclass(w.category, FitWarning)]


def test_callback_warns_of_overfitting_and_the_run_keeps_its_best_checkpoint(tmp_path, topics):
    train, ev = topics
    trainer, cb, caught = _run(tmp_path, train.select(range(16)), ev, num_train_epochs=30, learning_rate=3e-3,
                               lr_scheduler_type="constant", **keep_best_args(3, save_only_model=True))
    assert [f.kind for f in cb.findings] == ["overfitting"]
    assert any("overfitting" in str(w.message) for w in caught)
    evals = [h["eval_loss"] for h in cb.log_history if "eval_loss" in h]
    assert evals[-1] > min(evals)
    assert trainer.evaluate()["eval_loss"] == pytest.approx(min(evals), rel=1e-4)  # best, not last


def test_callback_warns_of_underfitting(tmp_path, topics):
    train, ev = topics
    _, cb, caught = _run(tmp_path, train.select(range(64)), ev, max_steps=16, learning_rate=1e-9,
                         eval_strategy="steps", eval_steps=8)
    assert [f.kind for f in cb.findings] == ["underfitting"]
    assert any("evaluated but will end with its last weights" in str(w.message) for w in caught)


def test_callback_is_silent_on_a_healthy_run_and_draws_live(tmp_path, topics, monkeypatch):
    import ipywidgets
    import ftbook.pitfalls as P
    view = ipywidgets.Image(format="png")
    monkeypatch.setattr(P, "_live_view", lambda: view)
    train, ev = topics
    cb = LearningCurveCallback(metric="eval_accuracy", live=True)
    trainer = _classifier_trainer(tmp_path, train.select(range(256)), ev, [cb], model="tiny-bert", num_train_epochs=4, learning_rate=2e-3,
                                  **keep_best_args("epoch", save_only_model=True))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FitWarning)
        run_training(trainer)
    assert cb.findings == [] and not [w for w in caught if issubclass(w.category, FitWarning)]
    evals = [h["eval_loss"] for h in cb.log_history if "eval_loss" in h]
    assert evals[-1] < evals[0]
    assert bytes(view.value[:8]) == b"\x89PNG\r\n\x1a\n"


# --- forgetting -------------------------------------------------------------------------------------------------

def test_forgetting_callback_measures_each_step_once(monkeypatch):
    "A run whose last step is a multiple of `every` is measured there once, not again when training ends."
    import ftbook.pitfalls as P
    calls = []
    monkeypatch.setattr(P, "measure_general", lambda model, tok, probe: calls.append(1) or {"general_ppl": 10.0, "qa_accuracy": 0.5})
    for last, measured in ((4, [0, 2, 4]), (5, [0, 2, 4, 5])):
        calls.clear()
        cb = ForgettingCallback(None, ForgettingProbe([], []), every=2, before={"general_ppl": 10.0, "qa_accuracy": 0.5})
        state = SimpleNamespace(global_step=0)
        cb.on_train_begin(None, state, None, model=None)
        for state.global_step in range(1, last + 1): cb.on_step_end(None, state, None, model=None)
        cb.on_train_end(None, state, None, model=None)
        assert [h["step"] for h in cb.history] == measured and len(calls) == len(measured) - 1  # step 0 is `before`


@pytest.fixture(scope="module")
def smol():
    tok = load_tokenizer("smollm2-135m-instruct")
    probe = ForgettingProbe.shipped(n_texts=4, n_questions=6, max_length=64, max_new_tokens=12)
    before = measure_general(load_model("smollm2-135m-instruct"), tok, probe)
    return tok, probe, before


def _finetune_with_callback(tok, probe, before, lr, tmp_path):
    from transformers import DataCollatorForLanguageModeling, Trainer
    from ftbook.pitfalls import _lm_dataset
    from ftbook.train import training_args
    model = load_model("smollm2-135m-instruct")
    cb = ForgettingCallback(tok, probe, every=2, before=before)
    texts = list(load_data("sailing")["text"])[:6]
    trainer = Trainer(model=model, args=training_args(tmp_path, max_steps=3, learning_rate=lr, per_device_train_batch_size=2,
                                                       lr_scheduler_type="constant", disable_tqdm=True),
                      train_dataset=_lm_dataset(tok, texts, 32), data_collator=DataCollatorForLanguageModeling(tok, mlm=False),
                      callbacks=[cb])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ForgettingWarning)
        run_training(trainer)
    return model, cb, [w for w in caught if issubclass(w.category, ForgettingWarning)]


@pytest.mark.slow
def test_forgetting_callback_fires_on_an_aggressive_run(smol, tmp_path):
    tok, probe, before = smol
    model, cb, caught = _finetune_with_callback(tok, probe, before, 2e-3, tmp_path)
    assert cb.warned and len(caught) == 1 and "forgetting" in str(caught[0].message)
    assert [h["step"] for h in cb.history] == [0, 2, 3]
    assert cb.history[-1]["general_ppl"] > 1.1 * before["general_ppl"]
    rep = forgetting_report(None, model, tok, probe, before=before)
    assert rep.metrics["general_ppl_change"] > 0.1 and "predicts ordinary text worse" in rep.lines[0] and "To forget less" in rep.lines[-1]


@pytest.mark.slow
def test_forgetting_callback_is_silent_on_a_gentle_run(smol, tmp_path):
    tok, probe, before = smol
    model, cb, caught = _finetune_with_callback(tok, probe, before, 1e-6, tmp_path)
    assert not cb.warned and caught == []
    after = cb.history[-1]
    assert abs(after["general_ppl"] / before["general_ppl"] - 1) < 0.05 and after["qa_correct"] == before["qa_correct"]


def test_forgetting_verdicts_in_plain_words():
    from ftbook.pitfalls import _forgetting_result
    m = {"general_ppl": 20.0, "qa_accuracy": 0.5, "qa_correct": [True, True, False, False]}
    same = _forgetting_result(m, m)
    assert "within 5% of where it was" in same.lines[0] and "within noise on 4 questions" in same.lines[1] and len(same.lines) == 2
    worse = _forgetting_result(m, {"general_ppl": 30.0, "qa_accuracy": 0.25, "qa_correct": [True, False, False, False]})
    assert worse.metrics["general_ppl_change"] == pytest.approx(0.5) and (worse.metrics["qa_lost"], worse.metrics["qa_gained"]) == (1, 0)
    assert "predicts ordinary text worse" in worse.lines[0] and "lost 1 answer it knew" in worse.lines[1] and "To forget less" in worse.lines[2]
    assert worse.metrics["qa_p_value"] == 1.0  # one discordant question: nothing a test can see
    many = {"general_ppl": 20.0, "qa_accuracy": 1.0, "qa_correct": [True] * 12}
    lost_all = _forgetting_result(many, {"general_ppl": 20.0, "qa_accuracy": 0.0, "qa_correct": [False] * 12})
    assert lost_all.metrics["qa_p_value"] == pytest.approx(2 * 0.5 ** 12) and "beyond chance" in lost_all.lines[1]


def test_forgetting_config_errors():
    with pytest.raises(ConfigError, match="no field"):
        ForgettingConfig.for_profile("cpu", lerning_rate=1)
    tok = load_tokenizer("tiny-llama")
    with pytest.raises(ConfigError, match="replay"):
        domain_finetune(load_model("tiny-llama"), tok, ["a text"] * 8, ForgettingConfig(replay=0.5, n_domain=8), ForgettingProbe(["x"], []))
    with pytest.raises(ConfigError, match="model_before"):
        forgetting_report(None, None, tok)


def test_answer_matching_is_by_whole_words():
    assert answer_in("The capital of Egypt is Cairo.", ["Cairo"])
    assert answer_in("It's H2O: WATER!", ["water"])
    assert not answer_in("It has 14 legs.", ["4", "four"])
    assert not answer_in("Paris, Texas", ["Texas City"])


# --- memorisation -----------------------------------------------------------------------------------------------

def test_memorisation_check_separates_a_memorised_model_from_a_fresh_one(tmp_path):
    tok = load_tokenizer("tiny-llama")
    sailing = list(load_data("sailing")["text"])
    train, heldout = sailing[:4], sailing[-4:]
    fresh = memorisation_check(load_model("tiny-llama"), tok, train, heldout, prefix_tokens=16, suffix_tokens=8)
    m = fresh.metrics
    assert (m["memorised_train"], m["memorised_heldout"], m["n_train"], m["n_heldout"]) == (0.0, 0.0, 4, 4) and "no sign" in fresh.lines[0]
    model = load_model("tiny-llama")
    cfg = ForgettingConfig(max_steps=80, learning_rate=3e-3, batch_size=4, max_length=32, n_domain=4)
    domain_finetune(model, tok, train, cfg, ForgettingProbe(["A short probe text."], []), out=tmp_path)
    mem = memorisation_check(model, tok, train, heldout, prefix_tokens=16, suffix_tokens=8)
    assert mem.metrics["memorised_train"] >= 0.75 and mem.metrics["memorised_heldout"] == 0.0
    assert "memorised" in mem.lines[0]
