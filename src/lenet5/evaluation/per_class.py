"""Per-class numbers: the confusion matrix, and accuracy, precision and recall per class.

``confusion[t, p]`` counts the images of true class ``t`` the model called ``p``. For a
class, its accuracy is the share of its images read right, which is also its recall
(TP / (TP + FN)); precision is the share of the model's answers of that class that were
right (TP / (TP + FP)); F1 is their harmonic mean. A class never predicted has precision
0 (as in scikit-learn with ``zero_division=0``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


def confusion_matrix(labels: torch.Tensor, preds: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(num_classes, num_classes) int64 counts; rows are true classes, columns predictions."""
    labels, preds = labels.reshape(-1).long().cpu(), preds.reshape(-1).long().cpu()
    flat = torch.bincount(labels * num_classes + preds, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


@dataclass(frozen=True)
class ClassStats:
    name: str
    images: int  # support: images of this class
    correct: int  # true positives
    predicted: int  # images the model called this class

    @property
    def recall(self) -> float:
        return self.correct / self.images if self.images else 0.0

    accuracy = recall  # per-class accuracy: the share of the class's images read right

    @property
    def precision(self) -> float:
        return self.correct / self.predicted if self.predicted else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def per_class_stats(confusion: torch.Tensor, classes: Sequence[str]) -> list[ClassStats]:
    cm = confusion.long()
    return [ClassStats(name=str(classes[i]), images=int(cm[i].sum()), correct=int(cm[i, i]),
                       predicted=int(cm[:, i].sum())) for i in range(len(classes))]


def format_per_class(confusion: torch.Tensor, classes: Sequence[str]) -> str:
    """A table: one row per class, then the overall accuracy and the macro averages."""
    stats = per_class_stats(confusion, classes)
    w = max(5, *(len(s.name) for s in stats))
    head = f"{'class':<{w}}  {'images':>6}  {'correct':>7}  {'miss':>5}  {'accuracy':>8}  " \
           f"{'precision':>9}  {'recall':>6}  {'f1':>6}"
    lines = [head, "-" * len(head)]
    for s in stats:
        lines.append(f"{s.name:<{w}}  {s.images:>6}  {s.correct:>7}  {s.images - s.correct:>5}  "
                     f"{s.accuracy:>8.4f}  {s.precision:>9.4f}  {s.recall:>6.4f}  {s.f1:>6.4f}")
    total = sum(s.images for s in stats)
    correct = sum(s.correct for s in stats)
    n = max(len(stats), 1)
    macro_p = sum(s.precision for s in stats) / n
    macro_r = sum(s.recall for s in stats) / n
    macro_f1 = sum(s.f1 for s in stats) / n
    lines.append("-" * len(head))
    lines.append(f"{'all':<{w}}  {total:>6}  {correct:>7}  {total - correct:>5}  "
                 f"{correct / total if total else 0.0:>8.4f}  {macro_p:>9.4f}  {macro_r:>6.4f}  "
                 f"{macro_f1:>6.4f}")
    lines.append("accuracy of a class = its recall: the share of its images read right")
    lines.append("'all': overall accuracy; precision, recall and f1 averaged over the classes")
    return "\n".join(lines)


def format_confusion(confusion: torch.Tensor, classes: Sequence[str]) -> str:
    """The confusion matrix as text: rows true class, columns predicted; zeros as '.'."""
    cm = confusion.long()
    names = [str(c) for c in classes]
    w = max(4, len(str(int(cm.max()) if cm.numel() else 0)), *(len(n) for n in names))
    corner = "true\\pred"
    lw = max(len(corner), *(len(n) for n in names))
    lines = [f"{corner:<{lw}}" + "".join(f" {n:>{w}}" for n in names) + f" {'total':>{w + 1}}"]
    for i, name in enumerate(names):
        cells = "".join(f" {(str(int(v)) if v else '.'):>{w}}" for v in cm[i])
        lines.append(f"{name:<{lw}}{cells} {int(cm[i].sum()):>{w + 1}}")
    lines.append(f"{'total':<{lw}}" + "".join(f" {int(v):>{w}}" for v in cm.sum(0))
                 + f" {int(cm.sum()):>{w + 1}}")
    return "\n".join(lines)
