"""Robustness test sets: MNIST digits changed the way people's writing differs from MNIST's.

Each :class:`Shift` is a fixed, deterministic transform of every digit (the same family as
the training augmentations of ``lenet5.data.augment``, at fixed strengths): thicker and
thinner strokes, rotation, slant, small and large digits, low resolution, low contrast.
A transformed digit meets a model in one of two ways (a *view*):

- ``predict``: the digit drawn as a user's image (dark ink on white paper, with a margin)
  and read through ``lenet5 predict``'s own preprocessing, ``lenet5.data.images.mnistify``
  (crop to the ink, 20 px box, centre of mass in 28x28). This is what a user gets.
- ``raw``: the transformed 28x28 straight into the model, with no preprocessing to undo
  the change (informative: what the network alone tolerates).

``benchmarks/robustness.py`` prints the table for any list of checkpoints.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from ..data import augment as aug
from ..data.distort import affine_matrices
from ..data.images import mnistify
from ..errors import Lenet5Error
from .evaluate import EVAL_BATCH_SIZE, predict_logits

MARGIN = 6  # px of paper around the 28x28 field: room for large and rotated digits
FIELD = 28
VIEWS = ("predict", "raw")


def _alternating(n: int, value: float) -> torch.Tensor:
    """+value, -value, +value, ...: both directions, half the digits each."""
    signs = 1 - 2 * (torch.arange(n) % 2)
    return signs.to(torch.float32) * value


def _affine(u: torch.Tensor, degrees: torch.Tensor | float = 0.0, scale: float = 1.0,
            shear: torch.Tensor | float = 0.0) -> torch.Tensor:
    n = len(u)

    def full(v) -> torch.Tensor:
        return v if isinstance(v, torch.Tensor) else torch.full((n,), float(v))

    zero = torch.zeros(n)
    forward = aug.compose(aug.rotation_matrices(full(degrees)),
                          affine_matrices(zero, zero, full(scale), zero, full(shear)))
    return aug.warp(u, forward)


@dataclass(frozen=True)
class Shift:
    """One transformed test set: ``transform`` maps ink-space digits (N, 1, H, W) to the
    same; ``exempt`` marks the two the floor excepts (reported, not held to it)."""

    name: str
    description: str
    transform: Callable[[torch.Tensor], torch.Tensor]
    exempt: bool = False


def _n(u: torch.Tensor, v: float) -> torch.Tensor:
    return torch.full((len(u),), v)


SHIFTS: tuple[Shift, ...] = (
    Shift("clean", "MNIST test digits as they are", lambda u: u),
    Shift("thicker", "strokes ~2 px thicker (a 3x3 grey-level dilation)",
          lambda u: aug.thickness(u, _n(u, 1.0))),
    Shift("thinner", "strokes ~1 px thinner (half a 3x3 erosion)",
          lambda u: aug.thickness(u, _n(u, -0.5))),
    Shift("rotate10", "turned 10 degrees, half each way",
          lambda u: _affine(u, degrees=_alternating(len(u), 10.0))),
    Shift("rotate15", "turned 15 degrees, half each way",
          lambda u: _affine(u, degrees=_alternating(len(u), 15.0)), exempt=True),
    Shift("slant", "slanted by a shear of 0.3 (17 degrees), half each way",
          lambda u: _affine(u, shear=_alternating(len(u), 0.3))),
    Shift("small", "drawn at 0.6x: a 12 px digit",
          lambda u: _affine(u, scale=0.6)),
    Shift("large", "drawn at 1.3x: a 26 px digit",
          lambda u: _affine(u, scale=1.3)),
    Shift("lowres16", "the digit drawn at 16x16 and scaled up",
          lambda u: aug.low_resolution(u, _n(u, 16))),
    Shift("lowres8", "the digit drawn at 8x8 and scaled up",
          lambda u: aug.low_resolution(u, _n(u, 8)), exempt=True),
    Shift("contrast", "faint ink: 30% of full contrast",
          lambda u: aug.contrast(u, _n(u, 0.3))),
)


def get_shift(name: str) -> Shift:
    for s in SHIFTS:
        if s.name == name:
            return s
    raise KeyError(f"unknown shift {name!r}; known: {', '.join(s.name for s in SHIFTS)}")


def transform_digits(images: torch.Tensor, shift: Shift, chunk: int = 2048) -> torch.Tensor:
    """uint8 (N, 28, 28) digits (ink 255 on 0) -> uint8 (N, 28 + 2 * MARGIN, ...): the
    transformed digits on a larger field of background, so nothing is cut off."""
    out = []
    for i in range(0, len(images), chunk):
        u = F.pad(images[i:i + chunk].to(torch.float32).div(255).unsqueeze(1), (MARGIN,) * 4)
        out.append(shift.transform(u).clamp(0, 1).mul(255).round().to(torch.uint8)[:, 0])
    return torch.cat(out) if out else torch.empty(0, FIELD + 2 * MARGIN, FIELD + 2 * MARGIN,
                                                  dtype=torch.uint8)


def raw_view(canvas: torch.Tensor) -> torch.Tensor:
    """The central 28x28 of transformed digits: what the model sees without preprocessing."""
    m = (canvas.shape[-1] - FIELD) // 2
    return canvas[:, m:m + FIELD, m:m + FIELD].contiguous()


def as_page(digit: np.ndarray) -> Image.Image:
    """A digit (ink 255 on 0) as a user's image: dark ink on white paper."""
    return Image.fromarray(255 - digit)


def predict_view(canvas: torch.Tensor) -> torch.Tensor:
    """Transformed digits drawn as dark ink on white paper and read back through ``lenet5
    predict``'s preprocessing (``mnistify``). A digit with no ink left comes out blank."""
    out = np.zeros((len(canvas), FIELD, FIELD), dtype=np.uint8)
    for i, digit in enumerate(canvas.numpy()):
        if digit.max() > 0:
            try:
                out[i] = mnistify(as_page(digit), f"digit {i}")
            except Lenet5Error:  # no ink left that stands out: a blank field
                pass
    return torch.from_numpy(out)


def view(images: torch.Tensor, shift: Shift, how: str) -> torch.Tensor:
    """Test digits under ``shift``, as the model meets them in view ``how``."""
    canvas = transform_digits(images, shift)
    if how == "raw":
        return raw_view(canvas)
    if how == "predict":
        return predict_view(canvas)
    raise ValueError(f"view must be one of {VIEWS}, not {how!r}")


def accuracy(model: nn.Module, pre, images: torch.Tensor, labels: torch.Tensor,
             batch_size: int = EVAL_BATCH_SIZE) -> float:
    """Share of ``images`` (uint8 (N, 28, 28)) that ``model`` reads as ``labels``."""
    from ..data import Split

    logits = predict_logits(model, Split(images, labels), pre, batch_size)
    return float((logits.argmax(1) == labels).float().mean())


def robustness(model: nn.Module, pre, images: torch.Tensor, labels: torch.Tensor,
               shifts: Sequence[Shift] = SHIFTS, views: Sequence[str] = VIEWS,
               cache: dict | None = None) -> dict[tuple[str, str], float]:
    """Accuracy of ``model`` (with its ``Preprocess``) on every shift in every view.
    ``cache`` (a dict) keeps the transformed digits across models."""
    cache = {} if cache is None else cache
    result = {}
    for shift in shifts:
        for how in views:
            key = (shift.name, how)
            if key not in cache:
                cache[key] = view(images, shift, how)
            result[key] = accuracy(model, pre, cache[key], labels)
    return result


def load_views(path: str | Path | None) -> dict:
    """Shifted digits saved by :func:`save_views` (keyed as :func:`robustness`'s ``cache``);
    empty when ``path`` is None or not there yet."""
    if path is None or not Path(path).exists():
        return {}
    return {tuple(k.split("|")): v for k, v in torch.load(path, weights_only=True).items()}


def save_views(cache: dict, path: str | Path | None) -> None:
    """Keep the shifted digits of ``cache`` for later runs (written atomically: several
    runs may share the file)."""
    if path is None:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    torch.save({"|".join(k): v for k, v in cache.items()}, tmp)
    os.replace(tmp, path)
