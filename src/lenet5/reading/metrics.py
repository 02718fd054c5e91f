"""The metrics of reading whole numbers.

- exact match: the share of strings read entirely right;
- character error rate (CER): edit distance (insertions, deletions, substitutions) between
  reading and truth, summed over the strings, over the total length of the truths;
- accept rate at an error rate (the paper's check-reading figure, LeCun et al. 1998, X):
  answers are accepted from the most confident down, and the threshold is set as low as it
  can go while at most ``error`` (1%) of the accepted are wrong; the share accepted is
  the figure (the paper calls a reader viable at 50% with under 1% error).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np


def edit_distance(a: Sequence, b: Sequence) -> int:
    """Levenshtein distance: the fewest insertions, deletions and substitutions from a to b."""
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


@dataclass(frozen=True)
class AcceptRate:
    accepted: float  # share of strings accepted
    error: float  # share of the accepted that are wrong
    threshold: float  # confidence from which answers are accepted (inf: none accepted)


def accept_rate(confidence: Sequence[float], correct: Sequence[bool], max_error: float = 0.01
                ) -> AcceptRate:
    """The largest share of answers, taken from the most confident down, of which at most
    ``max_error`` are wrong. Answers of equal confidence are accepted or rejected together."""
    conf = np.asarray(confidence, dtype=np.float64)
    ok = np.asarray(correct, dtype=bool)
    if not len(conf):
        return AcceptRate(0.0, 0.0, float("inf"))
    order = np.argsort(-conf, kind="stable")
    conf, wrong = conf[order], np.cumsum(~ok[order])
    n = np.arange(1, len(conf) + 1)
    # a threshold can fall only where the confidence changes (or after the last answer)
    cut = np.append(conf[1:] != conf[:-1], True)
    good = cut & (wrong <= max_error * n + 1e-9)
    if not good.any():
        return AcceptRate(0.0, 0.0, float("inf"))
    k = int(np.flatnonzero(good)[-1])
    return AcceptRate(float(n[k] / len(conf)), float(wrong[k] / n[k]), float(conf[k]))


@dataclass(frozen=True)
class ReadingMetrics:
    strings: int
    exact: int  # strings read entirely right
    edits: int  # edit distance, summed
    characters: int  # length of the truths, summed
    accept_rate: float  # at max_error
    accept_error: float
    accept_threshold: float
    max_error: float = 0.01

    @property
    def exact_match(self) -> float:
        return self.exact / self.strings if self.strings else 0.0

    @property
    def cer(self) -> float:
        return self.edits / self.characters if self.characters else 0.0

    def to_dict(self) -> dict:
        """As JSON: the threshold None when nothing is accepted (not infinity)."""
        d = {**asdict(self), "exact_match": self.exact_match, "cer": self.cer}
        if not np.isfinite(d["accept_threshold"]):
            d["accept_threshold"] = None
        return d


def reading_metrics(truths: Sequence[str], readings: Sequence[str], confidence: Sequence[float],
                    max_error: float = 0.01) -> ReadingMetrics:
    """Exact match, CER and the accept rate of ``readings`` against ``truths``."""
    right = [t == r for t, r in zip(truths, readings, strict=True)]
    rate = accept_rate(confidence, right, max_error)
    return ReadingMetrics(
        strings=len(truths), exact=sum(right),
        edits=sum(edit_distance(t, r) for t, r in zip(truths, readings)),
        characters=sum(len(t) for t in truths),
        accept_rate=rate.accepted, accept_error=rate.error, accept_threshold=rate.threshold,
        max_error=max_error)


def by_length(truths: Sequence[str], readings: Sequence[str], confidence: Sequence[float],
              max_error: float = 0.01) -> dict[int, ReadingMetrics]:
    """``reading_metrics`` of the strings of each length, by length."""
    groups: dict[int, list[int]] = {}
    for i, t in enumerate(truths):
        groups.setdefault(len(t), []).append(i)
    return {n: reading_metrics([truths[i] for i in idx], [readings[i] for i in idx],
                               [confidence[i] for i in idx], max_error)
            for n, idx in sorted(groups.items())}


def format_reading(split: str, m: ReadingMetrics) -> str:
    """``(test set) strings: 10000 exact: 0.9712 cer: 0.0061 accept@1%: 0.8840``"""
    label = f"({split} set)".ljust(11)
    pct = f"{m.max_error * 100:g}%"
    return (f"{label} strings: {m.strings} exact: {m.exact_match:.4f} cer: {m.cer:.4f} "
            f"accept@{pct}: {m.accept_rate:.4f} miss: {m.strings - m.exact}")


def format_by_length(metrics: dict[int, ReadingMetrics]) -> str:
    """A table: per string length, strings, exact match, CER and the accept rate."""
    lines = ["digits  strings   exact     cer  accept@1%", "-" * 42]
    for n, m in metrics.items():
        lines.append(f"{n:>6}  {m.strings:>7}  {m.exact_match:.4f}  {m.cer:.4f}  {m.accept_rate:>9.4f}")
    return "\n".join(lines)
