"""A Jupyter-first book and library for fine-tuning pretrained transformers: every chapter runs on a 2-core CPU

Modules:

- `ftbook.lora`: Train every weight, or a low-rank update beside frozen ones: LoRA written out and checked against PEFT's, exact parameter counts, and one comparison of full fine-tuning, LoRA ranks and targets (and QLoRA on a GPU) on your data, with the round trip that proves a saved adapter still gives the model you trained.
- `ftbook.metric_modules.perplexity.perplexity`: Perplexity from per-text negative log-likelihoods. Shipped with ftbook so that it loads offline.
- `ftbook.recorded.bench_classify`: `ftbook classify` with its default settings against a plain `transformers.Trainer`, side by side in one process.
- `ftbook.recorded.bench_leakage`: Benchmark `ftbook.leakage.leakage_report` on 100,000 training x 10,000 evaluation short texts, beside two baselines.
- `ftbook.recorded.exp_dpo_smollm2`: DPO of SmolLM2-135M-Instruct on the shipped preference pairs, full and LoRA, against the chapter-07 PPO run on the same data, starting policy and budget.
- `ftbook.recorded.exp_forgetting`: Forgetting, measured without confounds: full fine-tuning, LoRA and replay at matched settings, over seeds.
- `ftbook.recorded.exp_lora_lr`: Full fine-tuning against LoRA, each at its own best learning rate: a sweep on MiniLM and the shipped reviews.
- `ftbook.recorded.exp_mlm_head`: Can any masked-LM head on the frozen MiniLM encoder fill masks better than a unigram guess, given all the English text that ships offline? A longer warm-up than chapter 4 can afford on a CPU.
- `ftbook.recorded.exp_onpolicy_dpo`: DPO of SmolLM2-135M-Instruct on pairs made from its own answers (on-policy), ranked by a verifiable rule.
- `ftbook.recorded.exp_reward_smollm2`: SmolLM2-135M-Instruct as a pairwise reward model on the shipped twin preferences, beside MiniLM trained the same way.
- `ftbook.recorded.exp_rlhf_facts`: RLHF of SmolLM2-135M-Instruct with a verifiable reward: ftbook's PPO and TRL's GRPO, rewarded by a fact check.
- `ftbook.recorded.exp_rlhf_smollm2`: RLHF on SmolLM2-135M-Instruct against the chapter-06 reward model: ftbook's PPO, PPO without its KL penalty, and TRL's RLOO and GRPO, on the same prompts, updates and responses per update.
- `ftbook.recorded.gpu_check`: The GPU check: what the book's `#| gpu` cells plan, measured on a card, in one JSON."""

__version__ = "0.1.0"
