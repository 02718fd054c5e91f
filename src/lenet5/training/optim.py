"""Optimizers and learning-rate schedules by name (``--optimizer``, ``--schedule``)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable

import torch
from torch.optim.lr_scheduler import LRScheduler

from ..errors import Lenet5Error
from ..fastpath.compat import has_step_hooks, public_only
from ..registry import Registry
from .sdlm import SDLM

OPTIMIZERS: Registry[Callable[..., torch.optim.Optimizer]] = Registry("optimizer")
SCHEDULES: Registry[Callable[..., LRScheduler | None]] = Registry("schedule")
register_optimizer = OPTIMIZERS.register
register_schedule = SCHEDULES.register


def list_optimizers() -> list[str]:
    return OPTIMIZERS.names()


def list_schedules() -> list[str]:
    return SCHEDULES.names()


def build_optimizer(name: str, params: Iterable[torch.nn.Parameter], lr: float,
                    weight_decay: float = 0.0, momentum: float = 0.9,
                    **kwargs) -> torch.optim.Optimizer:
    factory = OPTIMIZERS.get(name)
    try:
        return factory(params, lr=lr, weight_decay=weight_decay, momentum=momentum,
                                 **kwargs)
    except (TypeError, ValueError) as e:
        raise Lenet5Error(f"optimizer {name!r}: {e}") from None


def build_schedule(name: str, optimizer: torch.optim.Optimizer, epochs: int,
                   steps_per_epoch: int) -> LRScheduler | None:
    """A scheduler stepped once per batch (or None for a constant learning rate)."""
    return SCHEDULES.get(name)(optimizer, epochs, steps_per_epoch)


@register_optimizer("sgd")
def _sgd(params, lr, weight_decay, momentum, **kw):
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay,
                           nesterov=momentum > 0, **kw)


class _DirectFusedStep:
    """Adam or AdamW (``fused=True``) whose step, once the state exists, is the fused
    kernel called with the tensor lists: what ``Optimizer.step`` ends in, without the
    Python around it (checks, grouping, profiler hooks), which runs cold right after a
    backward pass (benchmarks/README.md). The same kernel and arguments, so the same
    update, bit for bit; every other case (no state yet, step hooks, a closure, AMSGrad, a
    tensor learning rate, a gradient scaler, missing or sparse gradients) takes
    ``Optimizer.step``, and so does every step where the kernel is private API that
    fails its check or ``LENET5_PUBLIC_TORCH=1`` is set (:func:`_fused_kernel`).
    """

    _kernel_name = "_fused_adam_"
    public: type[torch.optim.Optimizer]  # the optimizer this one steps like

    def step(self, closure=None):
        kernel = None if closure is not None else _fused_kernel(type(self))
        lists = None if kernel is None else self._direct_lists()
        if lists is None:
            return super().step(closure)
        self._direct_step(kernel, lists)
        return None

    def _direct_step(self, kernel, lists) -> None:
        for group, (params, grads, exp_avgs, exp_avg_sqs, steps) in zip(self.param_groups, lists):
            torch._foreach_add_(steps, 1)
            beta1, beta2 = group["betas"]
            kernel(params, grads, exp_avgs, exp_avg_sqs, [], steps, amsgrad=False,
                   lr=group["lr"], beta1=beta1, beta2=beta2,
                   weight_decay=group["weight_decay"], eps=group["eps"],
                   maximize=group["maximize"], grad_scale=None, found_inf=None)

    def _direct_lists(self) -> list[tuple[list[torch.Tensor], ...]] | None:
        if (has_step_hooks(self) or getattr(self, "grad_scale", None) is not None
                or getattr(self, "found_inf", None) is not None):
            return None
        lists = []
        for group in self.param_groups:
            if (not group["fused"] or group["amsgrad"] or group["differentiable"]
                    or group["capturable"] or isinstance(group["lr"], torch.Tensor)):
                return None
            params = group["params"]
            grads = [p.grad for p in params]
            states = [self.state.get(p) for p in params]
            if any(g is None or g.is_sparse for g in grads) or not all(states):
                return None
            lists.append((params, grads, [s["exp_avg"] for s in states],
                          [s["exp_avg_sq"] for s in states], [s["step"] for s in states]))
        return lists


class FusedAdam(_DirectFusedStep, torch.optim.Adam):
    """``torch.optim.Adam(fused=True)`` with the direct step of :class:`_DirectFusedStep`."""

    public = torch.optim.Adam


class FusedAdamW(_DirectFusedStep, torch.optim.AdamW):
    """``torch.optim.AdamW(fused=True)`` with the direct step of :class:`_DirectFusedStep`."""

    _kernel_name = "_fused_adamw_"
    public = torch.optim.AdamW


def _fused_kernel(cls: type[_DirectFusedStep]):
    """The private fused kernel ``cls`` calls directly, or None: ``Optimizer.step``."""
    return None if public_only() else _checked_kernel(cls)


@functools.cache
def _checked_kernel(cls: type[_DirectFusedStep]):
    """``torch._fused_adam_`` (or ``_adamw_``) where it exists and three steps through it
    give the public optimizer's weights bit for bit (a change of its signature or meaning
    in a later torch fails here, and the public step is used)."""
    kernel = getattr(torch, cls._kernel_name, None)
    if kernel is None or not hasattr(torch, "_foreach_add_"):
        return None
    weights = []
    try:
        for direct in (True, False):
            p = torch.nn.Parameter(torch.linspace(-1.0, 1.0, 12).view(3, 4))
            opt = (cls if direct else cls.public)([p], lr=0.1, weight_decay=0.01, fused=True)
            for step in range(3):
                p.grad = torch.linspace(0.5, -0.25, 12).view(3, 4) * (step + 1)
                lists = opt._direct_lists() if direct and step else None
                if direct and step and lists is None:
                    return None  # the direct route would never run
                if lists is None:
                    cls.public.step(opt)
                else:
                    opt._direct_step(kernel, lists)
            weights.append(p.detach())
    except (AttributeError, KeyError, RuntimeError, TypeError):
        return None
    return kernel if torch.equal(*weights) else None


# Adam and AdamW use the fused kernel (one pass over all parameters per step, CPU and
# CUDA alike): the same update as the per-parameter loop, in fewer, larger operations.
@register_optimizer("adam")
def _adam(params, lr, weight_decay, momentum, **kw):
    return FusedAdam(params, lr=lr, weight_decay=weight_decay, **{"fused": True, **kw})


@register_optimizer("adamw")
def _adamw(params, lr, weight_decay, momentum, **kw):
    return FusedAdamW(params, lr=lr, weight_decay=weight_decay, **{"fused": True, **kw})


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


@register_schedule("onecycle-short")
def _onecycle_short(optimizer, epochs, steps_per_epoch):
    """One cycle as PyTorch defines it (momentum, or Adam's beta1, cycled 0.95-0.85-0.95)
    with a warm-up of 5% of training: the string readers' schedule (docs/reading.md)."""
    max_lr = [g["lr"] for g in optimizer.param_groups]
    return torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=max_lr, total_steps=epochs * steps_per_epoch, pct_start=0.05,
        anneal_strategy="cos")


@register_schedule("cosine")
def _cosine(optimizer, epochs, steps_per_epoch):
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch)


@register_optimizer("sdlm")
def _sdlm(params, lr, weight_decay, momentum, mu=0.02, hessian_samples=500, refresh_every=0):
    """Stochastic diagonal Levenberg-Marquardt, the paper's optimizer (see sdlm.py)."""
    return SDLM(params, lr=lr, mu=mu, hessian_samples=hessian_samples,
                weight_decay=weight_decay, refresh_every=refresh_every)


# The paper's learning rates per pass (section V.B), relative to the first (0.0005).
LECUN1998_RATES = ((2, 0.0005), (5, 0.0002), (8, 0.0001), (12, 0.00005), (None, 0.00001))


def lecun1998_factor(epoch: int) -> float:
    """The factor on the base learning rate during pass ``epoch`` (1-based)."""
    for last, rate in LECUN1998_RATES:
        if last is None or epoch <= last:
            return rate / LECUN1998_RATES[0][1]
    raise AssertionError("unreachable")


LECUN1998_WARMUP_STEPS = 1000


@register_schedule("lecun1998")
def _lecun1998(optimizer, epochs, steps_per_epoch):
    """Steps: 0.0005 for passes 1-2, 0.0002 for 3-5, 0.0001 for 6-8, 0.00005 for 9-12,
    0.00001 after, as factors 1, 0.4, 0.2, 0.1, 0.02 on the given learning rate; ours: a
    linear warm-up over the first 1000 steps (with mini-batches the first steps, taken
    with the curvature estimated at the initial weights, are the least stable)."""
    def factor(step: int) -> float:
        warmup = min(1.0, (step + 1) / LECUN1998_WARMUP_STEPS)
        return warmup * lecun1998_factor(1 + step // steps_per_epoch)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
