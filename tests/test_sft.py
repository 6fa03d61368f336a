"""Instruction tuning: chat templates with generation markers, the label-mask inspector, the loss, and `ftbook sft`."""
import json

import pytest
import torch

from conftest import run_cli
from ftbook.config import DataError, ModelError
from ftbook.models import CHATML_TEMPLATE, load_model, load_tokenizer
from ftbook.sft import (InstructConfig, check_batch, encode_conversation, load_conversations, mask_report,
                        render_labels, sft_loss, training_template)

# SmolLM2-135M-Instruct's own template: ChatML with a default system message and no generation markers.
SMOLLM2_TEMPLATE = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n"
                    "You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' "
                    "+ message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
                    "{{ '<|im_start|>assistant\n' }}{% endif %}")
LLAMA2_TEMPLATE = ("{% for m in messages %}{% if m['role'] == 'user' %}{{ '[INST] ' + m['content'] + ' [/INST]' }}"
                   "{% else %}{{ ' ' + m['content'] + ' </s>' }}{% endif %}{% endfor %}")
SHORT = [{"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "Blue."}]
LONG_PROMPT = [{"role": "user", "content": "Summarise: " + "the tide turned and the boat swung on its anchor; " * 8},
               {"role": "assistant", "content": "The boat swung."}]


@pytest.fixture
def tok():
    return load_tokenizer("tiny-llama")  # ChatML with generation markers


# --- templates ------------------------------------------------------------------------------------------------------

def test_marked_template_is_kept(tok):
    assert training_template(tok) == CHATML_TEMPLATE


def test_chatml_without_markers_gets_an_identical_marked_template(tok):
    tok.chat_template = SMOLLM2_TEMPLATE
    marked = training_template(tok, probes=[SHORT, LONG_PROMPT])
    assert "{% generation %}" in marked
    for conv in ([{"role": "system", "content": "Be terse."}] + SHORT, SHORT, SHORT + SHORT):
        for gen in (False, True):
            assert (tok.apply_chat_template(conv, tokenize=False, add_generation_prompt=gen)
                    == tok.apply_chat_template(conv, tokenize=False, add_generation_prompt=gen, chat_template=marked))


def test_template_without_markers_is_flagged_with_the_fix(tok):
    tok.chat_template = LLAMA2_TEMPLATE
    with pytest.raises(ModelError, match=r"no \{% generation %\} markers.*\n.*Fix: put \{% generation %\}"):
        training_template(tok)
    with pytest.raises(ModelError, match="every label would be masked"):
        encode_conversation(tok, SHORT)


def test_chatml_lookalike_that_renders_differently_is_refused(tok):
    tok.chat_template = SMOLLM2_TEMPLATE.replace("'<|im_end|>' + '\n'", "'<|im_end|>' + '\n\n'")
    with pytest.raises(ModelError, match="renders differently"):
        training_template(tok)


# --- the mask inspector ---------------------------------------------------------------------------------------------

def test_labels_cover_the_answer_and_its_end_of_turn_only(tok):
    e = encode_conversation(tok, SHORT)
    supervised = [t for t, l in zip(e["input_ids"], e["labels"]) if l != -100]
    assert tok.decode(supervised) == "Blue.<|im_end|>"
    assert render_labels(tok, e["input_ids"], e["labels"]).endswith("assistant\n[[Blue.<|im_end|>]]\n")
    assert "background" in render_labels(tok, e["input_ids"], e["labels"], html_output=True)


def test_healthy_dataset_reports_no_problem(tok):
    r = mask_report(tok, [SHORT] * 3, max_length=64)
    assert r["problems"] == [] and r["truncated_examples"] == 0 and r["eos_supervised_share"] == 1.0
    assert 0 < r["supervised_token_share"] < 0.5


def test_answers_truncated_away_are_flagged(tok):
    n = len(encode_conversation(tok, LONG_PROMPT)["input_ids"])
    r = mask_report(tok, [LONG_PROMPT, LONG_PROMPT, SHORT], max_length=n - 8)
    assert (r["truncated_examples"], r["answers_lost"]) == (2, 2)
    assert "2 of 3 conversations lost their whole answer" in r["problems"][0]
    r = mask_report(tok, [LONG_PROMPT], max_length=n - 8)
    assert r["supervised_tokens"] == 0 and "no token carries loss" in r["problems"][0]


def test_batch_whose_answers_were_truncated_away_raises(tok):
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling
    collate = DataCollatorForLanguageModeling(pad_token_id=tok.pad_token_id)
    cut = encode_conversation(tok, LONG_PROMPT, 32)
    batch = collate([{"input_ids": cut["input_ids"], "labels": cut["labels"]}] * 2)
    with pytest.raises(DataError, match="every label of this batch of 2 is -100"): check_batch(batch, 32)
    ok = encode_conversation(tok, SHORT, 32)
    check_batch(collate([{"input_ids": cut["input_ids"], "labels": cut["labels"]}, {"input_ids": ok["input_ids"], "labels": ok["labels"]}]))


def test_end_of_turn_masked_with_padding_is_flagged(tok):
    tok.pad_token = tok.eos_token  # as in SmolLM2

    def naive(tokenizer, messages, max_length):
        ids = tokenizer.apply_chat_template(messages, return_dict=True)["input_ids"]
        return {"input_ids": ids, "full_length": len(ids), "labels": [-100 if t == tokenizer.pad_token_id else t for t in ids]}
    r = mask_report(tok, [SHORT], None, labels_fn=naive)
    assert r["eos_supervised_share"] == 0 and "will not learn to stop (pad token == EOS" in r["problems"][-1]


def test_hand_written_loss_matches_the_model(tok):
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling
    model = load_model("tiny-llama")
    rows = [encode_conversation(tok, c) for c in (SHORT, LONG_PROMPT)]
    batch = DataCollatorForLanguageModeling(pad_token_id=tok.pad_token_id)([{"input_ids": r["input_ids"], "labels": r["labels"]} for r in rows])
    with torch.no_grad(): out = model(**batch)
    assert torch.allclose(sft_loss(out.logits, batch["labels"]), out.loss, atol=1e-5)


# --- data formats and the command -----------------------------------------------------------------------------------

RECORDS = [("Name a primary colour.", "Red."), ("What is 2 + 2?", "Four."), ("Say hello in French.", "Bonjour."),
           ("Opposite of hot?", "Cold."), ("A word for happy?", "Glad."), ("Capital of Italy?", "Rome.")]


def test_train_sft_without_evaluation_trains_and_says_so(monkeypatch):
    "evaluate=False (chapter 9's compare scores each conversation itself): the run trains and never calls evaluate."
    from transformers import Trainer
    from ftbook.sft import load_sft_model, train_sft
    calls = []
    monkeypatch.setattr(Trainer, "evaluate", lambda self, *a, **k: calls.append(1) or {"eval_loss": 1.0})
    convs = [[{"role": "user", "content": q}, {"role": "assistant", "content": a}] for q, a in RECORDS]
    cfg = InstructConfig.for_profile("cpu", batch_size=2, max_steps=2, save_steps=0)
    res = train_sft(load_sft_model("tiny-llama", cfg), load_tokenizer("tiny-llama"), convs, convs[:2], cfg, evaluate=False)
    assert calls == [] and res.metrics["train_steps"] == 2 and res.metrics["eval_loss_before"] != res.metrics["eval_loss_before"]  # NaN
    assert "held-out loss not measured" in res.lines[0]
    train_sft(load_sft_model("tiny-llama", cfg), load_tokenizer("tiny-llama"), convs, convs[:2], cfg)
    assert len(calls) == 2  # by default: before and after


def _write(path, fmt):
    if fmt == "messages":
        rows = [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]} for q, a in RECORDS]
    elif fmt == "prompt_completion": rows = [{"prompt": q, "completion": a} for q, a in RECORDS]
    else: rows = [{"instruction": q, "input": "", "output": a} for q, a in RECORDS]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize("fmt", ["messages", "prompt_completion", "alpaca"])
def test_each_format_becomes_the_same_conversations(tmp_path, fmt):
    convs = load_conversations(_write(tmp_path / f"{fmt}.jsonl", fmt))
    assert convs == [[{"role": "user", "content": q}, {"role": "assistant", "content": a}] for q, a in RECORDS]


def test_alpaca_csv_with_input_column(tmp_path):
    f = tmp_path / "a.csv"
    f.write_text('instruction,input,output\nTranslate to French,cat,chat\n"Add the numbers","2, 3",5\n')
    assert load_conversations(f)[1][0]["content"] == "Add the numbers\n\n2, 3"


@pytest.mark.parametrize("fmt", ["messages", "prompt_completion", "alpaca"])
def test_sft_command_runs_on_each_format(tmp_path, fmt):
    from transformers import AutoModelForCausalLM
    f = _write(tmp_path / f"{fmt}.jsonl", fmt)
    out = tmp_path / "out"
    r = run_cli("sft", "--model", "tiny-llama", "--train", f, "--eval", f, "--max-steps", "2", "--allow-overlap", "--out", out)
    assert r.returncode == 0, r.stderr[-3000:]
    m = json.loads((out / "metrics.json").read_text())
    assert {"eval_loss_before", "eval_loss_after", "supervised_token_share", "truncated_examples"} <= set(m)
    assert m["train_steps"] == 2 and m["truncated_examples"] == 0 and m["eval_loss_after"] < m["eval_loss_before"]  # eval = train: two steps must lower it
    model = AutoModelForCausalLM.from_pretrained(out / "model")
    assert model.config.vocab_size == len(load_tokenizer(out / "model"))


def test_sft_lora_holds_out_a_tenth_and_saves_an_adapter(tmp_path):
    from peft import AutoPeftModelForCausalLM
    rows = [{"prompt": f"Question number {i}: what is {i} plus {i}?", "completion": f"{2 * i}."} for i in range(40)]
    f = tmp_path / "pc.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    r = run_cli("sft", "--model", "tiny-llama", "--train", f, "--lora", "--max-steps", "1", "--allow-overlap", "--out", out)
    assert r.returncode == 0, r.stderr[-3000:]
    m = json.loads((out / "metrics.json").read_text())
    assert 0 < m["eval_examples"] < 40 and m["train_examples"] + m["eval_examples"] == 40
    assert (out / "model" / "adapter_config.json").exists()
    AutoPeftModelForCausalLM.from_pretrained(out / "model")


@pytest.mark.slow
def test_sft_resumes_from_the_last_checkpoint(tmp_path):
    f = _write(tmp_path / "m.jsonl", "messages")
    out = tmp_path / "out"
    args = ("sft", "--model", "tiny-llama", "--train", f, "--eval", f, "--save-steps", "2", "--allow-overlap", "--out", out)
    assert run_cli(*args, "--max-steps", "3").returncode == 0
    assert (out / "checkpoints" / "checkpoint-2" / "ftbook-complete.json").exists()
    (out / "checkpoints" / "checkpoint-3" / "ftbook-complete.json").unlink()  # as if killed while writing the last one,
    (out / "metrics.json").unlink()  # before the run could finish (--resume on a finished run does nothing)
    r = run_cli(*args, "--max-steps", "3", "--resume")
    assert r.returncode == 0, r.stderr[-3000:]
    m = json.loads((out / "metrics.json").read_text())
    assert (m["resumed_from_step"], m["train_steps"]) == (2, 3)


@pytest.mark.parametrize("content,args,expect", [
    ('{"messages": [{"role": "user", "content": "hi"}]}\n', (), "line 1, field 'messages': the conversation has no assistant turn"),
    ('{"prompt": "hi", "completion": "yo"}\n{"prompt": "ok"}\n', (), "line 2, field 'completion': missing"),
    ('{"text": "just text"}\n', (), "holds 'text' records"),
    (json.dumps({"prompt": "word " * 80, "completion": "ok"}) + "\n", ("--max-length", "16"), "removes the answer of every conversation"),
])
def test_sft_rejects_malformed_input_before_writing(tmp_path, content, args, expect):
    f = tmp_path / "bad.jsonl"
    f.write_text(content)
    out = tmp_path / "out"
    r = run_cli("sft", "--model", "tiny-llama", "--train", f, "--eval", f, "--allow-overlap", *args, "--out", out)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert expect in r.stderr and not out.exists()


def test_config_for_profile_reads_the_profile():
    from ftbook.config import ConfigError, get_profile
    assert InstructConfig.for_profile(get_profile("colab")).max_length == 512
    with pytest.raises(ConfigError, match="no field 'lr'"): InstructConfig.for_profile(lr=1)


@pytest.mark.slow
def test_padding_free_batches_train_exactly_as_padded_ones(monkeypatch):
    """CPU training is padding-free by default (`fast_defaults`): the same conversations, padded and padding-free, give the
    same loss at every step and the same held-out loss. SmolLM2, because its attention is sharp: had one conversation seen
    the one packed before it, its logits would move by whole units and the losses would part at the first step."""
    import dataclasses
    import ftbook.sft
    from ftbook.sft import load_sft_model, train_sft
    assert ftbook.sft.fast_defaults(None, "cpu", device="cpu").padding_free
    name, convs, runs = "smollm2-135m-instruct", load_conversations("instructions"), {}
    original = ftbook.sft.fast_defaults
    seen = []
    for padding_free in (False, True):
        monkeypatch.setattr(ftbook.sft, "fast_defaults", lambda *a, **k: seen.append(padding_free) or dataclasses.replace(original(*a, **k), padding_free=padding_free))
        cfg = InstructConfig.for_profile("cpu", batch_size=4, max_steps=2, save_steps=0)
        torch.manual_seed(0)
        res = train_sft(load_sft_model(name, cfg), load_tokenizer(name), convs[:16], convs[16:20], cfg, name=name)
        m = res.metrics
        runs[padding_free] = ([h["loss"] for h in res.history if "loss" in h], m["eval_loss_after"], m["eval_loss_before"])
    assert set(seen) == {False, True}, seen  # train_sft took the patched settings: both kinds of batch really ran
    (padded, padded_eval, before), (free, free_eval, _) = runs[False], runs[True]
    assert len(padded) == 2 and padded == pytest.approx(free, rel=1e-4), runs
    assert padded_eval == pytest.approx(free_eval, rel=1e-4) and abs(padded_eval - before) > 1e-3, runs  # and training moved it


def test_padding_free_collator_flattens_the_batch():
    "What the padding-free batch holds: one row, positions restarting at each conversation, no pad token."
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling
    b = DataCollatorForLanguageModeling(pad_token_id=0, padding_free=True)([{"input_ids": [5, 6, 7]}, {"input_ids": [8, 9]}])
    assert b["input_ids"].tolist() == [[5, 6, 7, 8, 9]] and b["position_ids"].tolist() == [[0, 1, 2, 0, 1]]


def test_batch_trace_names_the_same_examples_padded_or_padding_free():
    "FTBOOK_TRACE_BATCHES fingerprints each example of a step; a padding-free row is split where its positions restart."
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling
    from ftbook.train import _fingerprints
    ex = [{"input_ids": [5, 6, 7]}, {"input_ids": [8, 9]}, {"input_ids": [4]}]
    free = _fingerprints(DataCollatorForLanguageModeling(pad_token_id=0, padding_free=True)(ex))
    assert len(free) == 3 and free == _fingerprints(DataCollatorForLanguageModeling(pad_token_id=0)(ex))
