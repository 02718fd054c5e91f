"""Choosing the device and making runs repeatable."""

from __future__ import annotations

import random

import numpy as np
import torch

from ..errors import Lenet5Error


def pick_device(name: str = "auto") -> torch.device:
    """``auto``: CUDA if present, else Apple's MPS if present, else the CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise Lenet5Error(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise Lenet5Error("--device cuda: no CUDA device is available here")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise Lenet5Error("--device mps: no MPS device is available here")
    return device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
