"""A Jupyter-first book and library for fine-tuning pretrained transformers, from a 2-core CPU to an H100

Modules:

- `ftbook.metric_modules.perplexity.perplexity`: Perplexity from per-text negative log-likelihoods. Shipped with ftbook so that it loads offline."""

__version__ = "0.1.0"
