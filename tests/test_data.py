"""Bad data files raise errors that name the file, line and field; the shipped datasets meet their sizes."""
import pytest

from ftbook.config import DATA_DIR, DataError
from ftbook.data import SHIPPED, load_data, split_data

BAD = [  # (file name, content, line, field, text in the message)
    ("missing.jsonl", '{"text": "ok", "label": "a"}\n{"text": "no label"}\n', 2, "label", "missing"),
    ("malformed.jsonl", '{"text": "ok", "label": "a"}\n{"text": "x", "label": "b"\n', 2, None, "not valid JSON"),
    ("wrong_type.jsonl", '{"text": "ok", "label": "a"}\n{"text": "x", "label": 2.5}\n', 2, "label", "string or integer"),
    ("bool_label.jsonl", '{"text": "ok", "label": true}\n', 1, "label", "string or integer"),
    ("empty_text.jsonl", '{"text": "ok", "label": "a"}\n{"text": "", "label": "b"}\n', 2, "text", "is empty"),
    ("empty_text.csv", 'text,label\nok,a\n"  ",b\n', 3, "text", "is empty"),
    ("ragged.csv", 'text,label\nok,a\nx,b,c\n', 3, None, "number of columns"),
    ("no_assistant.jsonl", '{"messages": [{"role": "user", "content": "hi"}]}\n', 1, "messages", "no assistant turn"),
    ("same_pair.jsonl", '{"prompt": "p", "chosen": "same", "rejected": "same"}\n', 1, "rejected", "identical"),
    ("bad_rating.jsonl", '{"prompt": "p", "response": "r", "rating": "high"}\n', 1, "rating", "expected a number"),
    ("mixed_labels.jsonl", '{"text": "a", "label": 1}\n{"text": "b", "label": "1"}\n', 2, "label", "one type"),
]


@pytest.mark.parametrize("fname,content,line,field,text", BAD, ids=[b[0] for b in BAD])
def test_bad_file_error_names_line_and_field(tmp_path, fname, content, line, field, text):
    (tmp_path / fname).write_text(content)
    with pytest.raises(DataError) as e:
        load_data(tmp_path / fname)
    assert (e.value.line, e.value.field) == (line, field)
    msg = str(e.value)
    assert fname in msg and f"line {line}" in msg and text in msg and "Fix:" in msg


def test_non_utf8_bytes_are_located(tmp_path):
    (tmp_path / "latin1.jsonl").write_bytes(b'{"text": "ok", "label": "a"}\n{"text": "caf\xe9", "label": "b"}\n')
    with pytest.raises(DataError, match="line 2: is not valid UTF-8"):
        load_data(tmp_path / "latin1.jsonl")


def test_shipped_sets_meet_their_sizes():
    assert len(load_data("reviews")) >= 600
    assert len(load_data("instructions")) >= 300
    prefs = load_data("preferences")
    assert len(prefs) >= 300 and {"chosen_rating", "rejected_rating"} <= set(prefs.column_names)
    assert (DATA_DIR / SHIPPED["sailing"][0]).stat().st_size >= 50_000
    assert (DATA_DIR / SHIPPED["general"][0]).stat().st_size >= 20_000
    assert all(1 <= r <= 10 for r in load_data("ratings")["rating"])


def test_shipped_preferences_are_twins_no_shortcut_can_read():
    prefs = load_data("preferences")
    assert sorted(prefs["chosen"]) == sorted(prefs["rejected"])  # every response chosen once and rejected once
    by_group = {}
    for r in prefs: by_group.setdefault(r["group"], []).append(r)
    assert all(len(v) == 2 and v[0]["chosen"] == v[1]["rejected"] and v[0]["prompt"] != v[1]["prompt"] for v in by_group.values())
    assert all(r["chosen_rating"] > r["rejected_rating"] for r in prefs)
    tr, ev = split_data(prefs)
    assert not set(tr["group"]) & set(ev["group"]) and 0 < len(ev) < len(prefs)


def test_split_is_deterministic_and_keeps_duplicates_together():
    ds = load_data("reviews")
    a, b = split_data(ds, seed=1), split_data(ds.shuffle(seed=3), seed=1)
    assert sorted(a[1]["text"]) == sorted(b[1]["text"])
    assert not set(a[0]["text"]) & set(a[1]["text"])
    assert abs(len(a[1]) / len(ds) - 0.2) < 0.05  # the default eval share, not an empty or lopsided split
    dup = ds.select(range(40))  # each text twice: every pair must land on one side
    from datasets import concatenate_datasets
    tr, ev = split_data(concatenate_datasets([dup, dup]), seed=1)
    assert len(ev) % 2 == 0 and all(list(tr["text"]).count(t) == 2 for t in tr["text"])
    assert 0 < len(ev) < 80


def test_data_readme_counts_match_the_files():
    readme = (DATA_DIR / "README.md").read_text()
    counts = {"short reviews": len(load_data("reviews")), "conversations for instruction tuning": len(load_data("instructions")),
              "pairs in": len(load_data("preferences")), "new sailing sentences": len(load_data("sailing_topics")),
              "easy general-knowledge questions": len(load_data("general_qa")),
              "documents (75 KB)": len(load_data("sailing")), "paragraphs (48 KB)": len(load_data("general"))}
    for words, n in counts.items():
        assert f"{n} {words}" in readme, f"README says something else than '{n} {words}'"
