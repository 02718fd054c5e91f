"""Memory layout: channels_last (NHWC) weights and inputs, and the checks every fast layer
makes before it takes its own route.

oneDNN's convolution and pooling kernels work on NHWC; with the weights in NHWC every
convolution runs without reordering. A 1-channel input is the same memory in both
layouts, so the input costs nothing to convert.
"""

from __future__ import annotations

import torch
from torch import nn

_CONVOLUTIONS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
                 nn.ConvTranspose3d)


def has_conv(model: nn.Module) -> bool:
    return any(isinstance(m, _CONVOLUTIONS) for m in model.modules())


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


def is_nhwc(x: torch.Tensor) -> bool:
    return x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


def capturing_graph() -> bool:
    """Tracing (ONNX export) or torch.compile: the native ops, so graphs hold plain layers."""
    return torch.jit.is_tracing() or torch.compiler.is_compiling()


def training_nhwc(x: torch.Tensor) -> bool:
    """A 4-D NHWC tensor on its way through a backward pass, outside graph capture: where
    the layers here take their training routes."""
    return (x.dim() == 4 and is_nhwc(x) and torch.is_grad_enabled() and x.requires_grad
            and not capturing_graph())


def pair(v) -> tuple:
    """A layer's size argument as a tuple: 2 -> (2, 2); a string (``padding="same"``) is
    returned as a tuple of characters, which equals no size."""
    return (v, v) if isinstance(v, int) else tuple(v)


def plain_window(stride, padding, dilation, groups: int) -> bool:
    """A convolution at stride 1, without padding, dilation or groups: the kind the custom
    convolutions here compute."""
    return (pair(stride) == (1, 1) and pair(padding) == (0, 0) and pair(dilation) == (1, 1)
            and groups == 1)
