"""Connections per layer, as LeCun et al. (1998) count them.

A connection is one input a unit sees, its bias counted as one more: the multiply-adds
the layer's units perform per image. The paper's LeNet-5 has 340,908 of them. Rules:

- a module with a ``connections(output_shape)`` method answers for itself (lenet5-1998's
  trainable subsampling, partial C3 and RBF output);
- Conv2d: outputs x (in_channels / groups x kernel area + 1 if bias);
- Linear: outputs x (in_features + 1 if bias);
- AvgPool2d / AdaptiveAvgPool2d: outputs x (window area + 1): the window's sum and the
  one scaling, as the paper counts its subsampling layers (4 + 1 per S2 unit);
- MaxPool2d / AdaptiveMaxPool2d: outputs x window area: each unit compares that many
  inputs (no bias, no multiply);
- everything else (activations, dropout, flatten, normalization): 0, as the paper counts
  its squashing functions.
"""

from __future__ import annotations

import math

from torch import nn


def _area(k) -> int:
    return k * k if isinstance(k, int) else math.prod(k)


def connections(module: nn.Module, input_shape: tuple[int, ...],
                output_shape: tuple[int, ...]) -> int:
    """Connections of ``module`` for one image (shapes without the batch dimension)."""
    outputs = math.prod(output_shape)
    if hasattr(module, "connections"):
        return int(module.connections(tuple(output_shape)))
    if isinstance(module, nn.Conv2d):
        per_unit = module.in_channels // module.groups * _area(module.kernel_size)
        return outputs * (per_unit + (module.bias is not None))
    if isinstance(module, nn.Linear):
        return outputs * (module.in_features + (module.bias is not None))
    if isinstance(module, (nn.AvgPool2d, nn.MaxPool2d)):
        return outputs * (_area(module.kernel_size) + isinstance(module, nn.AvgPool2d))
    if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        window = math.ceil(input_shape[-1] / output_shape[-1]) * math.ceil(
            input_shape[-2] / output_shape[-2])
        return outputs * (window + isinstance(module, nn.AdaptiveAvgPool2d))
    return 0
