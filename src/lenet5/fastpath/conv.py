"""Convolutions and the flatten after them, faster in training with LeNet's few channels.

oneDNN's NHWC kernels are written for many channels; LeNet's maps have 6 and 16. Where the
stock kernel runs in its scalar tails, the layers here take another route to the same
values (figures: benchmarks/README.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .compat import conv_weight_and_bias_grads
from .layout import plain_window, training_nhwc


class _ConvFewInputChannels(torch.autograd.Function):
    """A stride-1 convolution of an NHWC input with few channels, whose input gradient is
    computed in NCHW.

    oneDNN's NHWC backward-data kernel writes the input gradient one pixel's few channels
    at a time (LeNet's C3: 6 input maps); converting the gradient and weight to NCHW and
    back is faster. The forward pass and the weight and bias gradients stay NHWC, where
    they are fastest.
    """

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return F.conv2d(x, weight, bias)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad
        grad_w = grad_b = grad_x = None
        if need_w or need_b:
            grad_w, grad_b = conv_weight_and_bias_grads(grad, x, weight, ctx.has_bias,
                                                        need_w, need_b)
        if need_x:
            grad_x = torch.nn.grad.conv2d_input(x.shape, weight.contiguous(), grad.contiguous())
            grad_x = grad_x.contiguous(memory_format=torch.channels_last)
        return grad_x, grad_w, grad_b


def conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
           stride=1, padding=0, dilation=1, groups: int = 1) -> torch.Tensor:
    """``F.conv2d``; in training, an NHWC input of 2 to 15 channels at stride 1 without
    padding (LeNet's C3) takes :class:`_ConvFewInputChannels`. Same values, same autocast."""
    if (not plain_window(stride, padding, dilation, groups) or not training_nhwc(x)
            or not 1 < x.shape[1] < 16 or x.device.type != "cpu"):
        return F.conv2d(x, weight, bias, stride, padding, dilation, groups)
    return apply_as_convolution(_ConvFewInputChannels, x, weight, bias)


def apply_as_convolution(function: type[torch.autograd.Function], x: torch.Tensor,
                         weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``function.apply(x, weight, bias)`` with the operands cast as CPU autocast casts a
    convolution's (when it is on), the function itself running outside autocast."""
    if torch.is_autocast_enabled("cpu"):
        dtype = torch.get_autocast_dtype("cpu")
        x, weight = x.to(dtype), weight.to(dtype)
        bias = None if bias is None else bias.to(dtype)
    with torch.autocast("cpu", enabled=False):
        return function.apply(x, weight, bias)


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` whose training step is faster with few input channels (:func:`conv2d`).
    Same parameters, state dict and exported graph."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding_mode != "zeros":
            return super().forward(x)
        return conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                      self.groups)


class _FlattenNHWC(torch.autograd.Function):
    """``x.flatten(1)`` of an NHWC tensor whose gradient goes back NHWC.

    The flattened copy is in NCHW order, so its gradient, viewed as 4-D, is NCHW; the
    activation before the flatten saved its output NHWC, and an elementwise backward over
    two layouts takes a slow path, many times slower than this conversion.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.shape = x.shape
        return x.contiguous().view(x.shape[0], -1)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad.reshape(ctx.shape).contiguous(memory_format=torch.channels_last)


class Flatten(nn.Flatten):
    """``nn.Flatten`` whose gradient keeps an NHWC input's layout (:class:`_FlattenNHWC`)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.start_dim == 1 and self.end_dim == -1 and training_nhwc(x):
            return _FlattenNHWC.apply(x)
        return super().forward(x)
