"""The private PyTorch APIs the fast path uses, each behind a check, with a public fallback.

PyTorch may change or drop an underscore name in any release. Each one used here is looked
up before use (the convolution gradient and Adam's kernels are also compared with the
public API once per process, on a small exact case) and replaced by its public equivalent
where it is missing, fails or disagrees, or everywhere when the environment variable
``LENET5_PUBLIC_TORCH=1`` is set (the tests run both ways):

- ``torch.ops.aten.convolution_backward`` -> ``torch.nn.grad.conv2d_weight`` and a sum;
- ``torch._fused_adam_`` / ``_fused_adamw_`` with ``_foreach_add_`` and the optimizers'
  step-hook dicts (``training/optim.py``) -> ``torch.optim.Adam(fused=True).step`` (AdamW);
- ``torch.ops.mkldnn._is_mkldnn_bf16_supported`` -> the CPU's flags (``/proc/cpuinfo``);
- ``torch._foreach_lerp_`` -> ``Tensor.lerp_``, tensor by tensor.

The private routes are what the project measured and shipped; the public ones compute the
same things (the optimizer and the lerp bit for bit, the weight gradient to rounding).
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch.optim import optimizer as torch_optimizer

PUBLIC_TORCH_ENV = "LENET5_PUBLIC_TORCH"


def public_only() -> bool:
    """True when ``LENET5_PUBLIC_TORCH`` is set (to anything but ``0``): public APIs only."""
    return os.environ.get(PUBLIC_TORCH_ENV, "0") not in ("", "0")


# --- the weight and bias gradients of a convolution -------------------------------------

def _agrees_with_conv2d_weight(op: Callable) -> bool:
    """Whether ``op`` computes ``aten.convolution_backward``'s weight and bias gradients
    as the public API does, on a small case whose sums are exact."""
    x = torch.arange(2 * 2 * 5 * 5, dtype=torch.float32).view(2, 2, 5, 5) % 7
    w = torch.ones(3, 2, 3, 3)
    g = torch.arange(2 * 3 * 3 * 3, dtype=torch.float32).view(2, 3, 3, 3) % 5
    try:
        _, gw, gb = op(g, x, w, [3], [1, 1], [0, 0], [1, 1], False, [0, 0], 1,
                       [False, True, True])
        return (torch.equal(gw, torch.nn.grad.conv2d_weight(x, w.shape, g))
                and torch.equal(gb, g.sum((0, 2, 3))))
    except (RuntimeError, TypeError, ValueError):
        return False


@functools.cache
def _checked_convolution_backward() -> Callable | None:
    """``aten.convolution_backward`` if it exists and agrees with the public API."""
    op = getattr(torch.ops.aten, "convolution_backward", None)
    return op if op is not None and _agrees_with_conv2d_weight(op) else None


def conv_weight_and_bias_grads(grad: torch.Tensor, x: torch.Tensor, weight: torch.Tensor,
                               has_bias: bool, need_w: bool, need_b: bool) -> tuple:
    """The weight and bias gradients (None where not needed) of a stride-1, unpadded
    convolution of ``x`` by ``weight`` whose output gradient is ``grad``.

    Private route: one call of the native backward kernel for both. Public route:
    ``torch.nn.grad.conv2d_weight`` and a sum over the batch and the positions.
    """
    op = None if public_only() else _checked_convolution_backward()
    if op is not None:
        _, grad_w, grad_b = op(
            grad, x, weight, [weight.shape[0]] if has_bias else None, [1, 1], [0, 0], [1, 1],
            False, [0, 0], 1, [False, need_w, need_b and has_bias])
        return grad_w if need_w else None, grad_b if need_b and has_bias else None
    grad_w = torch.nn.grad.conv2d_weight(x, weight.shape, grad) if need_w else None
    grad_b = grad.sum((0, 2, 3)) if need_b and has_bias else None
    return grad_w, grad_b


# --- Adam's fused kernel, called directly (training/optim.py) ----------------------------

def has_step_hooks(optimizer: torch.optim.Optimizer) -> bool:
    """Whether ``optimizer.step`` would run step hooks, the optimizer's own or global
    ones, which a direct kernel call would skip; True where torch keeps them elsewhere."""
    module = torch_optimizer
    hooks = (getattr(optimizer, "_optimizer_step_pre_hooks", None),
             getattr(optimizer, "_optimizer_step_post_hooks", None),
             getattr(module, "_global_optimizer_pre_hooks", None),
             getattr(module, "_global_optimizer_post_hooks", None))
    return any(h is None or len(h) > 0 for h in hooks)


# --- whether the CPU runs oneDNN's bf16 kernels ------------------------------------------

def _cpu_flags() -> set[str]:
    """The CPU's feature flags as Linux lists them (empty elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return {flag for line in text.splitlines() if line.startswith(("flags", "Features"))
            for flag in line.split(":", 1)[-1].split()}


def cpu_has_bf16() -> bool:
    """True where oneDNN runs bf16 convolutions and matrix products in hardware: x86 with
    AVX-512 (BW, VL, DQ; AVX-512 BF16 and AMX run them faster still) or Arm with BF16, the
    same test as PyTorch's own ``torch.ops.mkldnn._is_mkldnn_bf16_supported``."""
    if not public_only():
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            pass
    if not torch.backends.mkldnn.is_available() or not sys.platform.startswith("linux"):
        return False
    flags = _cpu_flags()
    return {"avx512bw", "avx512vl", "avx512dq"} <= flags or "bf16" in flags


# --- a moving average's update ------------------------------------------------------------

def foreach_lerp_(starts: Sequence[torch.Tensor], ends: Sequence[torch.Tensor],
                  weight: float) -> None:
    """``start += weight * (end - start)`` for every pair, in place: one
    ``torch._foreach_lerp_`` call, or ``Tensor.lerp_`` tensor by tensor (the same kernel
    on a CPU, so the same values)."""
    lerp = None if public_only() else getattr(torch, "_foreach_lerp_", None)
    if lerp is not None and starts:  # the foreach kernel refuses empty lists
        lerp(starts, ends, weight)
        return
    for start, end in zip(starts, ends):
        start.lerp_(end, weight)
