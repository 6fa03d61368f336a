"""Safety and fault handling: pickles and remote code refused by default, NaN and out-of-memory explained."""
import json
import shutil

import pytest
import torch
from transformers import AutoModelForMaskedLM, DataCollatorWithPadding, Trainer

from ftbook.config import ModelError
from ftbook.data import encode_labels, load_data
from ftbook.models import load_model, load_tokenizer, preset_path
from ftbook.train import TrainingError, last_checkpoint, run_training, training_args


def test_pickled_weights_are_refused_unless_allowed(tmp_path):
    src, d = preset_path("tiny-bert"), tmp_path / "pickled"
    d.mkdir()
    shutil.copy(src / "config.json", d)
    torch.save(AutoModelForMaskedLM.from_pretrained(src).state_dict(), d / "pytorch_model.bin")
    with pytest.raises(ModelError, match="allow_pickle=True"):
        load_model(d, task="masked-lm")
    assert load_model(d, task="masked-lm", allow_pickle=True).config.model_type == "bert"


def test_remote_code_is_not_run_by_default(tmp_path):
    d, sentinel = tmp_path / "remote", tmp_path / "code-ran"
    shutil.copytree(preset_path("tiny-bert"), d)
    cfg = json.loads((d / "config.json").read_text())
    cfg.update(model_type="customized-bert", auto_map={"AutoConfig": "custom.Cfg", "AutoModelForMaskedLM": "custom.Model"})
    (d / "config.json").write_text(json.dumps(cfg))
    (d / "custom.py").write_text(f"open({str(sentinel)!r}, 'w').write('ran')\n"
                                 "from transformers import BertConfig, BertForMaskedLM\n"
                                 "class Cfg(BertConfig): model_type = 'customized-bert'\n"
                                 "class Model(BertForMaskedLM): config_class = Cfg\n")
    with pytest.raises(ModelError, match="trust_remote_code=True"):
        load_model(d, task="masked-lm")
    assert not sentinel.exists()


@pytest.fixture
def tiny_classifier(tmp_path):
    tok = load_tokenizer("tiny-bert")
    data = encode_labels(load_data("reviews", n=64)).map(lambda r: tok(r["text"], truncation=True, max_length=32),
                                                         remove_columns=["text", "category"])
    def make(**kw):
        args = training_args(tmp_path / "run", **({"max_steps": 12, "save_strategy": "steps", "save_steps": 4,
                                                  "disable_tqdm": True, "learning_rate": 1e-3} | kw))
        return Trainer(model=load_model("tiny-bert", task="seq-cls", num_labels=2), args=args, train_dataset=data,
                       data_collator=DataCollatorWithPadding(tok))
    return make


def test_nan_loss_stops_with_an_explanation_and_keeps_the_last_good_checkpoint(tiny_classifier, tmp_path):
    with pytest.raises(TrainingError, match="learning rate is too high") as e:
        run_training(tiny_classifier(learning_rate=1e6, warmup_steps=12, max_steps=30))
    ckpt = last_checkpoint(tmp_path / "run")
    assert ckpt is not None and str(ckpt) in str(e.value)
    model = load_model(ckpt, task="seq-cls", num_labels=2)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_healthy_run_raises_nothing(tiny_classifier, tmp_path):
    run_training(tiny_classifier())
    assert last_checkpoint(tmp_path / "run").name == "checkpoint-12"


def test_out_of_memory_suggests_the_next_setting(tiny_classifier):
    trainer = tiny_classifier()
    def oom(*args, **kwargs): raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    trainer.training_step = oom
    with pytest.raises(TrainingError) as e:
        run_training(trainer)
    msg = str(e.value)
    assert "\n" not in msg and "--batch-size 4" in msg and "--grad-accum 2" in msg and "--lora" in msg
