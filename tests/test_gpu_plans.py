"""Every `#| gpu` cell in the book is sized by a memory plan, and every plan fits its card (checked on CPU).

For each `#| gpu` cell and each GPU profile, the cell's configuration is extracted literally: the notebook's import
cells and chapter module are loaded, then the cell's statements up to its last `...plan = plan_memory(...)` run with
`FTBOOK_PROFILE` set to `colab` (a T4) or `gpu` (an H100). Nothing is downloaded or trained: the architectures of the
profiles' models are known to `ftbook.train`, and the estimate builds them on the meta device.
"""
import ast
import json
from pathlib import Path

import pytest
import torch

from ftbook.config import get_profile
from ftbook.train import CARDS, Plan, arch_of, estimate_memory, lora_trainable, plan_memory

NBS = Path(__file__).resolve().parent.parent / "nbs"
LOADERS = ("load_model(", "load_sft_model(", "load_policy(", "load_reward_model(", "load_classifier(", "from_pretrained(")


def _src(cell) -> str: return "".join(cell["source"])


def gpu_cells() -> list[tuple[str, int]]:
    out = []
    for path in sorted(NBS.glob("*.ipynb")):
        nb = json.loads(path.read_text())
        out += [(path.stem, i) for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code" and _src(c).lstrip().startswith("#| gpu")]
    return out


GUARD = "if gpu_profile := needs_gpu():"


def _body(source: str) -> list[ast.stmt]:
    "The cell's statements inside its guard, `if gpu_profile := needs_gpu():`, which becomes `gpu_profile = get_profile()`."
    body = ast.parse(source).body
    assert len(body) == 1 and source.splitlines()[1].startswith(GUARD), f"a #| gpu cell is one block under `{GUARD}`"
    return ast.parse("gpu_profile = get_profile()").body + body[0].body


def _split(source: str) -> tuple[list[ast.stmt], list[ast.stmt], list[str]]:
    "The cell's configuration (up to its last plan), the rest, and the names of its plans."
    body = _body(source)
    is_plan = lambda s: isinstance(s, ast.Assign) and any(isinstance(t, ast.Name) and t.id.endswith("plan") for t in s.targets)
    last = max((i for i, s in enumerate(body) if is_plan(s)), default=None)
    assert last is not None, "a #| gpu cell starts with its plan: `plan = plan_memory(...)`"
    names = [t.id for s in body[:last + 1] if is_plan(s) for t in s.targets]
    return body[:last + 1], body[last + 1:], names


def _namespace(stem: str) -> dict:
    "What the notebook's cells see: its import cells, and its chapter module."
    nb = json.loads((NBS / f"{stem}.ipynb").read_text())
    ns: dict = {"get_profile": get_profile}
    for c in nb["cells"]:
        s = _src(c)
        if c["cell_type"] != "code" or s.lstrip().startswith(("#| export", "#| hide", "#| eval: false", "#| gpu")): continue
        try: body = ast.parse(s).body
        except SyntaxError: continue
        if body and all(isinstance(x, (ast.Import, ast.ImportFrom)) for x in body): exec(compile(s, stem, "exec"), ns)
    exp = next((_src(c).split()[-1] for c in nb["cells"] if _src(c).startswith("#| default_exp")), None)
    if exp: exec(f"from ftbook.{exp} import *", ns)
    return ns


CELLS = gpu_cells()


def test_the_book_has_gpu_cells():
    assert len({stem for stem, _ in CELLS}) >= 9, CELLS  # 01, 03, 04, 05, 05a, 06, 07, 08, 09


@pytest.mark.parametrize("stem,idx", CELLS, ids=[f"{s}-{i}" for s, i in CELLS])
def test_gpu_cell_plans_then_uses_its_plan(stem, idx):
    source = _src(json.loads((NBS / f"{stem}.ipynb").read_text())["cells"][idx])
    config, rest, names = _split(source)
    head = "\n".join(ast.unparse(s) for s in config)
    assert not any(l in head for l in LOADERS), f"{stem}: the plan comes before any model is loaded"
    assert 'get_profile("gpu")' not in source and "get_profile('gpu')" not in source, f"{stem}: use the detected profile"
    tail = "\n".join(ast.unparse(s) for s in rest)
    printed = [ast.unparse(a) for s in ast.walk(ast.Module(body=config + rest, type_ignores=[]))
               if isinstance(s, ast.Call) and getattr(s.func, "id", None) == "print" for a in s.args]
    for name in names:
        assert f"{name}.require()" in printed, f"{stem}: {name} is printed, and stops the cell if it does not fit"
        assert f"{name}.config" in tail or f"{name}.prepare" in tail or "inference" in head, f"{stem}: the run trains with {name}'s sizes"
    assert "bfloat16" not in tail or "inference" in head, f"{stem}: weights that train stay float32 (autocast runs in 16 bits)"


@pytest.mark.parametrize("profile", ["colab", "gpu"])
@pytest.mark.parametrize("stem,idx", CELLS, ids=[f"{s}-{i}" for s, i in CELLS])
def test_gpu_cell_plan_fits_its_card(stem, idx, profile, monkeypatch):
    if torch.cuda.is_available(): pytest.skip("plans against the nominal cards are made on a machine without a GPU")
    monkeypatch.setenv("FTBOOK_PROFILE", profile)
    source = _src(json.loads((NBS / f"{stem}.ipynb").read_text())["cells"][idx])
    config, _, names = _split(source)
    ns = _namespace(stem)
    exec(compile(ast.Module(body=config, type_ignores=[]), f"{stem} gpu cell", "exec"), ns)
    for name in names:
        plan = ns[name]
        assert isinstance(plan, Plan)
        assert plan.card == CARDS[profile][0]
        assert plan.fits, plan.line
        assert plan.require() is plan


def test_planner_keeps_the_global_batch_then_checkpoints():
    from ftbook.sft import InstructConfig
    cfg = InstructConfig.for_profile("gpu", batch_size=16, grad_accum=4)
    plan = plan_memory("HuggingFaceTB/SmolLM2-1.7B-Instruct", cfg, "gpu")
    assert plan.fits and plan.config.batch_size < 16 and plan.config.batch_size * plan.config.grad_accum == 64
    assert not plan.checkpointing
    t4 = plan_memory("HuggingFaceTB/SmolLM2-1.7B-Instruct", cfg, "colab")
    assert not t4.fits and t4.checkpointing and t4.config.batch_size == 1 and "DOES NOT FIT" in t4.line
    lora = plan_memory("HuggingFaceTB/SmolLM2-1.7B-Instruct", InstructConfig.for_profile("colab", lora_r=16), "colab")
    assert lora.fits and lora.method == "lora" and lora.parts["gradients"] < 0.1


def test_planner_keeps_odd_batches_and_refuses_what_does_not_fit():
    from ftbook.config import ConfigError
    from ftbook.sft import InstructConfig
    plan = plan_memory("HuggingFaceTB/SmolLM2-1.7B-Instruct", InstructConfig.for_profile("colab", batch_size=12, grad_accum=2), "colab")
    assert plan.config.batch_size * plan.config.grad_accum == 24  # 12 -> 6 -> 3, then no further halving
    with pytest.raises(ConfigError, match="DOES NOT FIT"): plan.require()


def test_planner_caps_steps_without_accumulation_field():
    from ftbook.pitfalls import ForgettingConfig
    cfg = ForgettingConfig.for_profile("gpu")
    plan = plan_memory("HuggingFaceTB/SmolLM2-1.7B-Instruct", cfg, "gpu", n_train_examples=cfg.n_domain, max_epochs=2)
    assert plan.config.max_steps == 2 * cfg.n_domain // cfg.batch_size < cfg.max_steps


def test_planner_caps_length_and_passes():
    from ftbook.classify import ClassifyConfig
    plan = plan_memory("google-bert/bert-large-uncased", ClassifyConfig.for_profile("gpu", max_steps=300), "gpu", task="seq-cls",
                       n_train_examples=100, max_epochs=2)
    assert plan.config.max_length == 512 and plan.seq_len == 512  # BERT's position embeddings end at 512
    assert plan.config.max_steps == 100 * 2 // (plan.config.batch_size * plan.config.grad_accum)


def test_checkpointing_cuts_the_activation_estimate_more_than_fourfold():
    a = arch_of("HuggingFaceTB/SmolLM2-360M-Instruct")
    plain, ckpt = (estimate_memory(a, 8, 512, precision="bf16", checkpointing=c)["activations"] for c in (False, True))
    assert ckpt < plain / 4


def test_prepare_turns_checkpointing_on():
    from ftbook.models import load_model
    from ftbook.sft import InstructConfig
    plan = plan_memory("tiny-llama", InstructConfig.for_profile("cpu"), "cpu")
    model = load_model("tiny-llama")
    assert plan.prepare(model) is model and not model.is_gradient_checkpointing
    plan.checkpointing = True
    assert plan.prepare(model).is_gradient_checkpointing


def test_lora_count_equals_peft():
    from peft import LoraConfig, get_peft_model
    from ftbook.models import load_model
    for r, targets in [(8, "query,value"), (4, "all-linear")]:
        model = load_model("minilm-l6", task="seq-cls", num_labels=2)
        arch = arch_of(model)
        peft_model = get_peft_model(model, LoraConfig(task_type="SEQ_CLS", r=r, lora_alpha=2 * r, target_modules=targets if targets == "all-linear" else targets.split(",")))
        head = sum(p.numel() for n, p in peft_model.named_parameters() if p.requires_grad and "lora_" not in n)  # the head, trained in full (modules_to_save)
        assert lora_trainable(arch, r, targets) == peft_model.get_nb_trainable_parameters()[0] - head
