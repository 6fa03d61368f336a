"""RLHF: PPO's pieces against values computed by hand, a PPO run that learns a rule, the health monitor's alarms on runs
built to trigger them and its silence on a healthy one, exact resume, TRL's trainers, and malformed prompt files."""
import json

import numpy as np
import pytest
import torch

from ftbook.config import ConfigError, DataError
from ftbook.models import load_tokenizer
from ftbook.rlhf import (_words, AdaptiveKLController, HealthMonitor, RLHFConfig, brevity, distinct_words, gae, kl_per_token,
                         load_policy, load_prompts, policy_loss, reward_from, reward_model_fn, shaped_rewards, train_rlhf,
                         value_loss, whiten)
from conftest import run_cli

PROMPTS = [f"Tell me about {w}." for w in "the sea,the wind,a boat,the tide,a sail,the moon,a star,the rain,a fish,the shore,a reef,the storm".split(",")]
HELD_OUT = [f"What is {w}?" for w in "a wave,the sun,a rope,the mast,a gull,the deck,a knot,the hull".split(",")]


def _gae_loop(r, v, gamma, lam):
    "GAE for one unpadded response, written from its definition: A_t = sum_k (gamma*lam)^k delta_(t+k)."
    T = len(r)
    delta = [r[t] + gamma * (v[t + 1] if t + 1 < T else 0.0) - v[t] for t in range(T)]
    return [sum((gamma * lam) ** k * delta[t + k] for k in range(T - t)) for t in range(T)]


def test_gae_matches_its_definition_and_ignores_padding():
    rng = np.random.default_rng(0)
    r, v = rng.normal(size=(3, 6)), rng.normal(size=(3, 6))
    lengths = [6, 4, 1]
    mask = torch.tensor([[1.0] * n + [0.0] * (6 - n) for n in lengths])
    adv, ret = gae(torch.tensor(r), torch.tensor(v), mask.double(), gamma=0.9, lam=0.8)
    for b, n in enumerate(lengths):
        want = _gae_loop(r[b, :n], v[b, :n], 0.9, 0.8)
        np.testing.assert_allclose(adv[b, :n].numpy(), want, atol=1e-10)
        np.testing.assert_allclose(ret[b, :n].numpy(), np.array(want) + v[b, :n], atol=1e-10)
        assert (adv[b, n:] == 0).all() and (ret[b, n:] == 0).all()
    adv1, ret1 = gae(torch.tensor([[0.0, 0.0, 1.0]]), torch.tensor([[0.5, 0.25, 0.5]]), torch.ones(1, 3), 1.0, 1.0)
    np.testing.assert_allclose(ret1.numpy(), [[1.0, 1.0, 1.0]])  # lambda = gamma = 1: returns are the reward to come


def test_clipped_policy_loss_by_hand():
    new = torch.log(torch.tensor([[1.5, 0.5, 1.1, 0.5]]))
    loss, clipfrac = policy_loss(new, torch.zeros(1, 4), torch.tensor([[1.0, 1.0, -1.0, -1.0]]), torch.ones(1, 4), clip=0.2)
    assert loss.item() == pytest.approx((-1.2 - 0.5 + 1.1 + 0.8) / 4)
    assert clipfrac.item() == pytest.approx(0.5)
    masked, _ = policy_loss(new, torch.zeros(1, 4), torch.tensor([[1.0, 1.0, -1.0, -1.0]]), torch.tensor([[1, 1, 0, 0]]))
    assert masked.item() == pytest.approx((-1.2 - 0.5) / 2)  # padded tokens count for nothing


def test_clipped_value_loss_by_hand():
    vl = value_loss(torch.tensor([[2.0, 0.0, 1.0]]), torch.tensor([[1.0, 0.0, 1.0]]), torch.tensor([[3.0, 0.5, 0.0]]),
                    torch.ones(1, 3), clip=0.2)
    # token 0: unclipped (2-3)^2 = 1, clipped to 1.2: (1.2-3)^2 = 3.24 -> 3.24; token 1: 0.25; token 2: 1
    assert vl.item() == pytest.approx(0.5 * (3.24 + 0.25 + 1.0) / 3)


def test_kl_estimates_by_hand_and_unbiased():
    p, q = torch.log(torch.tensor([0.5, 0.8])), torch.log(torch.tensor([0.25, 0.8]))
    np.testing.assert_allclose(kl_per_token(p, q).numpy(), [np.log(2), 0.0], atol=1e-6)
    np.testing.assert_allclose(kl_per_token(p, q, "k3").numpy(), [0.5 - 1 + np.log(2), 0.0], atol=1e-6)
    pi, ref = torch.tensor([0.6, 0.3, 0.1]), torch.tensor([0.3, 0.4, 0.3])
    y = torch.multinomial(pi, 100_000, replacement=True, generator=torch.Generator().manual_seed(1))
    true = float((pi * (pi / ref).log()).sum())
    for kind in ("k1", "k3"):
        assert kl_per_token(pi.log()[y], ref.log()[y], kind).mean().item() == pytest.approx(true, abs=0.01)
    with pytest.raises(ValueError): kl_per_token(p, q, "k2")


def test_shaped_rewards_put_the_score_on_the_last_token():
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    lp, lq = torch.tensor([[-1.0, -2.0, -0.5], [-1.0, -1.0, -9.0]]), torch.tensor([[-1.5, -2.0, -0.5], [-0.5, -1.0, -9.0]])
    r = shaped_rewards(torch.tensor([2.0, -1.0]), lp, lq, mask, kl_coef=0.1)
    np.testing.assert_allclose(r.numpy(), [[-0.05, 0.0, 2.0], [0.05, -1.0, 0.0]], atol=1e-6)


def test_adaptive_kl_controller_by_hand():
    c = AdaptiveKLController(0.1, target=6.0, horizon=100)
    assert c.update(9.0, 10) == pytest.approx(0.102)  # error clipped at +0.2, times 10/100
    assert c.update(6.6, 10) == pytest.approx(0.102 * 1.01)  # error 0.1
    assert c.update(0.0, 50) == pytest.approx(0.102 * 1.01 * 0.9)  # error clipped at -0.2, times 50/100
    assert AdaptiveKLController(0.1).update(100.0, 10) == 0.1


def test_whiten_has_zero_mean_unit_variance_on_the_mask():
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    w = whiten(torch.tensor([[1.0, 2.0, 3.0], [10.0, 50.0, 60.0]]), mask)
    vals = w[mask.bool()]
    assert vals.mean().item() == pytest.approx(0.0, abs=1e-6) and (vals ** 2).mean().item() == pytest.approx(1.0, abs=1e-4)
    assert (w[~mask.bool()] == 0).all()


def _toy(algo="ppo", kl_coef=0.0, learning_rate=1e-2, seed=0, steps=20, reward=brevity, monitor=None, judge=distinct_words, **kw):
    cfg = RLHFConfig(algo=algo, max_steps=steps, batch_size=8 if algo == "ppo" else 2, num_generations=4, max_new_tokens=16,
                     learning_rate=learning_rate, kl_coef=kl_coef, seed=seed, **kw)
    mon = monitor or HealthMonitor(verbose=False)
    res = train_rlhf(load_policy("tiny-llama", cfg), load_tokenizer("tiny-llama"), PROMPTS, HELD_OUT, reward, cfg,
                     judge_fn=judge, monitor=mon)
    return res, mon


def test_ppo_learns_a_rule_by_more_than_its_spread_over_seeds():
    gains = []
    for seed in range(3):  # no KL penalty and 40 updates: every seed finds short answers (with a penalty, some take longer)
        res, _ = _toy(kl_coef=0.0, seed=seed, steps=40)
        gains.append(res.metrics["reward_after"] - res.metrics["reward_before"])
    assert min(gains) > 0 and np.mean(gains) > np.std(gains, ddof=1), gains


def substance(prompts: list[str], responses: list[str]) -> np.ndarray:
    "A held-out judge that wants an answer with something in it: min(1, words / 8). `brevity` pays for the opposite."
    return np.array([min(1.0, len(_words(r)) / 8) for r in responses])


def test_monitor_catches_a_hacked_run():
    # No KL penalty and a high learning rate: the policy collapses onto answers of one word or none, which `brevity` pays
    # for and `substance` does not. (Judged by `distinct_words`, a one-word answer scores 1, as well as a varied one:
    # whether the alarm fired then depended on whether this machine's run reached one word or none.)
    res, mon = _toy(kl_coef=0.0, learning_rate=2e-2, steps=40, judge=substance)
    kinds = {a["kind"] for a in mon.alarms}
    assert {"reward_hacking", "entropy_collapse", "kl_runaway"} <= kinds, kinds  # (length too when the tokens it drops are words)
    assert res.metrics["reward_after"] > res.metrics["reward_before"] and res.metrics["alarms"] == len(mon.alarms)
    assert all(a["step"] >= 1 and "Fix:" in a["message"] for a in mon.alarms)


def test_monitor_is_silent_on_a_healthy_run():
    res, mon = _toy(kl_coef=0.5, steps=40)  # the hacked run above, with the penalty on
    assert mon.alarms == [], mon.alarms


def test_monitor_catches_zero_advantage_groups_in_grpo():
    res, mon = _toy(algo="grpo", kl_coef=0.0, steps=3, reward=lambda p, r: np.ones(len(r)))
    assert [a["kind"] for a in mon.alarms] == ["zero_advantage"]
    assert {"reward", "kl", "entropy", "mean_length", "judge"} <= set(res.history[0])  # fed from TRL's logs


def test_monitor_catches_negative_kl_and_is_quiet_on_noise():
    neg, calm = HealthMonitor(verbose=False), HealthMonitor(verbose=False)
    for s, kl in enumerate([0.0, -0.3, -0.2, -0.4], 1): neg.update({"step": s, "kl": kl})
    for s, kl in enumerate([0.0, -0.05, 0.1, -0.08, 0.02], 1): calm.update({"step": s, "kl": kl})
    assert [a["kind"] for a in neg.alarms] == ["kl_negative"] and calm.alarms == []


def test_monitor_catches_length_running_away_either_way():
    for lengths in ([20, 22, 30, 45], [20, 18, 11, 6]):
        m = HealthMonitor(verbose=False)
        for s, n in enumerate(lengths, 1): m.update({"step": s, "mean_length": n})
        assert [(a["kind"], a["step"]) for a in m.alarms] == [("length", 4)], lengths
    steady = HealthMonitor(verbose=False)
    for s, n in enumerate([20, 23, 18, 21, 24], 1): steady.update({"step": s, "mean_length": n})
    assert steady.alarms == []


def test_ppo_resumes_exactly(tmp_path):
    cfg = RLHFConfig(max_steps=4, batch_size=4, max_new_tokens=8, learning_rate=1e-2, save_steps=2, seed=3)
    tok = load_tokenizer("tiny-llama")
    straight = load_policy("tiny-llama", cfg)
    a = train_rlhf(straight, tok, PROMPTS, HELD_OUT[:4], brevity, cfg, output_dir=tmp_path / "a")
    assert (tmp_path / "a" / "checkpoint-2").is_dir()
    resumed = load_policy("tiny-llama", cfg)
    b = train_rlhf(resumed, tok, PROMPTS, HELD_OUT[:4], brevity, cfg, output_dir=tmp_path / "a", resume=True)
    assert b.metrics["resumed_from_step"] == 2 and a.metrics["resumed_from_step"] == 0
    for (n, p), q in zip(straight.named_parameters(), resumed.parameters()): assert torch.equal(p, q), n
    assert [h["reward"] for h in a.history] == [h["reward"] for h in b.history]
    assert a.metrics["reward_after"] == b.metrics["reward_after"]


def test_a_reward_model_with_another_tokenizer_scores_decoded_text():
    from ftbook.reward import load_reward_model, score
    rm, rtok = load_reward_model("tiny-bert"), load_tokenizer("tiny-bert")
    fn = reward_model_fn(rm, rtok)
    s = fn(["Why?", "How?"], ["Because.", "Like this."])
    np.testing.assert_allclose(s, score(rm, rtok, ["Why?", "How?"], ["Because.", "Like this."]))
    with pytest.raises(ConfigError, match="rule:distinct"): reward_from("rule:nice")


@pytest.mark.parametrize("name,text,where", [
    ("a.jsonl", '{"prompt": "ok"}\n{"question": "x"}\n', "line 2, field 'prompt'"),
    ("b.jsonl", '{"prompt": "ok"}\n{"prompt": 3}\n', "line 2, field 'prompt'"),
    ("c.csv", "prompt\nok\n\"  \"\n", "line 3, field 'prompt'"),
    ("d.jsonl", '{"messages": [{"role": "assistant", "content": "hi"}]}\n', "line 1, field 'messages'"),
    ("e.txt", "\n\n", "is empty"),
    ("f.docx", "hello", "unsupported extension"),
])
def test_malformed_prompt_files_name_file_line_and_field(tmp_path, name, text, where):
    (tmp_path / name).write_text(text)
    with pytest.raises(DataError, match=where): load_prompts(tmp_path / name)


def test_prompt_files_read_text_records_and_conversations(tmp_path):
    (tmp_path / "p.txt").write_text("One?\n\nTwo?\n")
    (tmp_path / "m.jsonl").write_text(json.dumps({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "Hi?"}]}) + "\n")
    assert load_prompts(tmp_path / "p.txt") == ["One?", "Two?"] and load_prompts(tmp_path / "m.jsonl") == ["Hi?"]


def test_cli_rlhf_rejects_bad_prompts_without_writing(tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"prompt": "fine"}\n{"text": 5}\n')
    r = run_cli("rlhf", "--policy", "tiny-llama", "--reward", "rule:brevity", "--prompts", tmp_path / "bad.jsonl", "--out", tmp_path / "out")
    assert r.returncode == 2 and "line 2" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()


def test_cli_rlhf_refuses_fewer_prompts_than_an_update_without_writing(tmp_path):
    "TRL's sampler drops an incomplete batch: with fewer training prompts than --batch-size, grpo would run no update."
    (tmp_path / "few.txt").write_text("".join(f"Prompt {i}?\n" for i in range(6)))  # 5 train, 1 held out
    r = run_cli("rlhf", "--algo", "grpo", "--policy", "tiny-llama", "--reward", "rule:brevity", "--prompts", tmp_path / "few.txt",
                "--batch-size", "8", "--out", tmp_path / "out")
    assert r.returncode == 2 and "Traceback" not in r.stderr and "fewer than one update's 8" in r.stderr, r.stderr
    assert "--batch-size 5" in r.stderr and not (tmp_path / "out").exists()


def test_cli_rlhf_holds_out_a_repeated_prompt_whole(tmp_path):
    """A prompt the file repeats stays on one side of the default split, so the overlap check finds nothing to refuse.
    With the split drawn over the file's lines, as before, copies of held-out prompts stayed in training."""
    prompts = ["Why does the tide turn?", "What is a boom vang for?", "When should I reef?", "How do I read a chart?",
               "Name the parts of a mast.", "Is a wooden hull hard to keep?", "What does a bilge pump do?", "Why tie a bowline?"]
    (tmp_path / "p.txt").write_text("".join(f"{p}\n" for p in prompts * 2))
    r = run_cli("rlhf", "--policy", "tiny-llama", "--reward", "rule:brevity", "--prompts", tmp_path / "p.txt", "--max-steps", "1",
                "--batch-size", "2", "--max-new-tokens", "4", "--out", tmp_path / "out")
    assert r.returncode == 0, r.stderr[-3000:]
    m = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert (m["overlap_share"], m["overlap_checked_train"], m["overlap_checked_eval"]) == (0.0, 14, 1)  # 8 distinct: 1 held out, 7 twice in training


def test_the_recorded_fact_check_experiment_runs_end_to_end(tmp_path):
    "exp_rlhf_facts's every code path (PPO and GRPO), on a tiny random model (EXP_SMOKE): the JSON chapter 7 reads, with its fields."
    import os
    import subprocess
    import sys
    out = tmp_path / "exp.json"
    r = subprocess.run([sys.executable, "-m", "ftbook.recorded.exp_rlhf_facts", "--json", str(out)], capture_output=True, text=True,
                       env={**os.environ, "EXP_SMOKE": "1"}, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(out.read_text())
    assert {"machine", "seconds", "data_sha256", "training_questions", "held_out_questions", "samples_per_question", "arms"} <= set(got)
    assert [a["arm"] for a in got["arms"]] == ["ppo", "grpo"]
    for a in got["arms"]:
        assert len(a["rows"]) == got["held_out_questions"] and len(a["history"]) == a["config"]["max_steps"]
        assert {"sampled_correct_before", "sampled_correct_after", "sampled_words_before", "sampled_words_after", "greedy_correct_before",
                "greedy_correct_after", "sample_before", "sample_after"} <= set(a["rows"][0])
        assert not set(got["training_questions"]) & {r["question"] for r in a["rows"]}  # held-out questions never trained on
