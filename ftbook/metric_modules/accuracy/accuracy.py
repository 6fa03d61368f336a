"""Accuracy: the share of predictions equal to their reference. Shipped with ftbook so that it loads offline."""

import datasets
import evaluate

_DESCRIPTION = "Accuracy = correct predictions / all predictions."
_KWARGS_DESCRIPTION = """
Args:
    predictions (list of int): predicted class ids.
    references (list of int): true class ids.
Returns:
    accuracy (float): in [0, 1].
"""


class Accuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(description=_DESCRIPTION, citation="", inputs_description=_KWARGS_DESCRIPTION,
                                   features=datasets.Features({"predictions": datasets.Value("int64"),
                                                               "references": datasets.Value("int64")}))

    def _compute(self, predictions, references):
        if not references: raise ValueError("accuracy needs at least one prediction")
        return {"accuracy": float(sum(int(p == r) for p, r in zip(predictions, references)) / len(references))}
