"""Optimizers and learning-rate schedules by name (``--optimizer``, ``--schedule``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch.optim.lr_scheduler import LRScheduler

from ..errors import Lenet5Error

_OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {}
_SCHEDULES: dict[str, Callable[..., LRScheduler | None]] = {}


def register_optimizer(name: str):
    def decorator(fn):
        _OPTIMIZERS[name] = fn
        return fn
    return decorator


def register_schedule(name: str):
    def decorator(fn):
        _SCHEDULES[name] = fn
        return fn
    return decorator


def list_optimizers() -> list[str]:
    return sorted(_OPTIMIZERS)


def list_schedules() -> list[str]:
    return sorted(_SCHEDULES)


def build_optimizer(name: str, params: Iterable[torch.nn.Parameter], lr: float,
                    weight_decay: float = 0.0, momentum: float = 0.9,
                    **kwargs) -> torch.optim.Optimizer:
    if name not in _OPTIMIZERS:
        raise Lenet5Error(f"unknown optimizer {name!r}; known: {', '.join(list_optimizers())}")
    return _OPTIMIZERS[name](params, lr=lr, weight_decay=weight_decay, momentum=momentum,
                             **kwargs)


def build_schedule(name: str, optimizer: torch.optim.Optimizer, epochs: int,
                   steps_per_epoch: int) -> LRScheduler | None:
    """A scheduler stepped once per batch (or None for a constant learning rate)."""
    if name not in _SCHEDULES:
        raise Lenet5Error(f"unknown schedule {name!r}; known: {', '.join(list_schedules())}")
    return _SCHEDULES[name](optimizer, epochs, steps_per_epoch)


@register_optimizer("sgd")
def _sgd(params, lr, weight_decay, momentum, **kw):
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay,
                           nesterov=momentum > 0, **kw)


# Adam and AdamW use the fused kernel (one pass over all parameters per step, CPU and
# CUDA alike): the same update as the per-parameter loop, in fewer, larger operations.
@register_optimizer("adam")
def _adam(params, lr, weight_decay, momentum, **kw):
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, **{"fused": True, **kw})


@register_optimizer("adamw")
def _adamw(params, lr, weight_decay, momentum, **kw):
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, **{"fused": True, **kw})


@register_schedule("constant")
def _constant(optimizer, epochs, steps_per_epoch):
    return None


@register_schedule("onecycle")
def _onecycle(optimizer, epochs, steps_per_epoch):
    """Warm up for 30% of training to the given lr, then anneal (Smith & Topin, 2017)."""
    max_lr = [g["lr"] for g in optimizer.param_groups]
    return torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=max_lr, epochs=epochs, steps_per_epoch=steps_per_epoch,
        cycle_momentum=False)


@register_schedule("cosine")
def _cosine(optimizer, epochs, steps_per_epoch):
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch)
