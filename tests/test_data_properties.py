"""Property-based: whatever is wrong with whichever record, `load_data` names that record's line and field."""
import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ftbook.config import DataError
from ftbook.data import load_data

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"),
               min_size=1, max_size=40).filter(str.strip)
labels = st.sampled_from(["positive", "negative", "neutral"])
valid_labelled = st.fixed_dictionaries({"text": text, "label": labels})
valid_conversation = st.builds(lambda q, a: {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}, text, text)

# Each corruption: (function turning a valid record into a bad one or a bad line, the field the error must name)
LABELLED_FAULTS = {
    "missing text": (lambda r: {"label": r["label"]}, "text"),
    "missing label": (lambda r: {"text": r["text"]}, "label"),
    "label is a float": (lambda r: {**r, "label": 0.5}, "label"),
    "label is a list": (lambda r: {**r, "label": [r["label"]]}, "label"),
    "label is null": (lambda r: {**r, "label": None}, "label"),
    "label is a bool": (lambda r: {**r, "label": True}, "label"),
    "text is a number": (lambda r: {**r, "text": 42}, "text"),
    "text is blank": (lambda r: {**r, "text": "   "}, "text"),
    "not JSON": (lambda r: json.dumps(r)[:-1], None),
    "not an object": (lambda r: [r["text"], r["label"]], None),
}
CONVERSATION_FAULTS = {
    "no assistant turn": (lambda r: {"messages": r["messages"][:1]}, "messages"),
    "unknown role": (lambda r: {"messages": [{"role": "bot", "content": "x"}] + r["messages"]}, "messages[0].role"),
    "empty content": (lambda r: {"messages": [r["messages"][0], {"role": "assistant", "content": ""}]}, "messages[1].content"),
    "messages not a list": (lambda r: {"messages": "hello"}, "messages"),
    "message without content": (lambda r: {"messages": [{"role": "user"}, r["messages"][1]]}, "messages[0]"),
}


def _check(records, bad_at, fault, expected_field):
    lines = [json.dumps(r) for r in records]
    bad = fault(records[bad_at])
    lines[bad_at] = bad if isinstance(bad, str) else json.dumps(bad)
    path = Path(tempfile.mkdtemp()) / "data.jsonl"
    path.write_text("\n".join(lines) + "\n")
    try:
        load_data(path)
    except DataError as e:
        assert e.line == bad_at + 1, (e.line, bad_at + 1, str(e))
        assert e.field == expected_field, (e.field, expected_field, str(e))
        assert str(path) in str(e) and "Fix:" in str(e)
    else:
        raise AssertionError("no DataError raised")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(valid_labelled, min_size=2, max_size=12), st.data(), st.sampled_from(sorted(LABELLED_FAULTS)))
def test_labelled_fault_is_located(records, data, fault):
    bad_at = data.draw(st.integers(1, len(records) - 1))  # the first record decides the format; corrupt a later one
    _check(records, bad_at, *LABELLED_FAULTS[fault])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(valid_conversation, min_size=2, max_size=8), st.data(), st.sampled_from(sorted(CONVERSATION_FAULTS)))
def test_conversation_fault_is_located(records, data, fault):
    bad_at = data.draw(st.integers(1, len(records) - 1))
    _check(records, bad_at, *CONVERSATION_FAULTS[fault])


@settings(max_examples=30, deadline=None)
@given(st.lists(valid_labelled, min_size=1, max_size=12))
def test_valid_files_load_completely(records):
    path = Path(tempfile.mkdtemp()) / "data.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert load_data(path)["text"] == [r["text"] for r in records]
