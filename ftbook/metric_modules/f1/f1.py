"""F1 score (binary, macro, micro or weighted), computed with scikit-learn. Shipped with ftbook so that it loads offline."""

import datasets
import evaluate
from sklearn.metrics import f1_score

_DESCRIPTION = "F1 = 2 * precision * recall / (precision + recall); `average='macro'` is the unweighted mean over classes."
_KWARGS_DESCRIPTION = """
Args:
    predictions (list of int): predicted class ids.
    references (list of int): true class ids.
    average (str): 'binary' (default), 'macro', 'micro' or 'weighted'.
    pos_label (int): the positive class when average='binary' (default 1).
Returns:
    f1 (float): in [0, 1].
"""


class F1(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(description=_DESCRIPTION, citation="", inputs_description=_KWARGS_DESCRIPTION,
                                   features=datasets.Features({"predictions": datasets.Value("int64"),
                                                               "references": datasets.Value("int64")}))

    def _compute(self, predictions, references, average="binary", pos_label=1):
        return {"f1": float(f1_score(references, predictions, average=average, pos_label=pos_label, zero_division=0))}
