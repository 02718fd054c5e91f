"""Loss functions by name, so a model's recipe can name its own (``cross_entropy``, ...)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import Lenet5Error

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
_LOSSES: dict[str, Callable[..., LossFn]] = {}


def register_loss(name: str):
    def decorator(factory: Callable[..., LossFn]) -> Callable[..., LossFn]:
        _LOSSES[name] = factory
        return factory
    return decorator


def list_losses() -> list[str]:
    return sorted(_LOSSES)


def build_loss(name: str, **kwargs: Any) -> LossFn:
    """The loss ``name`` as ``fn(outputs, targets) -> mean loss``."""
    if name not in _LOSSES:
        raise Lenet5Error(f"unknown loss {name!r}; known losses: {', '.join(list_losses())}")
    return _LOSSES[name](**kwargs)


@register_loss("cross_entropy")
def cross_entropy(label_smoothing: float = 0.0) -> LossFn:
    def fn(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, target, label_smoothing=label_smoothing)
    return fn
