"""Leakage: exact, near-duplicate and prompt overlap are found, different texts are not, and `ftbook leakage` writes the
documented leakage.json for every accepted file format and fails cleanly on bad input."""
import csv
import json

import numpy as np
import pytest
from datasketch import MinHash

from conftest import run_cli
from ftbook.config import ConfigError
from ftbook.data import load_data, split_data
from ftbook.leakage import (LeakageReport, _identity, example_texts, leakage_report, normalize_text, plant_leaks,
                            shingle_hashes)

# Clearly different reviews-like texts, and training texts to disguise into an evaluation file.
TRAIN = ["The kettle boils in under a minute and switches itself off when it is done.",
         "Customer service never answered my three emails about the broken zip on this bag.",
         "The hotel room was spotless and the staff remembered our names every morning.",
         "This blender is loud enough to wake the neighbours but it crushes ice in seconds.",
         "The novel drags in the middle, yet the last fifty pages kept me up until two.",
         "Our tour guide knew every street in the old town and never once looked at a map.",
         "The running shoes fell apart after six weeks of easy jogging on flat roads.",
         "A cosy little cafe with the best lemon cake I have had in years."]
EVAL_DIFFERENT = ["The museum audio guide was muffled and kept skipping to the wrong room.",
                  "Delivery took three weeks and the box arrived crushed on one corner.",
                  "This umbrella turned inside out at the first gust and a spoke snapped.",
                  "The concert sound was crisp, and the drummer stole the whole show."]
EXACT = {0: "  the KETTLE boils in under a minute, and switches itself off when it is done!!", 1: TRAIN[2].upper()}
NEAR = {0: TRAIN[1].replace("three", "four"), 1: TRAIN[4].replace("two", "three") + " Highly recommended."}


def planted_eval():
    "Eval rows: different texts, then the exact and near plants; returns rows and {eval row: (kind, train row)}."
    rows, truth = list(EVAL_DIFFERENT), {}
    for kind, plants, src in (("exact", EXACT, {0: 0, 1: 2}), ("near", NEAR, {0: 1, 1: 4})):
        for k, text in plants.items():
            truth[len(rows)] = (kind, src[k])
            rows.append(text)
    return rows, truth


def found(rep: LeakageReport) -> dict:
    return {**{m.eval_index: ("exact", m.train_index) for m in rep.exact},
            **{m.eval_index: ("near", m.train_index) for m in rep.near}}


def test_normalisation_removes_case_spacing_punctuation_and_chat_markup():
    chatml = "<|im_start|>system\nBe nice.<|im_end|>\n<|im_start|>user\nHi,   THERE!<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>"
    assert normalize_text(chatml) == "hi there hello"
    assert normalize_text("[INST] Hi, there! [/INST] Hello") == normalize_text(chatml)
    assert normalize_text("<start_of_turn>user\nHi there<end_of_turn>\n<start_of_turn>model\nHello") == "hi there hello"
    assert normalize_text("Don’t  stop") == normalize_text("dont stop")


def test_shingle_signatures_equal_datasketch_on_the_same_hashes():
    sh = shingle_hashes([normalize_text(TRAIN[0])])[0]
    m = MinHash(num_perm=64, hashfunc=_identity)
    m.update_batch(sh.tolist())
    a, b = m.permutations
    h = sh.astype(np.uint32)
    with np.errstate(over="ignore"):
        h = h ^ (h >> np.uint32(16)); h = h * np.uint32(0x85EBCA6B); h = h ^ (h >> np.uint32(13))
        h = h * np.uint32(0xC2B2AE35); h = h ^ (h >> np.uint32(16))
        assert np.array_equal((h[:, None] * a + b).min(0), m.hashvalues)


def test_report_finds_every_plant_and_nothing_else():
    rows, truth = planted_eval()
    rep = leakage_report(TRAIN, rows, dedupe=True)
    assert found(rep) == truth
    assert rep.prompt_overlap == []
    assert rep.contaminated_share == pytest.approx(4 / len(rows))
    assert rep.clean_eval == EVAL_DIFFERENT
    assert all(m.similarity == 1.0 for m in rep.exact) and all(0.6 <= m.similarity < 1 for m in rep.near)


def test_clearly_different_texts_are_not_flagged():
    reviews = load_data("reviews")
    train, ev = split_data(reviews, eval_size=0.3)
    rep = leakage_report(train, ev)
    assert rep.contaminated == [], rep.summary()


def test_planted_leaks_in_shipped_reviews_are_all_found():
    train, ev = split_data(load_data("reviews"), eval_size=0.2)
    leaky, planted = plant_leaks(list(train["text"]), list(ev["text"]), n_exact=20, n_near=20, seed=3)
    rep = leakage_report(list(train["text"]), leaky)
    assert {m.eval_index: m.train_index for m in rep.exact + rep.near} == planted


def test_prompt_overlap_for_conversations_and_preferences():
    convs = [{"messages": [{"role": "user", "content": "How many legs does a spider have?"},
                           {"role": "assistant", "content": "Eight."}]},
             {"messages": [{"role": "user", "content": "What is the boiling point of water at sea level?"},
                           {"role": "assistant", "content": "100 degrees Celsius."}]}]
    ev = [{"prompt": "How many legs does a spider have?",
           "completion": "Spiders walk on eight legs, two more than the six of an insect such as an ant or a bee."},
          {"prompt": "Name a primary colour.", "completion": "Red."}]
    rep = leakage_report(convs, ev)
    assert [(m.eval_index, m.train_index, m.similarity) for m in rep.prompt_overlap] == [(0, 0, 1.0)]
    prefs = [{"prompt": "Why is the sky blue?", "chosen": "Rayleigh scattering of sunlight.", "rejected": "Because it reflects the sea."}]
    ev_p = [{"prompt": "Briefly, why is the sky blue?", "chosen": "Air scatters short wavelengths most.", "rejected": "Paint."}]
    assert [m.train_index for m in leakage_report(prefs, ev_p).prompt_overlap] == [0]


def test_example_texts_per_format():
    assert example_texts({"question": "Capital of France?", "answer": "Paris"}) == ("Capital of France?\nParis", "Capital of France?")
    assert example_texts({"prompt": "p", "response": "r", "rating": 3}) == ("p\nr", "p")
    assert example_texts({"instruction": "Add", "input": "2 and 3", "output": "5"})[1] == "Add\n\n2 and 3"
    assert example_texts("plain") == ("plain", None)


def test_bad_threshold_is_a_config_error():
    with pytest.raises(ConfigError, match="threshold"):
        leakage_report(TRAIN, EVAL_DIFFERENT, threshold=0)


# --- the command line ---------------------------------------------------------------------------------------------

def _write(path, rows, fmt):
    if fmt == "jsonl": path.write_text("".join(json.dumps({"text": r}) + "\n" for r in rows))
    elif fmt == "txt": path.write_text("".join(r.replace("\n", " ") + "\n" for r in rows))
    else:
        with open(path, "w", newline="") as f:
            w = csv.writer(f, delimiter="," if fmt == "csv" else "\t")
            w.writerow(["text", "label"])
            w.writerows([[r, "x"] for r in rows])
    return path


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "tsv", "txt"])
def test_cli_reports_all_planted_duplicates_in_the_documented_shape(tmp_path, fmt):
    rows, truth = planted_eval()
    tr, ev = _write(tmp_path / f"train.{fmt}", TRAIN, fmt), _write(tmp_path / f"eval.{fmt}", rows, fmt)
    r = run_cli("leakage", tr, ev, "--out", tmp_path / "out", "--clean", timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "4 of 8 evaluation examples" in r.stdout
    leak = json.loads((tmp_path / "out" / "leakage.json").read_text())
    assert set(leak) == {"exact", "near", "prompt_overlap", "contaminated_share"}
    for kind in ("exact", "near", "prompt_overlap"):
        assert all(set(x) == {"eval_index", "train_index", "similarity"} for x in leak[kind])
    got = {x["eval_index"]: ("exact", x["train_index"]) for x in leak["exact"]}
    got |= {x["eval_index"]: ("near", x["train_index"]) for x in leak["near"]}
    assert got == truth
    assert leak["prompt_overlap"] == [] and leak["contaminated_share"] == pytest.approx(0.5)
    clean = [json.loads(l) for l in (tmp_path / "out" / "eval_clean.jsonl").read_text().splitlines()]
    assert [c["text"] for c in clean] == EVAL_DIFFERENT


def test_cli_without_out_only_prints(tmp_path):
    tr, ev = _write(tmp_path / "a.jsonl", TRAIN, "jsonl"), _write(tmp_path / "b.jsonl", EVAL_DIFFERENT, "jsonl")
    r = run_cli("leakage", tr, ev, cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "No evaluation example" in r.stdout and not (tmp_path / "leakage.json").exists()


@pytest.mark.parametrize("bad, where", [
    ('{"text": "fine"}\n{"text": "broken"\n', "line 2"),
    ('{"text": "fine"}\n{"txt": "misspelled"}\n', "line 2"),
])
def test_cli_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, bad, where):
    tr = _write(tmp_path / "train.jsonl", TRAIN, "jsonl")
    (tmp_path / "eval.jsonl").write_text(bad)
    out = tmp_path / "out"
    r = run_cli("leakage", tr, tmp_path / "eval.jsonl", "--out", out, timeout=300)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "eval.jsonl" in r.stderr and where in r.stderr
    assert not out.exists()


def test_cli_bad_threshold_exits_2_before_writing(tmp_path):
    tr = _write(tmp_path / "train.jsonl", TRAIN, "jsonl")
    r = run_cli("leakage", tr, tr, "--threshold", "1.5", "--out", tmp_path / "out", timeout=300)
    assert r.returncode == 2 and "--threshold" in r.stderr and not (tmp_path / "out").exists()
