"""The shipped metric modules: which folders count as metrics."""
import shutil

import pytest

import ftbook.metrics
from ftbook.config import ConfigError
from ftbook.metrics import load_metric


def test_only_folders_with_a_metric_script_are_metrics(tmp_path, monkeypatch):
    "A `__pycache__` (written wherever Python may write bytecode) is neither listed nor loaded as a metric."
    shutil.copytree(ftbook.metrics.METRICS_DIR, tmp_path / "m", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "m" / "__pycache__").mkdir()
    monkeypatch.setattr(ftbook.metrics, "METRICS_DIR", tmp_path / "m")
    for name in ("bleu", "__pycache__"):
        with pytest.raises(ConfigError, match=f"No metric '{name}' ships with ftbook; available: accuracy, f1, perplexity$"):
            load_metric(name)
