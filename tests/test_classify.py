"""Classification: loading labelled files with any column names, training, and the `ftbook classify` command."""
import json

import pytest
import torch

from conftest import run_cli
from ftbook.classify import (ClassifyConfig, balanced_sample, load_classifier, load_labelled, load_trained_classifier,
                             plot_confusion, predict, train_classifier)
from ftbook.config import ConfigError, DataError
from ftbook.models import load_tokenizer

ROWS = [("great value, works well", 1), ("broke on day two", 0), ("lovely staff and quick service", 1),
        ("cold food and a long wait", 0), ("would buy again without a doubt", 1), ("the strap snapped at once", 0)]


def _csv(path, rows, header=("review", "stars"), sep=","):
    path.write_text(sep.join(header) + "\n" + "".join(f'"{t}"{sep}{l}\n' if sep == "," else f"{t}{sep}{l}\n" for t, l in rows))
    return path


def _jsonl(path, rows, text="text", label="label"):
    path.write_text("".join(json.dumps({text: t, label: l}) + "\n" for t, l in rows))
    return path


# --- load_labelled -------------------------------------------------------------------------------------------------

def test_csv_with_own_column_names_and_integer_labels(tmp_path):
    ds = load_labelled(_csv(tmp_path / "a.csv", ROWS), text_field="review", label_field="stars")
    assert ds["label"] == [l for _, l in ROWS] and ds["line"] == list(range(2, 2 + len(ROWS)))


def test_tsv_and_string_labels(tmp_path):
    rows = [(t, "pos" if l else "neg") for t, l in ROWS]
    ds = load_labelled(_csv(tmp_path / "a.tsv", rows, header=("body", "verdict"), sep="\t"), "body", "verdict")
    assert set(ds["label"]) == {"pos", "neg"}


def test_missing_column_names_line_and_suggests_the_flag(tmp_path):
    f = _csv(tmp_path / "a.csv", ROWS)
    with pytest.raises(DataError) as e: load_labelled(f, text_field="review", label_field="star")
    assert (e.value.line, e.value.field) == (2, "star") and "--label-field stars" in str(e.value)


def test_mixed_label_types_and_empty_text_are_refused(tmp_path):
    f = tmp_path / "m.jsonl"
    f.write_text('{"text": "a", "label": 1}\n{"text": "b", "label": "good"}\n')
    with pytest.raises(DataError, match="line 2, field 'label'"): load_labelled(f)
    g = _jsonl(tmp_path / "e.jsonl", [("fine", "pos"), ("  ", "neg")], text="body")
    with pytest.raises(DataError, match="line 2, field 'body': is empty"): load_labelled(g, text_field="body")


def test_balanced_sample_is_balanced_and_repeatable():
    ds = load_labelled("reviews")
    s = balanced_sample(ds, 32, seed=3)
    assert sorted(s["label"]).count("positive") == 16 and s["text"] == balanced_sample(ds, 32, seed=3)["text"]
    assert len(balanced_sample(ds, 0)) == len(ds)


# --- training -------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny():
    from datasets import Dataset
    rows = [{"text": t, "label": "pos" if l else "neg"} for t, l in ROWS] * 4
    return load_tokenizer("tiny-bert"), Dataset.from_list(rows)


def test_train_classifier_learns_and_reports(tiny):
    tok, ds = tiny
    cfg = ClassifyConfig(num_epochs=16, learning_rate=3e-3, batch_size=8, save_steps=0)
    model = load_classifier("tiny-bert", ["neg", "pos"], cfg)
    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    res = train_classifier(model, tok, ds, ds, cfg)
    assert res.metrics["accuracy"] == 1.0 and res.metrics["train_steps"] == 48
    assert {"accuracy", "macro_f1", "train_seconds"} <= set(res.metrics)
    unchanged = [n for n, p in model.named_parameters() if torch.equal(p, start[n])]
    assert unchanged == [], unchanged  # every weight was trained
    fig = plot_confusion(res.predictions, ["neg", "pos"])
    assert [t.get_text() for t in fig.axes[0].texts] == ["12", "0", "0", "12"]


def test_eval_label_the_model_lacks_is_refused(tiny):
    from datasets import Dataset
    tok, ds = tiny
    cfg = ClassifyConfig(max_steps=1, save_steps=0)
    with pytest.raises(DataError, match="row 1 has label 'meh'"):
        train_classifier(load_classifier("tiny-bert", ["neg", "pos"], cfg), tok, ds, Dataset.from_list([{"text": "x", "label": "meh"}]), cfg)
    with pytest.raises(ConfigError): load_classifier("tiny-bert", ["only"])


def test_random_init_twin_differs_from_pretrained_only_in_weights():
    a = load_classifier("tiny-bert", ["a", "b"])
    b = load_classifier("tiny-bert", ["a", "b"], pretrained=False)
    assert type(a) is type(b) and a.config.num_hidden_layers == b.config.num_hidden_layers
    wa, wb = a.bert.embeddings.word_embeddings.weight, b.bert.embeddings.word_embeddings.weight
    assert wa.shape == wb.shape and not torch.equal(wa, wb)


# --- the command ----------------------------------------------------------------------------------------------------

def _predictions_reproduced(out, load):
    "The saved model predicts what predictions.jsonl says."
    from transformers import AutoTokenizer
    preds = [json.loads(l) for l in (out / "predictions.jsonl").read_text().splitlines()]
    model, tok = load(out / "model"), AutoTokenizer.from_pretrained(out / "model")
    again = predict(model, tok, [p["text"] for p in preds])
    assert [str(p["predicted"]) for p in preds] == [a["label"] for a in again]


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "tsv"])
def test_classify_runs_on_each_format(tmp_path, fmt):
    from transformers import AutoModelForSequenceClassification
    rows = [(t, "pos" if l else "neg") for t, l in ROWS] if fmt == "jsonl" else ROWS
    if fmt == "jsonl": tr, ev = _jsonl(tmp_path / "tr.jsonl", rows * 3), _jsonl(tmp_path / "ev.jsonl", rows)
    else:
        sep = "," if fmt == "csv" else "\t"
        tr, ev = _csv(tmp_path / f"tr.{fmt}", rows * 3, sep=sep), _csv(tmp_path / f"ev.{fmt}", rows, sep=sep)
    fields = [] if fmt == "jsonl" else ["--text-field", "review", "--label-field", "stars"]
    out = tmp_path / "out"
    r = run_cli("classify", "--model", "tiny-bert", "--train", tr, "--eval", ev, *fields, "--epochs", "1", "--allow-overlap", "--out", out)
    assert r.returncode == 0, r.stderr[-3000:]
    m = json.loads((out / "metrics.json").read_text())
    assert {"accuracy", "macro_f1", "train_seconds"} <= set(m)
    preds = [json.loads(l) for l in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(preds) == len(rows)  # one prediction per eval row, and the metric is the share of them that are right
    assert m["accuracy"] == pytest.approx(sum(str(p["predicted"]) == str(p["label"]) for p in preds) / len(preds))
    assert m["config"]["labels"] == (["neg", "pos"] if fmt == "jsonl" else [0, 1])
    _predictions_reproduced(out, AutoModelForSequenceClassification.from_pretrained)


def test_classify_lora_adapter_keeps_its_label_names(tmp_path):
    "A LoRA run saves the adapter and head (no full weights) and the label maps, so a reload predicts the same labels by name."
    from peft import AutoPeftModelForSequenceClassification
    three = [(t, ["bad", "good", "meh"][i % 3]) for i, (t, _) in enumerate(ROWS)]
    tr, ev = _jsonl(tmp_path / "tr.jsonl", three * 3), _jsonl(tmp_path / "ev.jsonl", three)
    out = tmp_path / "out"
    r = run_cli("classify", "--model", "tiny-bert", "--train", tr, "--eval", ev, "--epochs", "1", "--lora", "--allow-overlap", "--out", out)
    assert r.returncode == 0, r.stderr[-3000:]
    cfg = json.loads((out / "model" / "adapter_config.json").read_text())
    assert cfg["r"] == 8 and "classifier" in cfg["modules_to_save"] and not (out / "model" / "model.safetensors").exists()
    labels = json.loads((out / "model" / "labels.json").read_text())["labels"]
    assert labels == ["bad", "good", "meh"]
    _predictions_reproduced(out, load_trained_classifier)
    _predictions_reproduced(out, lambda d: AutoPeftModelForSequenceClassification.from_pretrained(  # with peft alone
        d, num_labels=3, id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)}))


@pytest.mark.slow
def test_classify_resumes_from_a_checkpoint(tmp_path):
    tr, ev = _jsonl(tmp_path / "tr.jsonl", ROWS * 8), _jsonl(tmp_path / "ev.jsonl", ROWS)
    out = tmp_path / "out"
    args = ("classify", "--model", "tiny-bert", "--train", tr, "--eval", ev, "--epochs", "1", "--save-steps", "2", "--allow-overlap", "--out", out)
    assert run_cli(*args).returncode == 0  # 48 rows / batch 16: 3 steps, checkpoints at steps 2 and 3 (the end)
    assert (out / "checkpoints" / "checkpoint-2" / "ftbook-complete.json").exists()
    (out / "checkpoints" / "checkpoint-3" / "ftbook-complete.json").unlink()  # as if killed while writing the last one,
    (out / "metrics.json").unlink()  # before the run could finish (--resume on a finished run does nothing)
    r = run_cli(*args, "--resume")
    assert r.returncode == 0, r.stderr[-3000:]
    m = json.loads((out / "metrics.json").read_text())
    assert (m["resumed_from_step"], m["train_steps"]) == (2, 3)


@pytest.mark.parametrize("case,expect", [
    ("missing_label", "line 2, field 'stars': missing"),
    ("unknown_eval_label", "line 2, field 'stars': label 7 does not occur in the training file"),
    ("one_label", "has a single label"),
    ("bad_json", "line 2: is not valid JSON"),
    ("ragged_csv", "line 3: has a different number of columns"),
])
def test_classify_rejects_malformed_input_before_writing(tmp_path, case, expect):
    tr, ev = tmp_path / "tr.csv", _csv(tmp_path / "ev.csv", ROWS)
    if case == "missing_label": tr = tmp_path / "tr.jsonl"; tr.write_text('{"review": "good", "stars": 1}\n{"review": "bad"}\n')
    elif case == "unknown_eval_label": _csv(tr, ROWS); ev.write_text("review,stars\nhmm,7\n")
    elif case == "one_label": _csv(tr, [(t, 1) for t, _ in ROWS])
    elif case == "bad_json": tr = tmp_path / "tr.jsonl"; tr.write_text('{"review": "a", "stars": 1}\n{"review": "b", "stars": \n')
    else: tr.write_text('review,stars\n"good",1\n"bad",0,extra\n')
    out = tmp_path / "out"
    r = run_cli("classify", "--model", "tiny-bert", "--train", tr, "--eval", ev, "--text-field", "review", "--label-field", "stars", "--allow-overlap", "--out", out)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert expect in r.stderr and not out.exists()
