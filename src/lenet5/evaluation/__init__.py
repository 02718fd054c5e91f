"""Evaluation: metrics, the metrics line, running a model over a split."""

from .evaluate import EVAL_BATCH_SIZE, evaluate, predict_logits
from .metrics import Metrics, format_metrics
from .per_class import confusion_matrix, format_confusion, format_per_class, per_class_stats

__all__ = [
    "EVAL_BATCH_SIZE",
    "Metrics",
    "confusion_matrix",
    "evaluate",
    "format_confusion",
    "format_metrics",
    "format_per_class",
    "per_class_stats",
    "predict_logits",
]
