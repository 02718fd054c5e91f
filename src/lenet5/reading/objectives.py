"""How each string reader is trained: its batches, its loss, its evaluation.

A model's ``objective`` (models/sdnn.py) names its entry here. A training loop needs only

    obj = get_objective(model.objective)
    steps = ceil(obj.epoch_size(data.train) / batch_size)                # per epoch
    batch = obj.batch(data.train, batch_size, generator, pre, device)   # a Batch
    loss = obj.loss(model(batch.x), batch, model)
    metrics, readings = evaluate_reader(model, pre, data.test)

- ``sdnn``: the paper's SDNN training (LeCun et al. 1998, VII.A): 32x32 windows, a central
  digit with random neighbours or "none", 10% salt-and-pepper noise, cross entropy.
- ``ctc``: whole strings, CTC loss over the output strip (the blank is the class after
  the digits).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..data import to_input
from ..data.strings import Strings, StringSource, salt_and_pepper
from ..models import Preprocess
from ..registry import Registry
from .metrics import ReadingMetrics, reading_metrics
from .read import MARGIN, DecodeOptions, Reading, read_strips, strip_input


@dataclass
class Batch:
    """Model input and what it should say: ``targets`` (B,) classes for windows; for
    strings the digits concatenated, with each string's ``target_lengths`` and its number
    of output frames, ``input_widths`` (input columns, margins included)."""

    x: torch.Tensor
    targets: torch.Tensor
    target_lengths: torch.Tensor | None = None
    input_widths: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.x)


class Objective:
    name = ""

    def epoch_size(self, source: StringSource) -> int:
        """Samples (windows or strings) in an epoch of ``source``: about one use of each
        training digit."""
        return source.epoch_size

    def batch(self, source: StringSource, n: int, generator: torch.Generator, pre: Preprocess,
              device: torch.device | str = "cpu") -> Batch:
        raise NotImplementedError

    def loss(self, scores: torch.Tensor, batch: Batch, model: nn.Module) -> torch.Tensor:
        raise NotImplementedError


OBJECTIVES: Registry[type[Objective]] = Registry("reader objective")


@OBJECTIVES.register("sdnn")
class WindowObjective(Objective):
    """Windows classified into the ten digits and "none", with salt-and-pepper noise."""

    name = "sdnn"

    def __init__(self, noise: float = 0.1, label_smoothing: float = 0.0, none_share: float = 0.5):
        self.noise, self.label_smoothing, self.none_share = noise, label_smoothing, none_share

    def epoch_size(self, source):
        return round(len(source.digits) / (1 - self.none_share))  # each digit centred once

    def batch(self, source, n, generator, pre, device="cpu"):
        windows = source.windows(n, generator, self.noise, self.none_share)
        return Batch(to_input(windows.images, pre, device), windows.labels.to(device))

    def loss(self, scores, batch, model):
        return F.cross_entropy(scores[:, :, 0].float(), batch.targets,
                               label_smoothing=self.label_smoothing)


@OBJECTIVES.register("ctc")
class StringObjective(Objective):
    """Whole strings, CTC over the output strip."""

    name = "ctc"

    def __init__(self, noise: float = 0.0):
        self.noise = noise

    def batch(self, source, n, generator, pre, device="cpu"):
        # strings of one length, give or take one: little padding to the widest
        lo, hi = source.options.length
        centre = int(torch.randint(lo, hi + 1, (1,), generator=generator))
        lengths = (centre + torch.randint(-1, 2, (n,), generator=generator)).clamp(lo, hi)
        s = source.strings(n, generator, lengths)
        images = s.images
        if self.noise > 0:
            images = salt_and_pepper(images, self.noise, generator)
        return Batch(strip_input(images, pre, device=device),
                     s.digits[s.digits >= 0].to(device), s.lengths.to(device),
                     (s.widths + 2 * MARGIN).to(device))

    def loss(self, scores, batch, model):
        logp = F.log_softmax(scores.float(), 1).permute(2, 0, 1)  # (T, B, C)
        frames = model.frames(batch.input_widths)
        # zero_infinity: a string with too few frames for its digits adds nothing
        return F.ctc_loss(logp, batch.targets, frames, batch.target_lengths, blank=model.blank,
                          reduction="mean", zero_infinity=True)


def get_objective(name: str, **options) -> Objective:
    return OBJECTIVES.get(name)(**options)


def evaluate_reader(model: nn.Module, pre: Preprocess, strings: Strings,
                    options: DecodeOptions | None = None, max_error: float = 0.01,
                    batch_size: int = 256, device: torch.device | str = "cpu"
                    ) -> tuple[ReadingMetrics, list[Reading]]:
    """Read every string; exact match, CER and the accept rate at ``max_error``."""
    readings = read_strips(model, pre, strings.images, strings.widths, options or DecodeOptions(),
                           batch_size, device)
    metrics = reading_metrics(strings.texts(), [r.text for r in readings],
                              [r.confidence for r in readings], max_error)
    return metrics, readings
