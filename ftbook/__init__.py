"""A Jupyter-first book and library for fine-tuning pretrained transformers, from a 2-core CPU to an H100

Modules:

- `ftbook.lora`: Train every weight, or a low-rank update beside frozen ones: LoRA written out and checked against PEFT's, exact parameter counts, and one comparison of full fine-tuning, LoRA ranks and targets (and QLoRA on a GPU) on your data, with the round trip that proves a saved adapter still gives the model you trained.
- `ftbook.metric_modules.perplexity.perplexity`: Perplexity from per-text negative log-likelihoods. Shipped with ftbook so that it loads offline."""

__version__ = "0.1.0"
