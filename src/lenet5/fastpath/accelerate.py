"""``accelerate(model)``: a plain model made fast for training and evaluation, in place.

The models (``lenet5.models``) are built from plain ``torch.nn`` layers in their canonical
order (C1, its activation, S2, ...), as torchvision's are. ``accelerate``:

1. swaps each layer that has a fast twin for it: a subclass with the same parameters,
   buffers and state-dict keys that computes the same function by a faster route
   (``nn.Conv2d`` -> :class:`~.conv.Conv2d`, ``nn.MaxPool2d`` -> :class:`~.pool.MaxPool2d`,
   ``nn.Flatten`` -> :class:`~.conv.Flatten`, lenet5-1998's partial C3);
2. lets each ``nn.Sequential`` run a max pooling before the activation in front of it
   where that activation is non-decreasing and exact (ReLU and its piecewise-linear kin):
   ``max(f(a), f(b)) = f(max(a, b))``, the same values and gradients, with the activation
   on a quarter of the values; and, in training, a convolution of the input followed by
   2x2 max pooling as one step (:class:`~.fused.Sequential`). The modules stay listed in
   their canonical order: only the order they run in changes;
3. puts the weights in channels_last (:func:`~.layout.to_channels_last`).

A checkpoint saved from either model loads into the other. Feature maps (forward hooks)
and exported graphs should come from the plain model: a reordered module's hooks see the
reordered inputs. ``lenet5 train``, ``lenet5 eval`` and ``lenet5 bench``'s project path
accelerate; ``predict``, ``serve``, ``plot`` and ``export`` use the plain model.
"""

from __future__ import annotations

from torch import nn

from ..models.lenet1998 import PartialConv2d
from .conv import Conv2d, Flatten, conv2d
from .fused import Sequential
from .layout import to_channels_last
from .pool import MaxPool2d, is_2x2_pool


class FastPartialConv2d(PartialConv2d):
    """lenet5-1998's partial C3 through :func:`~.conv.conv2d` (6 input maps: the
    few-channel route in training)."""

    def forward(self, x):
        return conv2d(x, self.dense_weight(), self.bias)


# plain layer -> its fast twin; only these exact types are swapped (a subclass of a plain
# layer may compute something else)
FAST_TWINS: dict[type[nn.Module], type[nn.Module]] = {
    nn.Conv2d: Conv2d,
    nn.MaxPool2d: MaxPool2d,
    nn.Flatten: Flatten,
    PartialConv2d: FastPartialConv2d,
}

# activations f with fl(f(max(a, b))) = max(fl(f(a)), fl(f(b))) in floating point too
_EXACT_NON_DECREASING = (nn.ReLU, nn.ReLU6, nn.Hardtanh)


def _commutes_with_max(module: nn.Module) -> bool:
    if isinstance(module, nn.LeakyReLU):
        return module.negative_slope >= 0
    return isinstance(module, _EXACT_NON_DECREASING)


def execution_order(seq: nn.Sequential) -> tuple[int, ...]:
    """The order to run ``seq``'s modules in: each max pooling right after an activation
    that commutes with it runs before that activation."""
    layers, order, i = list(seq), [], 0
    while i < len(layers):
        if (i + 1 < len(layers) and _commutes_with_max(layers[i])
                and isinstance(layers[i + 1], nn.MaxPool2d) and not layers[i + 1].return_indices):
            order += [i + 1, i]
            i += 2
        else:
            order.append(i)
            i += 1
    return tuple(order)


def _fusable(seq: nn.Sequential, order: tuple[int, ...]) -> bool:
    """Whether a convolution runs right before a 2x2 max pooling in ``order``."""
    layers = [list(seq)[i] for i in order]
    return any(isinstance(a, nn.Conv2d) and is_2x2_pool(b) for a, b in zip(layers, layers[1:]))


def accelerate(model: nn.Module) -> nn.Module:
    """Swap in the fast layers, reorder what commutes, channels_last (in place; returns the
    model). Idempotent; the same parameters, so call it before building the optimizer."""
    for module in model.modules():
        twin = FAST_TWINS.get(type(module))
        if twin is not None:
            module.__class__ = twin
    for module in model.modules():
        if type(module) in (nn.Sequential, Sequential):
            order = execution_order(module)
            if order != tuple(range(len(module))) or _fusable(module, order):
                module.__class__ = Sequential
                module.execution_order = None if order == tuple(range(len(module))) else order
    return to_channels_last(model)


def is_accelerated(model: nn.Module) -> bool:
    """Whether :func:`accelerate` has swapped any fast layer into ``model``."""
    fast = (*FAST_TWINS.values(), Sequential)
    return any(type(m) in fast for m in model.modules())
