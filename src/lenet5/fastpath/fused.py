"""LeNet's C1 and S2 trained as one step, and the ``Sequential`` that runs its layers in the
order :func:`~lenet5.fastpath.accelerate` chose."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .compat import conv_weight_and_bias_grads
from .conv import apply_as_convolution
from .layout import capturing_graph, pair, plain_window
from .pool import is_2x2_pool

_PHASE_INDEX: dict[tuple[int, int, int], torch.Tensor] = {}


def _phase_index(out_channels: int, in_channels: int, k: int) -> torch.Tensor:
    """Where each weight of the phase convolution comes from in a (O, C, k, k) kernel.

    Output phase (dy, dx) at (Y, X) is ``sum w[o, c, i, j] x[c, 2Y+dy+i, 2X+dx+j]``; with
    ``2Y+dy+i = 2(Y+a)+py`` that is weight ``[(dy,dx), o, (c,py,px), a, b]`` of a stride-1
    convolution of the space-to-depth input. Positions no weight maps to hold the index
    ``O*C*k*k``, one past the end, where a zero is appended.
    """
    key = (out_channels, in_channels, k)
    if key not in _PHASE_INDEX:
        kp = k // 2 + 1
        index = torch.full((4, out_channels, in_channels, 2, 2, kp, kp),
                           out_channels * in_channels * k * k)
        source = torch.arange(out_channels * in_channels * k * k).view(out_channels, in_channels, k, k)
        for dy in (0, 1):
            for dx in (0, 1):
                for i in range(k):
                    for j in range(k):
                        a, py = divmod(dy + i, 2)
                        b, px = divmod(dx + j, 2)
                        index[2 * dy + dx, :, :, py, px, a, b] = source[:, :, i, j]
        _PHASE_INDEX[key] = index.view(4 * out_channels, 4 * in_channels, kp, kp)
    return _PHASE_INDEX[key]


def _as_words(t: torch.Tensor) -> torch.Tensor:
    """A contiguous tensor's last dimension as 4-byte words where it packs evenly: copies
    that move 6 bf16 channels at a time run faster as 3 int32s."""
    if t.element_size() == 2 and t.shape[-1] % 2 == 0:
        return t.view(torch.int32)
    return t


def _from_words(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return t.view(dtype) if t.dtype != dtype else t


class _ConvMaxPool2x2(torch.autograd.Function):
    """A stride-1 convolution of an input that needs no gradient, then 2x2/stride-2 max
    pooling, as one convolution over the input's four 2x2 phases (LeNet's C1 and S2).

    The pooling takes the maximum of the four convolution outputs at (2Y+dy, 2X+dx),
    dy, dx in {0, 1}: four *phases* of the output map. Space-to-depth turns the input into
    its phases as channels, ``(N, C, H, W) -> (N, 4C, H/2, W/2)``, and every output phase
    is a stride-1 convolution of that with a (k//2 + 1)-wide kernel gathered from the
    original one (:func:`_phase_index`). So one convolution to 4x the maps computes all four
    phases, and the pooling is three elementwise maximums of whole maps instead of strided
    picks inside the full-size map; oneDNN handles the 1-channel input of the original
    convolution poorly.

    The same function: each output is the same sum of the same products, which oneDNN may
    add in another order (exact in the tests' integer cases, a rounding apart at most
    otherwise). Backward: the pooling's choices (ties as the fast max pooling, so the same
    gradients) route the gradient to the winning phase, the four phase gradients are
    interleaved into the full-size map, and the weight and bias gradients are the original
    convolution's. The input gets no gradient.
    """

    @staticmethod
    def forward(ctx, x, weight, bias):
        n, c, h, w = x.shape
        out_channels, k = weight.shape[0], weight.shape[-1]
        flat = torch.cat([weight.flatten(), weight.new_zeros(1)])
        phase_weight = flat[_phase_index(out_channels, c, k)].contiguous(
            memory_format=torch.channels_last)
        # space-to-depth, channel (c, py, px): through NCHW, two copies with long runs
        # (faster than one copy straight into NHWC, or pixel_unshuffle)
        phases_in = (x.contiguous().view(n, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
                     .reshape(n, 4 * c, h // 2, w // 2).contiguous(memory_format=torch.channels_last))
        y = F.conv2d(phases_in, phase_weight, None if bias is None else bias.repeat(4))
        _, _, ph, pw = y.shape  # NHWC: (n, ph, pw, [phase, o]) in memory
        words = _as_words(y.permute(0, 2, 3, 1).contiguous()).view(n, ph, pw, 4, -1)
        p00, p01, p10, p11 = _from_words(words.permute(3, 0, 1, 2, 4).contiguous(),
                                         y.dtype).view(4, n, ph, pw, out_channels)
        left, right = torch.maximum(p00, p10), torch.maximum(p01, p11)  # column maxima
        out = torch.maximum(left, right)
        bottom_left = torch.gt(p10, p00, out=torch.empty_like(out))
        bottom_right = torch.gt(p11, p01, out=torch.empty_like(out))
        right_won = torch.gt(right, left, out=torch.empty_like(out))
        ctx.save_for_backward(x, weight, bottom_left, bottom_right, right_won)
        ctx.has_bias = bias is not None
        return out.permute(0, 3, 1, 2)  # (n, o, ph, pw), NHWC in memory

    @staticmethod
    def backward(ctx, grad):
        x, weight, bottom_left, bottom_right, right_won = ctx.saved_tensors
        grad = grad.permute(0, 2, 3, 1).contiguous()  # (n, ph, pw, o)
        right = grad * right_won
        left = grad - right
        g10, g11 = left * bottom_left, right * bottom_right
        g00, g01 = left - g10, right - g11
        top = torch.stack([_as_words(g00), _as_words(g01)], dim=3)  # (n, ph, pw, 2, o)
        bottom = torch.stack([_as_words(g10), _as_words(g11)], dim=3)
        n, ph, pw, out_channels = grad.shape
        full = _from_words(torch.stack([top, bottom], dim=2), grad.dtype)
        full = full.view(n, 2 * ph, 2 * pw, out_channels).permute(0, 3, 1, 2)
        return (None, *conv_weight_and_bias_grads(full, x, weight, ctx.has_bias,
                                                  *ctx.needs_input_grad[1:]))


def fuses(conv: nn.Module, pool: nn.Module, x: torch.Tensor) -> bool:
    """Whether :class:`_ConvMaxPool2x2` computes ``pool(conv(x))``, with its gradients."""
    if not (isinstance(conv, nn.Conv2d) and is_2x2_pool(pool)):
        return False
    k = pair(conv.kernel_size)
    return (conv.training and x.dim() == 4 and x.device.type == "cpu"
            and torch.is_grad_enabled() and not x.requires_grad and conv.weight.requires_grad
            and x.is_contiguous(memory_format=torch.channels_last)
            and x.shape[-2] % 2 == 0 and x.shape[-1] % 2 == 0
            and k[0] == k[1] and k[0] % 2 == 1 and conv.padding_mode == "zeros"
            and plain_window(conv.stride, conv.padding, conv.dilation, conv.groups)
            and not capturing_graph())


def conv_max_pool_2x2(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """``max_pool2d(conv(x), 2)`` through :class:`_ConvMaxPool2x2` (check :func:`fuses`
    first); under autocast, cast as autocast casts a convolution's operands."""
    return apply_as_convolution(_ConvMaxPool2x2, x, conv.weight, conv.bias)


class Sequential(nn.Sequential):
    """``nn.Sequential`` that runs its modules in ``execution_order`` (indices into its
    modules; None: as listed), and in training (train mode, gradients on) runs a
    convolution of an input needing no gradient followed by 2x2 max pooling (LeNet's C1,
    S2) as one step (:class:`_ConvMaxPool2x2`). The same modules and state dict; the two
    fused modules' own forward hooks do not run on that route, and a reordered module's
    hooks see the reordered inputs (show feature maps from the plain model)."""

    execution_order: tuple[int, ...] | None = None

    def forward(self, x):
        layers = list(self)
        order = self.execution_order
        if order is not None and len(order) == len(layers):  # else changed since: as listed
            layers = [layers[i] for i in order]
        i = 0
        while i < len(layers):
            if i + 1 < len(layers) and fuses(layers[i], layers[i + 1], x):
                x = conv_max_pool_2x2(x, layers[i])
                i += 2
            else:
                x = layers[i](x)
                i += 1
        return x

    def extra_repr(self) -> str:
        if self.execution_order is None:
            return ""
        names = [name for name, _ in self.named_children()]
        return "runs " + ", ".join(names[i] for i in self.execution_order)
