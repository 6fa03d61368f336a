"""The bad-input catalogue: every training verb refuses malformed input before training starts and before it writes
anything, with one message (exit status 2, no traceback) that names the file, the line and the field, and the fix.

Each case writes its input files into a fresh folder, runs `ftbook <verb> ... --out OUT` in-process, and checks the
message and that the folder holds nothing but the inputs afterwards.
"""
import json
import shutil

import pytest
import torch

from ftbook.cli import main
from ftbook.models import preset_path

REVIEWS = [("great value, works well", 1), ("broke on day two", 0), ("lovely staff and quick service", 1),
           ("cold food and a long wait", 0), ("would buy again", 1), ("the lid cracked", 0)] * 3
GOOD_CLS = "".join(json.dumps({"text": t, "label": l}) + "\n" for t, l in REVIEWS)
EV_CLS = "".join(json.dumps({"text": t, "label": l}) + "\n" for t, l in [("the kettle boils fast and quietly", 1),
                                                                       ("my parcel arrived torn and soaked", 0)])
"Evaluation reviews that share nothing with GOOD_CLS: every training verb checks its data for overlap before a model loads."
CONV = lambda q, a: {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
GOOD_SFT = "".join(json.dumps(CONV(f"Name a colour, number {i}.", f"Blue, number {i}.")) + "\n" for i in range(12))
EV_SFT = "".join(json.dumps(CONV(f"Which planet is {p}?", f"That is {p}, as far as I know.")) + "\n" for p in ("red", "ringed"))
WORDS = ("reef mainsail wind tide chart boom hull mast keel anchor buoy harbour squall compass rudder winch sheet halyard "
         "jib cleat fender mooring current gust").split()


def phrases(n: int, k: int = 9, seed: int = 0) -> list[str]:
    "n distinct word strings of k words each: a templated line ('... above {n} knots') is a near-duplicate of its siblings, and every training verb now refuses evaluation data like that."
    import random
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(k)).capitalize() + "." for _ in range(n)]


SAILING = "\n".join(phrases(40))
PROMPTS = "".join(f"{p}\n" for p in phrases(12, 6, seed=1))
PAIR = lambda p, c, r: json.dumps({"prompt": p, "chosen": c, "rejected": r}) + "\n"


def jl(*records) -> str: return "".join(json.dumps(r) + "\n" for r in records)


GOOD_PAIRS = "".join(PAIR(f"About {t}?", f"{t.capitalize()} matters; check it first.", f"Ignore {t}.")
                     for t in ("the tide", "the boom", "a reef", "the chart", "the mast", "the hull"))
MANY_PAIRS = "".join(PAIR(q, a, b) for q, a, b in zip(phrases(24, 5, seed=2), phrases(24, 7, seed=3), phrases(24, 4, seed=4)))
REWARD = ["reward", "--model", "tiny-bert", "--max-steps", "1"]


JUDGE = ["judge", "--judge", "rule:distinct"]
JUDGED = ["Why reef early?", "What does a boom vang do?", "How is a chart read?"]
def ANSWERS(who: str, n: int = 3) -> str:
    "An answers file: the first `n` of JUDGED, each with a response from `who`."
    return jl(*({"prompt": q, "response": f"{who} says: it depends."} for q in JUDGED[:n]))


def _pickled_model(d):
    "A copy of tiny-bert whose weights are a pickle (pytorch_model.bin) instead of safetensors."
    from transformers import AutoModelForSequenceClassification
    src = preset_path("tiny-bert")
    shutil.copytree(src, d, ignore=shutil.ignore_patterns("*.safetensors"))
    torch.save(AutoModelForSequenceClassification.from_pretrained(src, num_labels=2).state_dict(), d / "pytorch_model.bin")


def _template(d, template):
    "A copy of tiny-llama with its chat template replaced (None: removed)."
    shutil.copytree(preset_path("tiny-llama"), d)
    (d / "chat_template.jinja").unlink()
    cfg = json.loads((d / "tokenizer_config.json").read_text())
    cfg.pop("chat_template", None)
    if template: (d / "chat_template.jinja").write_text(template)
    (d / "tokenizer_config.json").write_text(json.dumps(cfg))


def _broken_config(d, preset):
    "A copy of `preset` whose config.json is cut off mid-file, as an interrupted copy leaves it."
    shutil.copytree(preset_path(preset), d)
    (d / "config.json").write_text((d / "config.json").read_text()[:40])


NO_MARKERS = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{{ eos_token }}{% endfor %}"
              "{% if add_generation_prompt %}<|assistant|>{% endif %}")

CLS = ["classify", "--model", "tiny-bert", "--epochs", "1"]
SFT = ["sft", "--model", "tiny-llama", "--max-steps", "2"]
MLM = ["pretrain", "--objective", "mlm", "--model", "tiny-bert", "--max-steps", "2", "--block-size", "16"]
CLM = ["pretrain", "--objective", "clm", "--model", "tiny-llama", "--max-steps", "2", "--block-size", "16"]

# id: (argv with {name} for files in the case's folder, {name: content (str or bytes)}, substrings the message must hold)
CASES = {
    # classify: labelled text in JSONL, CSV or TSV
    "jsonl-malformed-line": (CLS + ["--train", "{tr.jsonl}", "--eval", "{ev.jsonl}"],
        {"tr.jsonl": GOOD_CLS + '{"text": "fine", "label": \n', "ev.jsonl": EV_CLS}, ["tr.jsonl", "line 19", "not valid JSON"]),
    "missing-label": (CLS + ["--train", "{tr.jsonl}", "--eval", "{ev.jsonl}"],
        {"tr.jsonl": GOOD_CLS + jl({"text": "no label here"}), "ev.jsonl": EV_CLS}, ["tr.jsonl", "line 19", "field 'label'", "missing"]),
    "misspelled-label-field": (CLS + ["--train", "{tr.jsonl}", "--eval", "{ev.jsonl}", "--label-field", "lable"],
        {"tr.jsonl": GOOD_CLS, "ev.jsonl": EV_CLS}, ["tr.jsonl", "line 1", "field 'lable'", "--label-field"]),
    "label-wrong-type": (CLS + ["--train", "{tr.jsonl}", "--eval", "{ev.jsonl}"],
        {"tr.jsonl": GOOD_CLS + jl({"text": "a list label", "label": [1]}), "ev.jsonl": EV_CLS}, ["tr.jsonl", "line 19", "field 'label'"]),
    "text-wrong-type": (CLS + ["--train", "{tr.jsonl}", "--eval", "{ev.jsonl}"],
        {"tr.jsonl": jl({"text": 42, "label": 1}) + GOOD_CLS, "ev.jsonl": EV_CLS}, ["tr.jsonl", "line 1", "field 'text'"]),
    "empty-text": (CLS + ["--train", "{tr.jsonl}", "--eval", "{ev.jsonl}"],
        {"tr.jsonl": GOOD_CLS + jl({"text": "   ", "label": 1}), "ev.jsonl": EV_CLS}, ["tr.jsonl", "line 19", "field 'text'", "empty"]),
    "eval-label-outside-set": (CLS + ["--train", "{tr.jsonl}", "--eval", "{ev.jsonl}"],
        {"tr.jsonl": GOOD_CLS, "ev.jsonl": jl({"text": "fine", "label": 1}, {"text": "meh", "label": 7})},
        ["ev.jsonl", "line 2", "field 'label'", "does not occur"]),
    "mixed-label-types": (CLS + ["--train", "{tr.jsonl}", "--eval", "{ev.jsonl}"],
        {"tr.jsonl": GOOD_CLS + jl({"text": "stringly", "label": "pos"}), "ev.jsonl": EV_CLS}, ["tr.jsonl", "line 19", "field 'label'"]),
    "single-label": (CLS + ["--train", "{tr.jsonl}", "--eval", "{ev.jsonl}"],
        {"tr.jsonl": jl(*({"text": t, "label": 1} for t, _ in REVIEWS)), "ev.jsonl": EV_CLS}, ["tr.jsonl", "field 'label'", "single label"]),
    "non-utf8": (CLS + ["--train", "{tr.jsonl}", "--eval", "{ev.jsonl}"],
        {"tr.jsonl": GOOD_CLS.encode() + b'{"text": "caf\xe9", "label": 1}\n', "ev.jsonl": EV_CLS}, ["tr.jsonl", "line 19", "UTF-8"]),
    "json-named-csv": (CLS + ["--train", "{tr.csv}", "--eval", "{ev.jsonl}"],
        {"tr.csv": GOOD_CLS, "ev.jsonl": EV_CLS}, ["tr.csv", "line 1", "JSON", ".jsonl"]),
    "csv-named-jsonl": (CLS + ["--train", "{tr.jsonl}", "--eval", "{ev.jsonl}"],
        {"tr.jsonl": "text,label\ngood,1\nbad,0\n", "ev.jsonl": EV_CLS}, ["tr.jsonl", "line 1", ".csv"]),
    "ragged-csv": (CLS + ["--train", "{tr.csv}", "--eval", "{ev.jsonl}"],
        {"tr.csv": "text,label\ngood,1\nbad,0,surplus\n", "ev.jsonl": EV_CLS}, ["tr.csv", "line 3", "columns"]),
    "missing-text-column": (CLS + ["--train", "{tr.csv}", "--eval", "{ev.jsonl}"],
        {"tr.csv": "review,label\ngood,1\nbad,0\n", "ev.jsonl": EV_CLS}, ["tr.csv", "line 2", "field 'text'", "--text-field"]),
    "unsupported-extension": (CLS + ["--train", "{tr.xlsx}", "--eval", "{ev.jsonl}"],
        {"tr.xlsx": b"PK\x03\x04", "ev.jsonl": EV_CLS}, ["tr.xlsx", "unsupported extension", ".jsonl"]),
    "empty-file": (CLS + ["--train", "{tr.jsonl}", "--eval", "{ev.jsonl}"],
        {"tr.jsonl": "", "ev.jsonl": EV_CLS}, ["tr.jsonl", "is empty"]),
    "json-array-line": (CLS + ["--train", "{tr.jsonl}", "--eval", "{ev.jsonl}"],
        {"tr.jsonl": GOOD_CLS + "[1, 2]\n", "ev.jsonl": EV_CLS}, ["tr.jsonl", "line 19", "JSON object"]),
    "missing-file": (CLS + ["--train", "{nothere.jsonl}", "--eval", "{ev.jsonl}"],
        {"ev.jsonl": EV_CLS}, ["nothere.jsonl", "no such file"]),
    "model-unreachable-offline": (CLS + ["--train", "{tr.jsonl}", "--eval", "{ev.jsonl}", "--model", "someone/not-a-cached-model"],
        {"tr.jsonl": GOOD_CLS, "ev.jsonl": EV_CLS}, ["someone/not-a-cached-model", "offline", "preset"]),
    "lora-target-missing": (CLS + ["--train", "{tr.jsonl}", "--eval", "{ev.jsonl}", "--lora", "--lora-targets", "q_proj"],
        {"tr.jsonl": GOOD_CLS, "ev.jsonl": EV_CLS}, ["'q_proj' is not a linear layer", "query", "--lora-targets"]),
    "pickled-weights": (CLS + ["--train", "{tr.jsonl}", "--eval", "{ev.jsonl}", "--model", "{pickled/}"],
        {"tr.jsonl": GOOD_CLS, "ev.jsonl": EV_CLS, "pickled/": _pickled_model}, ["pickled", "pickled files", "--allow-pickle"]),
    # sft: messages, prompt/completion, instruction/input/output
    "no-assistant-turn": (SFT + ["--train", "{tr.jsonl}", "--eval", "{ev.jsonl}"],
        {"tr.jsonl": GOOD_SFT + jl({"messages": [{"role": "user", "content": "hello?"}]}), "ev.jsonl": EV_SFT},
        ["tr.jsonl", "line 13", "field 'messages'", "no assistant turn"]),
    "unknown-role": (SFT + ["--train", "{tr.jsonl}", "--eval", "{ev.jsonl}"],
        {"tr.jsonl": jl({"messages": [{"role": "user", "content": "hi"}, {"role": "bot", "content": "yo"}]}) + GOOD_SFT,
         "ev.jsonl": EV_SFT}, ["tr.jsonl", "line 1", "field 'messages[1].role'", "'bot'"]),
    "empty-content": (SFT + ["--train", "{tr.jsonl}", "--eval", "{ev.jsonl}"],
        {"tr.jsonl": GOOD_SFT + jl({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": ""}]}),
         "ev.jsonl": EV_SFT}, ["tr.jsonl", "line 13", "field 'messages[1].content'"]),
    "messages-not-a-list": (SFT + ["--train", "{tr.jsonl}", "--eval", "{ev.jsonl}"],
        {"tr.jsonl": jl({"messages": "user: hi, assistant: yo"}) + GOOD_SFT, "ev.jsonl": EV_SFT},
        ["tr.jsonl", "line 1", "field 'messages'", "list"]),
    "empty-completion": (SFT + ["--train", "{tr.jsonl}", "--eval", "{ev.jsonl}"],
        {"tr.jsonl": jl({"prompt": "Say hi.", "completion": "Hi."}, {"prompt": "Say bye.", "completion": ""}), "ev.jsonl": EV_SFT},
        ["tr.jsonl", "line 2", "field 'completion'", "empty"]),
    "alpaca-missing-output": (SFT + ["--train", "{tr.jsonl}", "--eval", "{ev.jsonl}"],
        {"tr.jsonl": jl({"instruction": "Add.", "input": "2 and 3", "output": "5"}, {"instruction": "Add.", "input": "1 and 1"}),
         "ev.jsonl": EV_SFT}, ["tr.jsonl", "line 2", "field 'output'", "missing"]),
    "text-records-for-sft": (SFT + ["--train", "{tr.jsonl}", "--eval", "{ev.jsonl}"],
        {"tr.jsonl": jl({"text": "plain text, no conversation"}), "ev.jsonl": EV_SFT}, ["tr.jsonl", "line 1", "'text' records"]),
    "answers-truncated-away": (SFT + ["--train", "{tr.jsonl}", "--eval", "{ev.jsonl}", "--max-length", "12"],
        {"tr.jsonl": jl(*({"prompt": f"Please read all of this long question {i} " * 4, "completion": "ok"} for i in range(4))),
         "ev.jsonl": EV_SFT}, ["tr.jsonl", "field 'messages'", "--max-length"]),
    "no-chat-template": (SFT + ["--train", "{tr.jsonl}", "--eval", "{ev.jsonl}", "--model", "{notemplate/}"],
        {"tr.jsonl": GOOD_SFT, "ev.jsonl": EV_SFT, "notemplate/": lambda d: _template(d, None)}, ["notemplate", "no chat template", "Fix:"]),
    "template-without-markers": (SFT + ["--train", "{tr.jsonl}", "--eval", "{ev.jsonl}", "--model", "{nomarkers/}"],
        {"tr.jsonl": GOOD_SFT, "ev.jsonl": EV_SFT, "nomarkers/": lambda d: _template(d, NO_MARKERS)},
        ["nomarkers", "{% generation %}", "Fix:"]),
    "sft-lora-target-missing": (SFT + ["--train", "{tr.jsonl}", "--eval", "{ev.jsonl}", "--lora", "--lora-targets", "query,value"],
        {"tr.jsonl": GOOD_SFT, "ev.jsonl": EV_SFT}, ["'query', 'value' is not a linear layer", "q_proj"]),
    # pretrain: plain text, one document per line, or JSONL with a text field
    "pretrain-empty": (MLM + ["--train", "{d.txt}"], {"d.txt": "\n \n"}, ["d.txt", "is empty"]),
    "pretrain-binary": (MLM + ["--train", "{d.txt}"], {"d.txt": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00"}, ["d.txt", "UTF-8"]),
    "pretrain-nul-bytes": (CLM + ["--train", "{d.txt}"], {"d.txt": SAILING + "\nabc\x00def\n"}, ["d.txt", "text", "NUL"]),
    "pretrain-no-text-field": (CLM + ["--train", "{d.jsonl}"], {"d.jsonl": jl(*({"body": s} for s in SAILING.split("\n")))},
        ["d.jsonl", "line 1", "matches no format", "text (text)"]),
    "pretrain-mlm-on-decoder": (MLM[:4] + ["tiny-llama"] + MLM[5:] + ["--train", "{d.txt}"], {"d.txt": SAILING},
        ["tiny-llama", "is a decoder", "needs an encoder", "'minilm-l6'"]),
    "pretrain-clm-on-encoder": (CLM[:4] + ["tiny-bert"] + CLM[5:] + ["--train", "{d.txt}"], {"d.txt": SAILING},
        ["tiny-bert", "is an encoder", "needs a decoder"]),
    "pretrain-too-few-tokens": (MLM + ["--train", "{d.txt}", "--block-size", "512"], {"d.txt": "\n".join(phrases(40, 3, seed=5))},
        ["d.txt", "field 'text'", "block"]),
    # reward: preference pairs (and their ratings, for --mode regression)
    "reward-identical-sides": (REWARD + ["--train", "{tr.jsonl}", "--eval", "{ev.jsonl}"],
        {"tr.jsonl": GOOD_PAIRS + PAIR("Tea?", "Yes please.", "Yes please."), "ev.jsonl": GOOD_PAIRS},
        ["tr.jsonl", "line 7", "field 'rejected'", "identical"]),
    "reward-empty-side": (REWARD + ["--train", "{tr.jsonl}", "--eval", "{ev.jsonl}"],
        {"tr.jsonl": GOOD_PAIRS, "ev.jsonl": GOOD_PAIRS + PAIR("Tea?", "", "No.")}, ["ev.jsonl", "line 7", "field 'chosen'"]),
    "reward-rating-out-of-range": (REWARD + ["--train", "{tr.jsonl}", "--eval", "{tr.jsonl}", "--mode", "regression"],
        {"tr.jsonl": jl(*({**json.loads(l), "chosen_rating": 8, "rejected_rating": 3 if i != 2 else 0}
                          for i, l in enumerate(GOOD_PAIRS.splitlines())))},
        ["tr.jsonl", "line 3", "field 'rejected_rating'", "is 0, outside the rating range", "--rating-range"]),
    "reward-rating-named-by-line-before-the-split": (REWARD + ["--train", "{tr.jsonl}", "--mode", "regression"],
        {"tr.jsonl": jl(*({**json.loads(l), "chosen_rating": 8, "rejected_rating": 3 if i != 2 else 11}
                          for i, l in enumerate(MANY_PAIRS.splitlines())))},
        ["tr.jsonl", "line 3", "field 'rejected_rating'", "is 11, outside the rating range"]),  # it used to count pairs within the split
    "reward-wrong-fields": (REWARD + ["--train", "{tr.jsonl}"],
        {"tr.jsonl": jl(*({"question": f"Q{i}?", "good": "Yes.", "bad": "No."} for i in range(6)))},
        ["tr.jsonl", "line 1", "field 'prompt'", "prompt, chosen, rejected", "fields found: bad, good, question"]),
    "reward-regression-without-ratings": (REWARD + ["--train", "{tr.jsonl}", "--eval", "{tr.jsonl}", "--mode", "regression"],
        {"tr.jsonl": GOOD_PAIRS}, ["tr.jsonl", "chosen_rating", "--mode pairwise"]),
    "reward-rated-file-not-pairs": (REWARD + ["--train", "{tr.jsonl}"],
        {"tr.jsonl": jl(*({"prompt": f"Q{i}?", "response": "A.", "rating": 7} for i in range(6)))},
        ["tr.jsonl", "line 1", "'rated' records", "'preference'"]),
    # model families and broken model folders: refused before anything loads
    "sft-encoder-model": (["sft", "--model", "tiny-bert", "--max-steps", "1", "--train", "{tr.jsonl}", "--eval", "{ev.jsonl}"],
        {"tr.jsonl": GOOD_SFT, "ev.jsonl": jl(*(CONV(f"Name a fruit, number {i}.", f"A pear, number {i}.") for i in range(4)))},
        ["tiny-bert", "is an encoder", "needs a decoder", "'smollm2-135m-instruct'"]),
    "dpo-encoder-model": (["dpo", "--model", "tiny-bert", "--max-steps", "1", "--train", "{tr.jsonl}"], {"tr.jsonl": MANY_PAIRS},
        ["tiny-bert", "is an encoder", "needs a decoder"]),
    "rlhf-encoder-policy": (["rlhf", "--policy", "tiny-bert", "--reward", "rule:brevity", "--max-steps", "1", "--prompts", "{p.txt}"],
        {"p.txt": PROMPTS}, ["tiny-bert", "is an encoder", "needs a decoder"]),
    "rlhf-broken-reward-config": (["rlhf", "--policy", "tiny-llama", "--reward", "{rm/}", "--max-steps", "1", "--prompts", "{p.txt}"],
        {"rm/": lambda d: _broken_config(d, "tiny-bert"), "p.txt": PROMPTS},
        ["config.json", "is not a valid JSON object", "save the model again"]),
    "dpo-broken-model-config": (["dpo", "--model", "{m/}", "--max-steps", "1", "--train", "{tr.jsonl}"],
        {"m/": lambda d: _broken_config(d, "tiny-llama"), "tr.jsonl": MANY_PAIRS}, ["config.json", "is not a valid JSON object"]),
    # every training verb checks its evaluation data against its training data before a model loads
    "classify-eval-is-train": (CLS + ["--train", "{tr.jsonl}", "--eval", "{tr.jsonl}"], {"tr.jsonl": GOOD_CLS},
        ["tr.jsonl", "18 of its 18 examples (100.0%) overlap", "record 1, the same text as training record 1", "--allow-overlap"]),
    "classify-eval-reformatted-copies": (CLS + ["--train", "{tr.jsonl}", "--eval", "{ev.jsonl}"],
        {"tr.jsonl": GOOD_CLS, "ev.jsonl": EV_CLS + jl({"text": "GREAT value -- works well!!", "label": 1})},
        ["ev.jsonl", "1 of its 3 examples", "record 3, the same text as training record 1", "ftbook leakage"]),
    "sft-eval-is-train": (SFT + ["--train", "{tr.jsonl}", "--eval", "{tr.jsonl}"], {"tr.jsonl": GOOD_SFT},
        ["tr.jsonl", "12 of its 12 examples", "--allow-overlap"]),
    "sft-eval-asks-a-training-prompt": (SFT + ["--train", "{tr.jsonl}", "--eval", "{ev.jsonl}"],
        {"tr.jsonl": GOOD_SFT, "ev.jsonl": EV_SFT + jl(CONV("Name a colour, number 3.", "Green, I would say."))},
        ["ev.jsonl", "1 of its 3 examples", "the same prompt as training record 4"]),
    "pretrain-eval-is-train": (CLM + ["--train", "{d.txt}", "--eval", "{d.txt}"], {"d.txt": SAILING}, ["d.txt", "40 of its 40 examples"]),
    "reward-eval-is-train": (REWARD + ["--train", "{tr.jsonl}", "--eval", "{tr.jsonl}"], {"tr.jsonl": GOOD_PAIRS},
        ["tr.jsonl", "6 of its 6 examples", "--allow-overlap"]),
    "dpo-eval-is-train": (["dpo", "--model", "tiny-llama", "--max-steps", "1", "--train", "{tr.jsonl}", "--eval", "{tr.jsonl}"],
        {"tr.jsonl": MANY_PAIRS}, ["tr.jsonl", "24 of its 24 examples", "--allow-overlap"]),
    "rlhf-eval-prompts-are-prompts": (["rlhf", "--policy", "tiny-llama", "--reward", "rule:brevity", "--max-steps", "1",
                                       "--prompts", "{p.txt}", "--eval-prompts", "{p.txt}"],
        {"p.txt": PROMPTS}, ["p.txt", "12 of its 12 examples"]),
    "rlhf-correct-without-answer": (["rlhf", "--policy", "tiny-llama", "--reward", "rule:correct", "--max-steps", "1", "--prompts", "{qa.jsonl}"],
        {"qa.jsonl": jl(*({"prompt": q, "answer": "yes"} for q in JUDGED), {"prompt": "Is the mast stepped?"})},
        ["qa.jsonl", "line 4", "field 'answer'", "rule:correct"]),
    "rlhf-correct-eval-without-answer": (["rlhf", "--policy", "tiny-llama", "--reward", "rule:correct", "--max-steps", "1",
                                          "--prompts", "{qa.jsonl}", "--eval-prompts", "{ev.jsonl}"],
        {"qa.jsonl": jl(*({"prompt": q, "answer": "yes"} for q in JUDGED)), "ev.jsonl": jl({"prompt": "Is the mast stepped?", "aliases": ["no"]})},
        ["ev.jsonl", "line 1", "field 'answer'"]),
    "compare-eval-is-train": (["compare", "--task", "classify", "--model", "tiny-bert", "--max-steps", "1", "--train", "{tr.jsonl}",
                               "--eval", "{tr.jsonl}"], {"tr.jsonl": GOOD_CLS}, ["tr.jsonl", "18 of its 18 examples", "--allow-overlap"]),
    # judge: answers files, prompts, the judge and the two sides are all checked before a model loads or a file is written
    "judge-answer-without-response": (JUDGE + ["--baseline", "{a.jsonl}", "--candidate", "{b.jsonl}"],
        {"a.jsonl": ANSWERS("A") + jl({"prompt": "One more?"}), "b.jsonl": ANSWERS("B")}, ["a.jsonl", "line 4", "field 'response'", "is missing"]),
    "judge-answers-miss-a-prompt": (JUDGE + ["--baseline", "{a.jsonl}", "--candidate", "{b.jsonl}"],
        {"a.jsonl": ANSWERS("A"), "b.jsonl": ANSWERS("B", 2)}, ["b.jsonl", "field 'prompt'", "no answer to prompt 3", "answer every prompt"]),
    "judge-answers-repeat-a-prompt": (JUDGE + ["--baseline", "{a.jsonl}", "--candidate", "{b.jsonl}"],
        {"a.jsonl": ANSWERS("A") + ANSWERS("A", 1), "b.jsonl": ANSWERS("B")}, ["a.jsonl", "line 4", "repeats the prompt of line 1"]),
    "judge-no-such-rule": (["judge", "--judge", "rule:kind", "--baseline", "{a.jsonl}", "--candidate", "{b.jsonl}"],
        {"a.jsonl": ANSWERS("A"), "b.jsonl": ANSWERS("B")}, ["rule:kind", "no such rule", "rule:correct", "rule:distinct"]),
    "judge-correct-needs-answers": (["judge", "--judge", "rule:correct", "--baseline", "{a.jsonl}", "--candidate", "{b.jsonl}",
                                     "--prompts", "{q.jsonl}"],
        {"a.jsonl": ANSWERS("A"), "b.jsonl": ANSWERS("B"), "q.jsonl": jl(*({"prompt": q} for q in JUDGED))},
        ["q.jsonl", "line 1", "field 'answer'", "choose another --judge"]),
    "judge-baseline-is-an-encoder": (JUDGE + ["--baseline", "tiny-bert", "--candidate", "{b.jsonl}"],
        {"b.jsonl": ANSWERS("B")}, ["tiny-bert", "is an encoder", "needs a decoder"]),
    "judge-prompts-repeat": (JUDGE + ["--baseline", "{a.jsonl}", "--candidate", "{b.jsonl}", "--prompts", "{q.txt}"],
        {"a.jsonl": ANSWERS("A"), "b.jsonl": ANSWERS("B"), "q.txt": "".join(f"{q}\n" for q in JUDGED) + "why REEF early\n"},
        ["q.txt", "line 4", "repeats the prompt of line 1"]),
    "judge-files-answer-different-prompts": (JUDGE + ["--baseline", "{a.jsonl}", "--candidate", "{b.jsonl}"],
        {"a.jsonl": ANSWERS("A", 2), "b.jsonl": ANSWERS("B")}, ["b.jsonl", "line 3", "answers a prompt the other file does not"]),
    "judge-two-models-no-prompts": (JUDGE + ["--baseline", "tiny-llama", "--candidate", "tiny-llama"], {}, ["--prompts"]),
    # leakage: any format, preference pairs included
    "chosen-equals-rejected": (["leakage", "{tr.jsonl}", "{ev.jsonl}"],
        {"tr.jsonl": PAIR("Be kind?", "Yes, always.", "No.") + PAIR("Tea?", "Yes please.", "Yes please."),
         "ev.jsonl": PAIR("Coffee?", "Sure.", "Never.")}, ["tr.jsonl", "line 2", "field 'rejected'", "identical"]),
    "leakage-threshold-out-of-range": (["leakage", "{tr.jsonl}", "{ev.jsonl}", "--threshold", "1.5"],
        {"tr.jsonl": GOOD_CLS, "ev.jsonl": GOOD_CLS}, ["--threshold", "(0, 1]"]),
    "leakage-malformed-eval": (["leakage", "{tr.jsonl}", "{ev.jsonl}"],
        {"tr.jsonl": GOOD_CLS, "ev.jsonl": GOOD_CLS + "{oops\n"}, ["ev.jsonl", "line 19", "not valid JSON"]),
}


def _materialise(d, argv, files):
    "Write the case's files into `d`; return argv with each {name} replaced by that file's path."
    for name, content in files.items():
        if callable(content): content(d / name.rstrip("/"))
        elif isinstance(content, bytes): (d / name).write_bytes(content)
        else: (d / name).write_text(content)
    return [str(d / a[1:-1].rstrip("/")) if a.startswith("{") and a.endswith("}") else a for a in argv]


def _snapshot(d):
    return sorted(str(p.relative_to(d)) for p in d.rglob("*"))


def test_catalogue_is_big_enough():
    assert len(CASES) >= 25


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_refused_before_anything_is_written(tmp_path, capsys, case):
    argv, files, expect = CASES[case]
    argv = _materialise(tmp_path, argv, files)
    before = _snapshot(tmp_path)
    code = main([*argv, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2, f"exit {code}; stderr:\n{err[-3000:]}"
    assert "Traceback" not in err
    missing = [s for s in expect if s not in err]
    assert not missing, f"the message lacks {missing}:\n{err}"
    assert _snapshot(tmp_path) == before, "the command wrote files before refusing its input"


@pytest.mark.parametrize("rec,words", [({"prompt": "   ", "response": "Hello."}, "field 'prompt': missing or empty"),
                                       ({"prompt": "Hi", "response": 7}, "field 'response': is not text"),
                                       ({"prompt": "Hi"}, "field 'response': missing or empty")])
def test_score_names_the_bad_record(tmp_path, capsys, rec, words):
    (tmp_path / "in.jsonl").write_text(jl({"prompt": "Hi", "response": "Hello."}, rec))
    assert main(["score", "--model", "tiny-bert", "--input", str(tmp_path / "in.jsonl"), "--output", str(tmp_path / "s.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "line 2" in err and words in err and "Traceback" not in err, err
    assert not (tmp_path / "s.jsonl").exists()
