"""Training precision: bf16 autocast where the CPU runs oneDNN's bf16 kernels.

Convolutions and matrix products run in bf16; weights, gradients, optimizer state and the
loss stay float32. ``precision="auto"`` uses it for training only where the CPU has it
(:func:`~lenet5.fastpath.compat.cpu_has_bf16`); evaluation stays float32, so the reported
metrics are the model's own.
"""

from __future__ import annotations

import contextlib

import torch

from ..errors import Lenet5Error
from .compat import cpu_has_bf16

PRECISIONS = ("auto", "fp32", "bf16")


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` -> ``bf16`` on a CPU with bf16 kernels, else ``fp32``."""
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
