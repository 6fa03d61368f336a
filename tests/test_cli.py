"""The `ftbook` command: verbs, outputs, and errors as one line with status 2."""
import json

import pytest

from conftest import run_cli


def test_models_lists_both_real_presets_as_available():
    r = run_cli("models")
    assert r.returncode == 0, r.stderr
    rows = {l.split()[0]: l.split() for l in r.stdout.splitlines()[1:] if l.strip()}
    assert rows["smollm2-135m-instruct"][2] == "yes" and rows["minilm-l6"][2] == "yes"


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["sft", "--help"], ["rlhf", "--help"], ["models"]], ids=" ".join)
def test_help_and_version_answer_without_importing_torch(argv):
    """`ftbook --help` used to take 4.5 s on 2 cores, importing torch and transformers before parsing (`ftbook models`:
    7.4 s, loading ftbook.models to read its preset table). A time limit would
    flake on a busy machine; what made it slow can be checked exactly: no heavy library is imported. The seconds are printed."""
    import subprocess, sys, time
    code = ("import sys\nfrom ftbook.cli import main\ntry: main(sys.argv[1:])\nexcept SystemExit: pass\n"
            "print('heavy:', sorted(m for m in ('torch', 'transformers', 'datasets', 'trl', 'peft') if m in sys.modules))")
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=120)
    print(f"ftbook {' '.join(argv)}: {time.perf_counter() - t0:.2f} s")
    assert r.returncode == 0 and r.stdout.strip().endswith("heavy: []"), (r.stdout[-500:], r.stderr[-2000:])
    first = {"--help": "usage: ftbook", "--version": "ftbook ", "models": "name "}
    assert r.stdout.startswith(first[argv[-1]]) or first[argv[-1]] in r.stdout, r.stdout[:500]


NO_NETWORK = """
import socket
_log = {log!r}
def _refuse(*args, **kwargs):
    with open(_log, "a") as f: f.write(repr(args[:2]) + "\\n")
    raise OSError("network access blocked by the test")
_connect = socket.socket.connect
def _connect_local_only(self, address):
    if self.family == socket.AF_UNIX: return _connect(self, address)
    _refuse(self, address)
socket.socket.connect = _connect_local_only
socket.socket.connect_ex = lambda self, address: _connect_local_only(self, address)
socket.create_connection = _refuse
socket.getaddrinfo = _refuse
"""


@pytest.mark.slow
def test_quick_tour_offline_with_sockets_blocked_writes_report_plots_and_html(tmp_path, monkeypatch, record_property):
    "The whole cpu tour runs with every network socket refused, and attempts none."
    guard, log = tmp_path / "guard", tmp_path / "network-attempts.log"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(NO_NETWORK.format(log=str(log)))
    monkeypatch.setenv("PYTHONPATH", str(guard))
    out = tmp_path / "tour"
    r = run_cli("tour", "--quick", "--out", out, fresh=True, timeout=1800)  # a new interpreter, so that the network guard loads first
    assert r.returncode == 0, r.stderr[-3000:]
    assert not log.exists(), f"network access attempted: {log.read_text()}"
    tmp_path = out
    report = json.loads((tmp_path / "report.json").read_text())
    m = {x["name"]: x["metrics"] for x in report["recipes"]}
    record_property("tour_seconds", {x["name"]: x["seconds"] for x in report["recipes"]})  # printed at the end (conftest.py)
    assert list(m) == ["pretrained", "pitfalls", "selfsup", "classify", "sft", "reward", "rlhf", "dpo", "lora", "bench"]
    assert m["lora"]["round_trip_passed"] == 1 and m["lora"]["lora_r4_trainable_params"] < m["lora"]["full_trainable_params"] / 50
    assert {"reward_before", "reward_after", "judge_before", "judge_after", "kl_to_reference"} <= set(m["rlhf"])
    assert {"reward_accuracy", "reward_margin", "chosen_logp_change", "kl_to_reference", "eval_loss_after"} <= set(m["dpo"])
    check_tour_headlines(m)
    lines = {x["name"]: x["lines"] for x in report["recipes"]}
    for name, chapter in (("rlhf", "Chapter 7"), ("dpo", "Chapter 8"), ("lora", "chapter 9")):  # demonstrations say so, and where to go
        assert lines[name][0].startswith("The tour") and chapter in lines[name][0], lines[name]
    assert m["dpo"]["alarms"] == 0 and not any("alarm" in l for l in lines["dpo"]), lines["dpo"]  # 4 pairs cannot show chance
    pngs = list(tmp_path.glob("*.png"))
    assert pngs and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    html = (tmp_path / "index.html").read_text()
    assert all(p.name in html for p in pngs)


def check_tour_headlines(m: dict):
    "Each recipe's headline claim, as the tour's report states it: leaks found, overfitting caught, learning measured."
    from scipy.stats import binomtest
    pre, pit, ss, clf, sft, rw = (m[k] for k in ("pretrained", "pitfalls", "selfsup", "classify", "sft", "reward"))
    assert pre["smollm2_capital_correct"] == 1
    n = pre["zero_shot_examples"]  # zero-shot beats a coin flip: exact binomial test
    assert binomtest(round(pre["zero_shot_accuracy"] * n), n, 0.5, alternative="greater").pvalue < 0.01, pre
    assert pit["leaks_found"] == pit["leaks_planted"] > 0 and pit["leak_false_alarms"] == 0, pit
    assert pit["overfitting_found"] == 1 and pit["kept_eval_loss"] == pit["best_eval_loss"] < pit["last_eval_loss"], pit
    assert pit["domain_ppl_after"] < pit["domain_ppl_before"], pit  # the domain fine-tune learned the domain
    assert ss["mlm_domain_ppl_after"] < ss["mlm_domain_ppl_before"] and ss["clm_domain_ppl_after"] < ss["clm_domain_ppl_before"], ss
    n = clf["eval_examples"]  # the fine-tune beats the majority class by more than chance allows, and the bag of words
    assert binomtest(round(clf["accuracy"] * n), n, clf["majority_share"], alternative="greater").pvalue < 0.001, clf
    assert clf["accuracy"] > clf["tfidf_accuracy"], clf
    assert sft["eval_loss_after"] < sft["eval_loss_before"], sft
    assert rw["pairwise_low"] > 0.5 and rw["pairwise_accuracy"] > rw["length_only_accuracy"], rw  # beats a coin and length
    b = m["bench"]  # padding-free packing skips the padded tokens: faster than TRL's padded defaults on the same batches
    assert b["padding_share"] > 0.3 and b["padding_free_speedup_low"] > 1, b


def test_unknown_recipe_is_a_clean_error(tmp_path):
    r = run_cli("tour", "--only", "nope", "--out", tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "recipes are:" in r.stderr


def test_allow_overlap_trains_and_puts_the_overlap_on_record(tmp_path):
    "With --allow-overlap a run whose evaluation file is its training file trains, and metrics.json records how much overlapped."
    chats = tmp_path / "chats.jsonl"
    chats.write_text("".join(json.dumps({"instruction": q, "input": "", "output": a}) + "\n" for q, a in [
        ("Name a primary colour.", "Red."), ("What is 2 + 2?", "4."), ("Say hello in French.", "Bonjour."), ("Opposite of hot?", "Cold.")] * 2))
    argv = ["sft", "--model", "tiny-llama", "--train", chats, "--eval", chats, "--max-steps", "1", "--out", tmp_path / "run"]
    assert run_cli(*argv).returncode == 2 and not (tmp_path / "run").exists()  # refused without the flag
    r = run_cli(*argv, "--allow-overlap")
    assert r.returncode == 0, r.stderr[-3000:]
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert (m["overlap_exact"], m["overlap_share"]) == (8, 1.0)
