"""Perplexity from per-text negative log-likelihoods. Shipped with ftbook so that it loads offline.

Unlike the hub's `perplexity` module, which downloads a model by name, this one only aggregates: the caller scores the
texts with its own model (see `ftbook.metrics.token_nll`) and passes, per text, the summed negative log-likelihood
(natural log) of its predicted tokens and how many tokens were predicted.
"""

import math

import datasets
import evaluate

_DESCRIPTION = "Perplexity = exp(sum of token negative log-likelihoods / number of predicted tokens)."
_KWARGS_DESCRIPTION = """
Args:
    predictions (list of float): per text, the summed negative log-likelihood of its predicted tokens (nats).
    references (list of int): per text, the number of predicted tokens.
Returns:
    perplexity (float): token-weighted perplexity over all texts.
    mean_nll (float): the average negative log-likelihood per token.
"""


class Perplexity(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(description=_DESCRIPTION, citation="", inputs_description=_KWARGS_DESCRIPTION,
                                   features=datasets.Features({"predictions": datasets.Value("float64"),
                                                               "references": datasets.Value("int64")}))

    def _compute(self, predictions, references):
        n = sum(references)
        if n <= 0: raise ValueError("perplexity needs at least one predicted token")
        mean_nll = sum(predictions) / n
        return {"perplexity": math.exp(mean_nll), "mean_nll": mean_nll}
