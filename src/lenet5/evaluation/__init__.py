"""Evaluation: metrics, the metrics line, running a model over a split."""

from .evaluate import EVAL_BATCH_SIZE, evaluate, predict_logits
from .metrics import Metrics, format_metrics

__all__ = ["EVAL_BATCH_SIZE", "Metrics", "evaluate", "format_metrics", "predict_logits"]
