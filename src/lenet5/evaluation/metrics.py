"""Classification metrics and the metrics line users know from LeNet-5 repositories:

    (test set)  loss: 0.0462  acc: 0.9882  mcr: 0.0118  correct: 9882  miss: 118
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Metrics:
    loss: float  # mean loss per image
    correct: int
    total: int

    @property
    def acc(self) -> float:
        return self.correct / self.total if self.total else 0.0

    @property
    def mcr(self) -> float:
        """Misclassification rate, 1 - acc."""
        return 1.0 - self.acc

    @property
    def miss(self) -> int:
        return self.total - self.correct

    def to_dict(self) -> dict:
        return {**asdict(self), "acc": self.acc, "mcr": self.mcr, "miss": self.miss}

    @classmethod
    def from_dict(cls, d: dict) -> Metrics:
        return cls(loss=d["loss"], correct=d["correct"], total=d["total"])


def format_metrics(split: str, m: Metrics, epoch: int | None = None) -> str:
    """``(train set) epoch: 3 loss: 0.0345 acc: 0.9891 mcr: 0.0109 correct: 59346 miss: 654``"""
    label = f"({split} set)".ljust(11)
    ep = f" epoch: {epoch}" if epoch is not None else ""
    return (f"{label}{ep} loss: {m.loss:.4f} acc: {m.acc:.4f} mcr: {m.mcr:.4f} "
            f"correct: {m.correct} miss: {m.miss}")
