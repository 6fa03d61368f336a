"""The offline presets load and behave like the models they are; hub ids fail fast offline."""
import time

import pytest
import torch

from ftbook.config import ModelError
from ftbook.config import PRESETS
from ftbook.models import chat, embed, load_model, load_tokenizer, param_counts


@pytest.fixture(scope="module")
def smollm2():
    return load_model("smollm2-135m-instruct"), load_tokenizer("smollm2-135m-instruct")


def test_smollm2_answers_a_factual_question(smollm2):
    lm, tok = smollm2
    assert "Paris" in chat(lm, tok, "What is the capital of France?", max_new_tokens=24)


def test_smollm2_is_the_135m_llama(smollm2):
    lm, _ = smollm2
    assert lm.config.model_type == "llama" and 130e6 < param_counts(lm)["total"] < 140e6


def test_minilm_ranks_a_paraphrase_above_an_unrelated_sentence():
    enc, tok = load_model("minilm-l6"), load_tokenizer("minilm-l6")
    e = embed(enc, tok, ["The weather is lovely today.", "It is a beautiful sunny day.", "He is writing Python code."])
    sims = e @ e.T
    assert sims[0, 1] > sims[0, 2] + 0.2
    assert torch.allclose(e.norm(dim=-1), torch.ones(3), atol=1e-5)


@pytest.mark.parametrize("name,task", [("tiny-llama", "causal-lm"), ("tiny-bert", "masked-lm"), ("tiny-bert", "seq-cls"),
                                       ("tiny-llama", "seq-cls")])
def test_tiny_presets_load_for_each_task(name, task):
    m = load_model(name, task=task, num_labels=2 if task == "seq-cls" else None)
    tok = load_tokenizer(name)
    out = m(**tok(["a short text", "another one here"], return_tensors="pt", padding=True))
    assert out.logits.shape[0] == 2
    assert param_counts(m)["total"] < 2_000_000


def test_tiny_llama_template_marks_assistant_tokens():
    tok = load_tokenizer("tiny-llama")
    enc = tok.apply_chat_template([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
                                  return_assistant_tokens_mask=True, return_dict=True)
    masked = [t for t, m in zip(enc["input_ids"], enc["assistant_masks"]) if m]
    assert tok.decode(masked) == "hello<|im_end|>"


def test_unreachable_hub_id_fails_fast_with_the_preset_to_use():
    t0 = time.time()
    with pytest.raises(ModelError, match="offline preset 'smollm2-135m-instruct'"):
        load_model("HuggingFaceTB/SmolLM2-1.7B-Instruct")
    assert time.time() - t0 < 5


def test_presets_are_available_offline():
    assert PRESETS["smollm2-135m-instruct"].available() and PRESETS["minilm-l6"].available()
