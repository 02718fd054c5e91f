"""Turning a batch of uint8 images into model input, as tensor operations on the whole batch."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Preprocess:
    """How uint8 images (0 = background, 255 = ink) become the model's input tensor.

    ``pad`` pixels of background are added on every side (MNIST's 28x28 -> LeNet's 32x32),
    then ``x = (pixel / 255 - mean) / std``. The paper's scaling (background -0.1, ink
    1.175) is ``mean=0.078431, std=0.784314``; the usual MNIST statistics are the default.
    """

    pad: int = 2
    mean: float = 0.1307
    std: float = 0.3081

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Preprocess:
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls) if f.name in d})


def to_input(images: torch.Tensor, pre: Preprocess, device: torch.device | str | None = None,
             dtype: torch.dtype = torch.float32,
             memory_format: torch.memory_format = torch.contiguous_format) -> torch.Tensor:
    """uint8 (B, H, W) or (B, C, H, W) -> float (B, C, H + 2*pad, W + 2*pad).

    Background padding is added on the uint8 image, so it is exactly the normalized
    background value; then ``(x / 255 - mean) / std`` in one fused multiply-add.
    ``memory_format=torch.channels_last`` gives NHWC (free for one channel).
    """
    if images.dim() == 3:
        images = images.unsqueeze(1)
    if device is not None:
        images = images.to(device, non_blocking=True)
    if pre.pad:
        images = F.pad(images, (pre.pad,) * 4)
    scale = 1.0 / (255.0 * pre.std)
    x = images.to(dtype=dtype, memory_format=memory_format)
    return x.mul_(scale).sub_(pre.mean / pre.std)
