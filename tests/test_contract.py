"""The contract every chapter and every training verb shares: one config pattern, one set of training flags, output
folders that are never silently replaced, budgets taken from the user's file, and output a person can read."""
import dataclasses
import importlib
import inspect
import json
import re

import pytest

from conftest import run_cli
from ftbook.cli import main
from ftbook.config import SHARED_FIELDS, ConfigError

CHAPTERS = ["ftbook.pitfalls", "ftbook.selfsup", "ftbook.sft", "ftbook.classify"]
ALIASES = {"lr", "steps", "epochs", "warmup", "lora", "lora_learning_rate", "learning_rate_lora"}  # the old, clashing names


def config_classes() -> list[type]:
    "Every chapter config: a dataclass named *Config defined in a chapter module."
    found = []
    for name in CHAPTERS:
        mod = importlib.import_module(name)
        found += [c for n, c in vars(mod).items() if n.endswith("Config") and dataclasses.is_dataclass(c) and c.__module__ == name]
    return found


def test_the_walk_finds_every_chapter_config():
    assert {c.__name__ for c in config_classes()} >= {"FitConfig", "ForgettingConfig", "PretrainConfig", "InstructConfig",
                                                       "ClassifyConfig"}


@pytest.mark.parametrize("cls", config_classes(), ids=lambda c: c.__name__)
def test_config_follows_the_pattern(cls):
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    assert not names & ALIASES, f"{cls.__name__} uses old names {names & ALIASES}; use {sorted(SHARED_FIELDS)}"
    sig = inspect.signature(cls.for_profile)
    assert list(sig.parameters)[:1] == ["profile"] and sig.parameters["profile"].default is None, sig
    assert any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()), sig
    src = inspect.getsource(cls)
    for f in dataclasses.fields(cls):
        line = next(l for l in src.splitlines() if re.match(rf"\s+{f.name}\s*:", l))
        assert "#" in line, f"{cls.__name__}.{f.name} has no comment saying what it controls"
    for profile in ("cpu", "colab", "gpu"):
        cls.for_profile(profile)  # every profile gives a valid config
    with pytest.raises(ConfigError, match="no field 'lerning_rate'"):
        cls.for_profile(lerning_rate=1e-4)


BAD_VALUES = {"learning_rate": [0, -1e-4], "max_steps": [0, -2], "num_epochs": [0, -2], "batch_size": [0],
              "grad_accum": [0], "warmup_steps": [-1], "max_length": [0], "seed": [-1], "lora_r": [-1]}


@pytest.mark.parametrize("cls", config_classes(), ids=lambda c: c.__name__)
def test_out_of_range_values_name_the_field_and_the_range(cls):
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    shared = names & set(SHARED_FIELDS)
    assert shared or cls.__name__ == "FitConfig"
    for field in shared:
        for bad in BAD_VALUES[field]:
            with pytest.raises(ConfigError, match=rf"\.{field} = {re.escape(repr(bad))} is out of range: use "):
                cls.for_profile("cpu", **{field: bad})


# --- flags: every training verb, bad values, exit 2, one message, nothing written ---------------------------------

CONV = lambda i: {"messages": [{"role": "user", "content": f"Name colour number {i}."},
                               {"role": "assistant", "content": f"Colour {i} is blue."}]}
CLS_ROWS = [{"text": f"review number {i}: {'great value, works well' if i % 2 else 'broke on day two'}",
             "label": "pos" if i % 2 else "neg"} for i in range(20)]
TEXT = "\n".join(f"Entry {i}: reefed early at mark " + " ".join(f"k{i}q{j}" for j in range(8)) for i in range(30))  # no block repeats


@pytest.fixture
def files(tmp_path):
    jl = lambda rows: "".join(json.dumps(r) + "\n" for r in rows)
    (tmp_path / "cls.jsonl").write_text(jl(CLS_ROWS))
    (tmp_path / "chats.jsonl").write_text(jl(CONV(i) for i in range(12)))
    (tmp_path / "notes.txt").write_text(TEXT)
    return tmp_path


def verb_args(verb: str, d) -> list[str]:
    "A small valid run of each training verb on tiny models."
    return {"classify": ["classify", "--model", "tiny-bert", "--train", d / "cls.jsonl", "--eval", d / "cls.jsonl", "--allow-overlap"],
            "sft": ["sft", "--model", "tiny-llama", "--train", d / "chats.jsonl", "--eval", d / "chats.jsonl", "--allow-overlap"],
            "pretrain": ["pretrain", "--objective", "clm", "--model", "tiny-llama", "--train", d / "notes.txt",
                         "--block-size", "16", "--allow-overlap"]}[verb]


VERBS = ["classify", "sft", "pretrain"]
BAD_FLAGS = [["--epochs", "0"], ["--epochs", "-2"], ["--max-steps", "0"], ["--batch-size", "0"], ["--grad-accum", "0"],
             ["--learning-rate", "-1e-4"], ["--learning-rate", "fast"], ["--seed", "-1"], ["--save-steps", "-5"]]


@pytest.mark.parametrize("verb", VERBS)
@pytest.mark.parametrize("flag", BAD_FLAGS, ids=lambda f: " ".join(f))
def test_bad_flag_values_exit_2_before_anything_is_written(files, capsys, verb, flag):
    out = files / "out"
    with pytest.raises(SystemExit) as e:
        main([*map(str, verb_args(verb, files)), *flag, "--out", str(out)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and f"argument {flag[0]}" in err and "Traceback" not in err, err
    if flag[1].startswith("-"): assert "is out of range: use" in err, err  # the range check, not "expected one argument"
    assert not out.exists()


def test_negative_values_reach_the_range_check_and_negative_pairs_still_parse():
    from ftbook.cli import _join_negative_values, build_parser
    assert _join_negative_values(["--learning-rate", "-1e-4", "--seed", "-1"]) == ["--learning-rate=-1e-4", "--seed", "-1"]
    args = build_parser().parse_args(_join_negative_values(["reward", "--train", "p.jsonl", "--rating-range", "-5", "5"]))
    assert args.rating_range == [-5.0, 5.0]


@pytest.mark.parametrize("verb", VERBS)
def test_out_that_is_a_file_is_refused(files, capsys, verb):
    out = files / "taken.txt"
    out.write_text("keep me")
    assert main([*map(str, verb_args(verb, files)), "--max-steps", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "is a file, not a folder" in err and "Traceback" not in err
    assert out.read_text() == "keep me"


def test_lora_targets_without_lora_is_refused(files, capsys):
    assert main([*map(str, verb_args("classify", files)), "--lora-targets", "query", "--out", str(files / "o")]) == 2
    assert "--lora-targets needs --lora" in capsys.readouterr().err and not (files / "o").exists()


@pytest.mark.parametrize("verb,typo,preset", [("classify", "tiny-brt", "tiny-bert"), ("sft", "tiny-lama", "tiny-llama"),
                                              ("pretrain", "tiny-lama", "tiny-llama")])
def test_mistyped_model_suggests_the_closest_preset_of_the_right_family(files, capsys, verb, typo, preset):
    argv = [str(a) for a in verb_args(verb, files)]
    argv[argv.index("--model") + 1] = typo
    assert main([*argv, "--out", str(files / "o")]) == 2
    err = capsys.readouterr().err
    assert f"{preset!r}" in err and "ftbook models" in err and "Traceback" not in err, err
    assert not (files / "o").exists()


# --- finished runs, --overwrite, --resume ---------------------------------------------------------------------------

@pytest.mark.slow
def test_a_finished_run_is_not_replaced_unless_asked(files):
    out = files / "run"
    args = [*verb_args("classify", files), "--max-steps", "2", "--out", out]
    assert run_cli(*args).returncode == 0
    first = (out / "model" / "model.safetensors").stat().st_mtime_ns
    again = run_cli(*args)
    assert again.returncode == 2 and "already holds a finished run" in again.stderr and "--overwrite" in again.stderr
    assert "Traceback" not in again.stderr and (out / "model" / "model.safetensors").stat().st_mtime_ns == first
    resumed = run_cli(*args, "--resume")  # this run kept no checkpoint: --resume used to train it again from the start
    assert resumed.returncode == 0 and "nothing to resume" in resumed.stdout, resumed.stdout + resumed.stderr[-2000:]
    assert (out / "model" / "model.safetensors").stat().st_mtime_ns == first
    over = run_cli(*args, "--overwrite")
    assert over.returncode == 0, over.stderr[-2000:]
    assert (out / "model" / "model.safetensors").stat().st_mtime_ns != first


RESUMABLE = {  # each verb that takes --resume, with its required arguments: check_out runs before any file is read
    "pretrain": ["pretrain", "--objective", "clm", "--train", "notes.txt"],
    "classify": ["classify", "--train", "cls.jsonl", "--eval", "cls.jsonl"],
    "sft": ["sft", "--train", "chats.jsonl"],
    "reward": ["reward", "--train", "pairs.jsonl"],
    "rlhf": ["rlhf", "--reward", "rule:brevity", "--prompts", "prompts.txt"],
    "dpo": ["dpo", "--train", "pairs.jsonl"],
}


def test_every_verb_that_resumes_is_covered():
    from ftbook.cli import build_parser
    verbs = next(a for a in build_parser()._actions if a.dest == "verb").choices
    assert {v for v, p in verbs.items() if any("--resume" in a.option_strings for a in p._actions)} == set(RESUMABLE)


def _snapshot(folder):
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None, p.stat().st_mtime_ns) for p in folder.rglob("*")}


@pytest.mark.parametrize("verb", RESUMABLE)
def test_resume_on_a_finished_run_does_nothing_and_exits_0(tmp_path, capsys, verb):
    "A finished run is never replaced without --overwrite: --resume on one says so, touches nothing and succeeds."
    out = tmp_path / "run"
    (out / "model").mkdir(parents=True)
    (out / "metrics.json").write_text('{"accuracy": 0.9, "config": {}}')
    (out / "model" / "model.safetensors").write_bytes(b"the finished model")
    before = _snapshot(out)
    assert main([*RESUMABLE[verb], "--out", str(out), "--resume"]) == 0
    o = capsys.readouterr()
    assert "finished run" in o.out and "nothing to resume" in o.out and "--overwrite" in o.out and not o.err, o
    assert _snapshot(out) == before


@pytest.mark.parametrize("verb", RESUMABLE)
def test_an_unfinished_run_is_not_trained_over_without_resume(tmp_path, capsys, verb):
    "Checkpoints and no metrics.json: a new run would write its checkpoints beside the old run's, and --resume would then mix them."
    out = tmp_path / "run"
    (out / "checkpoints" / "checkpoint-4").mkdir(parents=True)
    (out / "checkpoints" / "checkpoint-4" / "model.safetensors").write_bytes(b"step 4 of a killed run")
    before = _snapshot(out)
    assert main([*RESUMABLE[verb], "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "holds an unfinished run" in err and "--resume" in err and "--overwrite" in err and "Traceback" not in err, err
    assert _snapshot(out) == before


@pytest.mark.parametrize("verb", RESUMABLE)
def test_resume_and_overwrite_together_are_refused(tmp_path, capsys, verb):
    out = tmp_path / "run"
    assert main([*RESUMABLE[verb], "--out", str(out), "--resume", "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "--overwrite and --resume ask for opposite things" in err and "Traceback" not in err, err
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.parametrize("verb", ["reward", "dpo"])
def test_a_run_that_saves_no_checkpoint_leaves_no_empty_folder(tmp_path, verb):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"prompt": f"Wind {n} knots?", "chosen": f"Reef at {n} knots.", "rejected": "Full sail."}) + "\n"
                             for n in range(10, 30)))
    model = {"reward": "tiny-bert", "dpo": "tiny-llama"}[verb]
    r = run_cli(verb, "--model", model, "--train", pairs, "--max-steps", "1", "--allow-overlap", "--out", tmp_path / "run")  # --save-steps 0 by default
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "run" / "metrics.json").exists() and not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.slow
def test_max_length_beyond_the_models_positions_is_capped_and_said(tmp_path):
    "tiny-bert has 512 positions: --max-length 100000 with a longer answer used to end in a RuntimeError mid-run."
    long = " ".join(f"reef{i}" for i in range(700))  # well over 512 word pieces (2,698 tokens with its prompt)
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"prompt": f"Wind {n} knots?", "chosen": f"Reef at {n} knots. {long}", "rejected": "Full sail."})
                             + "\n" for n in range(10, 30)))
    r = run_cli("reward", "--allow-overlap", "--model", "tiny-bert", "--train", pairs, "--max-steps", "1", "--max-length", "100000", "--out", tmp_path / "run")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "--max-length 100000 is more than tiny-bert has positions for: using its limit, 512" in r.stderr, r.stderr[-2000:]
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["config"]["max_length"] == 512


def test_resume_without_a_checkpoint_says_it_starts_fresh(files):
    out = files / "run"
    r = run_cli(*verb_args("sft", files), "--max-steps", "1", "--resume", "--out", out)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "no complete checkpoint" in r.stderr and "starts from the beginning" in r.stderr
    assert json.loads((out / "metrics.json").read_text())["resumed_from_step"] == 0


# --- budgets from the data, the plan line, metrics, quiet output ----------------------------------------------------

PLAN = re.compile(r"plan: ([\d,]+) examples \(([\d,]+) tokens\), (?:([\d.]+) epochs? = )?([\d,]+) steps of (\d+) x (\d+)")


@pytest.mark.slow
@pytest.mark.parametrize("verb,epochs", [("classify", "1"), ("classify", "2"), ("sft", "1"), ("pretrain", "1")])
def test_by_default_a_verb_trains_whole_epochs_over_the_file_as_its_plan_says(files, tmp_path, monkeypatch, verb, epochs):
    "Every training example is seen once per epoch, and the printed plan is what was trained."
    trace = tmp_path / "trace.tsv"
    monkeypatch.setenv("FTBOOK_TRACE_BATCHES", str(trace))
    out = tmp_path / "run"
    r = run_cli(*verb_args(verb, files), "--epochs", epochs, "--batch-size", "4", "--save-steps", "0", "--out", out,
                fresh=True)  # a new interpreter: transformers' load report goes to the stderr it was imported with
    assert r.returncode == 0, r.stderr[-3000:]
    plans = PLAN.findall(r.stdout)
    assert len(plans) == 1, r.stdout
    n, _, ep, steps, bs, accum = plans[0]
    n, steps = int(n.replace(",", "")), int(steps.replace(",", ""))
    assert float(ep) == float(epochs) and (int(bs), int(accum)) == (4, 1)
    m = json.loads((out / "metrics.json").read_text())
    assert m["train_steps"] == steps and {"train_seconds", "resumed_from_step", "seed"} <= set(m)
    seen = [f for line in trace.read_text().splitlines() for f in line.split("\t")[1].split()]
    assert len(trace.read_text().splitlines()) == steps
    assert len(seen) == n * int(epochs) and len(set(seen)) == n  # each example once per epoch, none left out
    if verb == "classify": assert n == len(CLS_ROWS)
    if verb == "sft": assert n == 12
    assert "{'loss'" not in r.stdout + r.stderr and "UNEXPECTED" not in r.stdout + r.stderr  # no raw log dicts or load reports
