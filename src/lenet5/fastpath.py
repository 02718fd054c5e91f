"""The settings that make training and evaluation fast, for any registered model.

Measured on 2 CPU cores (figures and the things that did not help: benchmarks/README.md):

- **channels_last**: convolution and pooling kernels of oneDNN work on NHWC; with the
  weights in NHWC every convolution runs without reordering. A 1-channel input is the same
  memory in both layouts, so the input costs nothing to convert.
- **bfloat16 autocast** on CPUs with native bf16 (AMX or AVX-512 BF16): convolutions and
  matrix products in bf16, weights, gradients, optimizer state and loss in float32.
  ``precision="auto"`` uses it for training only where the CPU has it; evaluation stays
  float32 so the reported metrics are exact.

Nothing here is model-specific: the training loop and evaluation call these on whatever
model the registry built.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from .errors import Lenet5Error

PRECISIONS = ("auto", "fp32", "bf16")


def has_conv(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.conv._ConvNd) for m in model.modules())


def to_channels_last(model: nn.Module) -> nn.Module:
    """Put every 4-D weight of a convolutional model in NHWC (in place; returns the model)."""
    if has_conv(model):
        model.to(memory_format=torch.channels_last)
    return model


def input_memory_format(model: nn.Module) -> torch.memory_format:
    """The layout a model's input should have: NHWC when its 4-D weights are NHWC.

    A weight with one input channel or a 1x1 kernel is both layouts at once and decides
    nothing; the first weight that is only one of them does.
    """
    for p in model.parameters():
        if p.dim() == 4:
            nhwc, nchw = p.is_contiguous(memory_format=torch.channels_last), p.is_contiguous()
            if nhwc != nchw:
                return torch.channels_last if nhwc else torch.contiguous_format
    return torch.contiguous_format


def cpu_has_bf16() -> bool:
    """True where oneDNN runs bf16 natively (AVX-512 BF16 or AMX), so autocast pays off."""
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    try:
        return bool(check()) if check is not None else False
    except RuntimeError:
        return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` -> ``bf16`` on a CPU with native bf16, else ``fp32``."""
    if precision not in PRECISIONS:
        raise Lenet5Error(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bf16" if device.type == "cpu" and cpu_has_bf16() else "fp32"
    return precision


def autocast(device: torch.device, precision: str):
    """The context a forward pass runs in: bf16 autocast, or nothing for float32."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
