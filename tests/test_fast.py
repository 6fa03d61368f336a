"""Training fast: a padding-free packed batch gives each document the same logits and loss as running it alone (and
concatenation without position ids does not), the padding count, `fast_defaults`' choices per machine, and
`ftbook bench --device cpu --arch tiny` writing bench.json (design: DESIGN.md, output conventions)."""
import json

import pytest
import torch

from ftbook.bench import ARCHS, MFU_FORMULA, bench_model, card_peak, chat_lengths, standard_arms, synthetic_data
from ftbook.fast import fast_defaults, pack, packed_vs_separate, padding_share
from conftest import run_cli


@pytest.fixture(scope="module")
def tiny():
    return bench_model("tiny", seed=0)


def test_packed_batch_equals_documents_one_by_one(tiny):
    g = torch.Generator().manual_seed(1)
    docs = [torch.randint(2, ARCHS["tiny"][1]["vocab_size"], (n,), generator=g).tolist() for n in (3, 50, 17, 90)]
    r = packed_vs_separate(tiny, docs)
    assert r["max_logit_diff"] < 1e-4
    assert r["packed_loss"] == pytest.approx(r["separate_loss"], abs=1e-5)
    leak = packed_vs_separate(tiny, docs, positions=False)  # one long document: later ones attend to earlier ones
    assert leak["max_logit_diff"] > 1e-2 and leak["packed_loss"] != pytest.approx(r["separate_loss"], abs=1e-4)
    assert tiny.training  # left as it was found


def test_pack_restarts_positions_and_masks_first_tokens():
    b = pack([[5, 6, 7], [8, 9]])
    assert b["position_ids"].tolist() == [[0, 1, 2, 0, 1]]
    assert b["labels"].tolist() == [[-100, 6, 7, -100, 9]]
    assert "attention_mask" not in b


def test_padding_share_counts_pad_tokens():
    assert padding_share([4, 4, 4, 4], 2) == 0
    assert padding_share([2, 6], 2) == pytest.approx(1 - 8 / 12)  # one batch padded to 6: 4 of 12 tokens are pad
    assert padding_share([2, 6], 1) == 0


def test_chat_lengths_follow_the_histogram_and_scale():
    full = chat_lengths(5000, 2048, seed=0)
    assert 32 <= min(full) and max(full) <= 2048
    assert 230 <= sorted(full)[len(full) // 2] <= 380  # the stored histogram's median is about 300 tokens
    small = chat_lengths(5000, 256, seed=0)
    assert max(small) <= 256 and min(small) >= 8
    assert chat_lengths(10, seed=3) == chat_lengths(10, seed=3)
    data = synthetic_data([5, 20], 100, seed=0)
    assert [len(d) for d in data] == [5, 20] and all(2 <= t < 100 for d in data for t in d)


def test_fast_defaults_by_machine(tiny):
    cpu = fast_defaults(tiny, "cpu", device="cpu")
    assert (cpu.padding_free, cpu.attention, cpu.liger, cpu.precision) == (True, "sdpa", False, "fp32")
    gpu = fast_defaults(tiny, "gpu", device="cuda", installed=set())
    assert (gpu.padding_free, gpu.attention, gpu.liger, gpu.precision, gpu.optim) == (True, "flex_attention", False, "bf16", "adamw_torch_fused")
    assert fast_defaults(tiny, "gpu", device="cuda", installed={"flash_attn", "liger_kernel"}).attention == "flash_attention_2"
    assert fast_defaults(tiny, "gpu", device="cuda", installed={"liger_kernel"}).liger
    t4 = fast_defaults(tiny, "colab", device="cuda", installed={"flash_attn"})  # compute capability 7.5: no bfloat16, no FlashAttention 2
    assert (t4.precision, t4.attention, t4.padding_free) == ("fp16", "sdpa", False)
    assert fast_defaults(tiny, "gpu", device="cuda", installed=set(), capability=(8, 0)).attention == "flex_attention"
    assert fast_defaults(tiny, "gpu", device="cuda", installed=set(), capability=(7, 0)).precision == "fp16"
    assert not gpu.checkpointing
    tiny.gradient_checkpointing_enable()
    try: assert fast_defaults(tiny, "gpu", device="cuda").checkpointing  # the memory plan's choice is kept
    finally: tiny.gradient_checkpointing_disable()
    from trl import DPOConfig, SFTConfig
    assert gpu.trainer_args(SFTConfig) == {"use_liger_kernel": False, "optim": "adamw_torch_fused"}
    assert gpu.trainer_args(DPOConfig, padding_free=True)["padding_free"] is True
    assert "speed (cuda)" in gpu.line and "flex_attention" in gpu.line


def test_apply_switches_attention_and_falls_back(tiny, monkeypatch):
    from peft import LoraConfig, get_peft_model
    peft_model = get_peft_model(bench_model("tiny"), LoraConfig(r=2, target_modules=["q_proj"]))
    s = fast_defaults(peft_model, "gpu", device="cuda", installed=set())
    s.attention = "eager"
    s.apply(peft_model)
    assert peft_model.get_base_model().config._attn_implementation == "eager"  # through the PEFT wrapper
    def refuse(impl):
        if impl != "sdpa": raise ValueError(f"{impl} is not supported for this architecture")
        tiny.config._attn_implementation = "sdpa"
    monkeypatch.setattr(tiny, "set_attn_implementation", refuse)
    s = fast_defaults(tiny, "gpu", device="cuda", installed=set())
    assert (s.attention, s.padding_free) == ("flex_attention", True)
    s.apply(tiny)
    assert (s.attention, s.padding_free) == ("sdpa", False) and "no flex_attention" in s.line


def test_card_peaks_and_arms():
    assert card_peak("NVIDIA H200") == 989.4 and card_peak("NVIDIA H100 PCIe") == 756.0 and card_peak("Tesla T4") == 65.0
    assert card_peak("NVIDIA L40") == 181.0 and card_peak("NVIDIA L40S") == 362.1 and card_peak("NVIDIA L4") == 121.0
    assert card_peak("Intel Xeon") is None
    arms, skipped = standard_arms("cpu")
    assert {a.name for a in arms} >= {"trl_defaults", "padding_free", "ftbook"}
    assert {s["name"] for s in skipped} == {"flex_attention", "liger"}  # GPU kernels
    cpu_ft = next(a for a in arms if a.name == "ftbook")
    assert cpu_ft.padding_free and not cpu_ft.checkpointing and {a.name for a in arms} >= {"no_checkpointing"}  # each knob alone, then both
    gpu_arms, _ = standard_arms("cuda", installed={"liger_kernel"})
    ft = next(a for a in gpu_arms if a.name == "ftbook")
    assert ft.padding_free and ft.attention == "flex_attention" and not ft.checkpointing and ft.liger
    base = next(a for a in gpu_arms if a.name == "trl_defaults")
    assert base.checkpointing and not base.padding_free  # TRL's SFTConfig defaults


def test_bench_cli_writes_bench_json(tmp_path):
    out = tmp_path / "b"
    r = run_cli("bench", "--device", "cpu", "--arch", "tiny", "--steps", "3", "--warmup", "1", "--arms", "trl_defaults,padding_free,ftbook",
                "--out", out)
    assert r.returncode == 0, r.stderr[-3000:]
    b = json.loads((out / "bench.json").read_text())
    assert b["device"].startswith("CPU") and b["peak_tflops"] > 0 and b["mfu_formula"] == MFU_FORMULA
    assert [a["name"] for a in b["arms"]] == ["trl_defaults", "padding_free", "ftbook"]
    for a in b["arms"]:
        assert a["tokens_per_s"] > 0 and 0 < a["mfu"] < 1 and a["peak_memory_gb"] > 0 and a["loss_at_end"] > 0
        lo, hi = a["tokens_per_s_ci"]
        assert lo <= a["tokens_per_s"] <= hi and a["measured_steps"] == 3 == len(a["step_seconds"])
        assert a["tokens_per_s"] == pytest.approx(sum(a["step_tokens"]) / sum(a["step_seconds"]))
    pf = b["arms"][1]
    assert pf["speedup_ci"][0] <= pf["speedup"] <= pf["speedup_ci"][1]
    assert pf["padding_share"] < 0.05 < b["arms"][0]["padding_share"] == b["padding_share"]  # counted from the batches
    # the same data in the same order: padding-free computes the same losses as padded batches
    assert b["arms"][1]["losses"] == pytest.approx(b["arms"][0]["losses"], abs=1e-4)
    assert b["padding_share"] > 0.2
    m = json.loads((out / "metrics.json").read_text())
    assert m["padding_free_speedup"] == pytest.approx(b["arms"][1]["tokens_per_s"] / b["arms"][0]["tokens_per_s"])
    assert (out / "bench.png").stat().st_size > 0
    again = run_cli("bench", "--device", "cpu", "--out", out)
    assert again.returncode == 2 and "--overwrite" in again.stderr and "Traceback" not in again.stderr


@pytest.mark.parametrize("flags,expect", [(["--arch", "gpt5"], "unknown --arch"), (["--arms", "fastest"], "unknown arm"),
                                          (["--device", "cpu", "--arms", "liger,flex_attention"], "none of those arms can run here"),
                                          (["--device", "cuda"], "no CUDA GPU")])
def test_bench_bad_input_exits_2_writing_nothing(tmp_path, flags, expect):
    if "--device" in flags and torch.cuda.is_available(): pytest.skip("this machine has a GPU")
    r = run_cli("bench", *flags, "--out", tmp_path / "o")
    assert r.returncode == 2 and expect in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "o").exists()


def test_cpu_packing_is_checked_on_the_model_and_falls_back_to_padding(tiny, monkeypatch):
    "`apply` tries two packed documents on the model: it keeps padding-free batches where they stay apart, and pads where not."
    import ftbook.train  # FastSettings lives there (chapter 2c)
    kept = fast_defaults(tiny, "cpu", device="cpu")
    assert kept.apply(tiny) is tiny and kept.padding_free
    monkeypatch.setattr(ftbook.train, "packed_vs_separate", lambda model, docs: {"max_logit_diff": 0.5})  # a model that leaks
    fell = fast_defaults(tiny, "cpu", device="cpu")
    fell.apply(tiny)
    assert not fell.padding_free and "saw each other" in fell.line and "0.5" in fell.line
