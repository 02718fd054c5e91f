"""Turning a batch of uint8 images into model input, as tensor operations on the whole batch."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..models import Preprocess


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
