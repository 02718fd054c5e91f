"""The settings that make training and evaluation fast, for any registered model.

Measured on 2 CPU cores (figures and the things that did not help: benchmarks/README.md):

- **channels_last**: convolution and pooling kernels of oneDNN work on NHWC; with the
  weights in NHWC every convolution runs without reordering. A 1-channel input is the same
  memory in both layouts, so the input costs nothing to convert.
- **bfloat16 autocast** on CPUs with native bf16 (AMX or AVX-512 BF16): convolutions and
  matrix products in bf16, weights, gradients, optimizer state and loss in float32.
  ``precision="auto"`` uses it for training only where the CPU has it; evaluation stays
  float32 so the reported metrics are exact.

- **small-channel layers**: LeNet's maps have 6 and 16 channels, where the stock NHWC
  kernels run in their scalar tails; :class:`MaxPool2d` and :class:`Conv2d` (subclasses of
  the ``nn`` layers, the same function and state) take faster routes there, and
  :class:`Flatten` hands its gradient back in the layout the layer before it works in.
- **the first convolution and its pooling as one step**: :class:`Sequential` trains a
  convolution of the input followed by 2x2 max pooling (LeNet's C1 and S2) as one
  convolution over the input's 2x2 phases (:class:`_ConvMaxPool2x2`).

Nothing here is model-specific: the training loop and evaluation call these on whatever
model the registry built.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from .errors import Lenet5Error

PRECISIONS = ("auto", "fp32", "bf16")


def has_conv(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.conv._ConvNd) for m in model.modules())


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


def cpu_has_bf16() -> bool:
    """True where oneDNN runs bf16 natively (AVX-512 BF16 or AMX), so autocast pays off."""
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    try:
        return bool(check()) if check is not None else False
    except RuntimeError:
        return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` -> ``bf16`` on a CPU with native bf16, else ``fp32``."""
    if precision not in PRECISIONS:
        raise Lenet5Error(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bf16" if device.type == "cpu" and cpu_has_bf16() else "fp32"
    return precision


def autocast(device: torch.device, precision: str):
    """The context a forward pass runs in: bf16 autocast, or nothing for float32."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


class _ConvFewInputChannels(torch.autograd.Function):
    """A stride-1 convolution of an NHWC input with few channels, whose input gradient is
    computed in NCHW.

    oneDNN's NHWC backward-data kernel writes the input gradient one pixel's few channels
    at a time; for LeNet's C3 (6 input maps, bf16, a 512-image batch, 2 threads) it takes
    2.5 ms, converting the gradient and weight to NCHW and back 1.6 ms. The forward pass
    and the weight and bias gradients stay NHWC, where they are fastest.
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
            grad_w, grad_b = _weight_and_bias_grads(grad, x, weight, ctx.has_bias, need_w, need_b)
        if need_x:
            grad_x = torch.nn.grad.conv2d_input(x.shape, weight.contiguous(), grad.contiguous())
            grad_x = grad_x.contiguous(memory_format=torch.channels_last)
        return grad_x, grad_w, grad_b


def _weight_and_bias_grads(grad: torch.Tensor, x: torch.Tensor, weight: torch.Tensor,
                           has_bias: bool, need_w: bool, need_b: bool) -> tuple:
    """The weight and bias gradients (None where not needed) of a stride-1, unpadded
    convolution of ``x`` whose output gradient is ``grad``, from the native kernel."""
    _, grad_w, grad_b = torch.ops.aten.convolution_backward(
        grad, x, weight, [weight.shape[0]] if has_bias else None, [1, 1], [0, 0], [1, 1],
        False, [0, 0], 1, [False, need_w, need_b and has_bias])
    return grad_w, grad_b


def conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
           stride=1, padding=0, dilation=1, groups: int = 1) -> torch.Tensor:
    """``F.conv2d``; in training, an NHWC input of 2 to 15 channels at stride 1 without
    padding (LeNet's C3) takes :class:`_ConvFewInputChannels`. Same values, same autocast."""
    if (not _plain(stride, padding, dilation, groups) or not _training_nhwc(x)
            or not 1 < x.shape[1] < 16 or x.device.type != "cpu"):
        return F.conv2d(x, weight, bias, stride, padding, dilation, groups)
    return _apply_as_convolution(_ConvFewInputChannels, x, weight, bias)


def _apply_as_convolution(function: type[torch.autograd.Function], x: torch.Tensor,
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

    def _conv_forward(self, x, weight, bias):
        if self.padding_mode != "zeros":
            return super()._conv_forward(x, weight, bias)
        return conv2d(x, weight, bias, self.stride, self.padding, self.dilation, self.groups)


class _FlattenNHWC(torch.autograd.Function):
    """``x.flatten(1)`` of an NHWC tensor whose gradient goes back NHWC.

    The flattened copy is in NCHW order, so its gradient, viewed as 4-D, is NCHW; the
    activation before the flatten saved its output NHWC, and an elementwise backward over
    two layouts takes a slow path (ReLU's of a 256-image S4 map: 211 us against 11 us with
    both NHWC, plus 21 us for this conversion).
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
        if self.start_dim == 1 and self.end_dim == -1 and _training_nhwc(x):
            return _FlattenNHWC.apply(x)
        return super().forward(x)


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
    that move 6 bf16 channels at a time run ~2x faster as 3 int32s (benchmarks/README.md)."""
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
    picks inside the full-size map. C1 + S2 of a 256-image batch under bf16: one 14x14
    convolution to 24 maps replaces the 28x28 one to 6, whose 1-channel input oneDNN
    handles poorly; a whole training step is ~4% faster (benchmarks/README.md).

    The same function: each output is the same sum of the same products, which oneDNN may
    add in another order (exact in the tests' integer cases, a rounding apart at most
    otherwise). Backward: the pooling's choices (ties as :class:`_MaxPool2x2`, so the same
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
        # (256 MNIST images: 109 us; one copy straight into NHWC, or pixel_unshuffle, 140-490)
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
        return (None, *_weight_and_bias_grads(full, x, weight, ctx.has_bias,
                                              *ctx.needs_input_grad[1:]))


def _is_2x2_pool(pool: nn.Module) -> bool:
    """A max pooling of 2x2 windows at stride 2, without padding or indices."""
    return (isinstance(pool, nn.MaxPool2d) and _pair(pool.kernel_size) == (2, 2)
            and _pair(pool.stride) == (2, 2) and _pair(pool.padding) == (0, 0)
            and _pair(pool.dilation) == (1, 1) and not pool.return_indices)


def _fuses(conv: nn.Module, pool: nn.Module, x: torch.Tensor) -> bool:
    """Whether :class:`_ConvMaxPool2x2` computes ``pool(conv(x))``, with its gradients."""
    if not (isinstance(conv, nn.Conv2d) and _is_2x2_pool(pool)):
        return False
    k = _pair(conv.kernel_size)
    return (conv.training and x.dim() == 4 and x.device.type == "cpu"
            and torch.is_grad_enabled() and not x.requires_grad and conv.weight.requires_grad
            and x.is_contiguous(memory_format=torch.channels_last)
            and x.shape[-2] % 2 == 0 and x.shape[-1] % 2 == 0
            and k[0] == k[1] and k[0] % 2 == 1 and conv.padding_mode == "zeros"
            and _plain(conv.stride, conv.padding, conv.dilation, conv.groups)
            and not _capturing_graph())


def conv_max_pool_2x2(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """``max_pool2d(conv(x), 2)`` through :class:`_ConvMaxPool2x2` (check :func:`_fuses`
    first); under autocast, cast as autocast casts a convolution's operands."""
    return _apply_as_convolution(_ConvMaxPool2x2, x, conv.weight, conv.bias)


class Sequential(nn.Sequential):
    """``nn.Sequential`` that, in training (train mode, gradients on), runs a convolution of
    an input needing no gradient followed by 2x2 max pooling (LeNet's C1, S2) as one step
    (:class:`_ConvMaxPool2x2`). The same modules, state dict and values; those two modules'
    own forward hooks do not run on that route (evaluation, prediction and export take the
    modules one by one)."""

    def forward(self, x):
        layers = list(self._modules.values())
        i = 0
        while i < len(layers):
            if i + 1 < len(layers) and _fuses(layers[i], layers[i + 1], x):
                x = conv_max_pool_2x2(x, layers[i])
                i += 2
            else:
                x = layers[i](x)
                i += 1
        return x


def _pool_2x2(x: torch.Tensor) -> torch.Tensor:
    """2x2/stride-2 max pooling as two elementwise maximums of strided views."""
    rows = torch.maximum(x[..., 0::2, :], x[..., 1::2, :])
    return torch.maximum(rows[..., 0::2], rows[..., 1::2])


class _MaxPool2x2(torch.autograd.Function):
    """2x2/stride-2 max pooling of an NHWC tensor, with a backward through two 0/1 masks.

    Works on the memory order ``(n, h, w, c)``. Forward: the maximum of each row pair
    (views whose contiguous runs are whole rows), then of each column pair of those; a mask
    in the tensor's own dtype keeps which of each pair won (the second only when strictly
    greater, so a tie goes to the top-left element, as with the native kernel when all four
    are equal). Backward routes the gradient back through the two choices with multiplies
    and two ``stack``s. Two ties that are not all four can pick another winner than the
    native kernel: a different but equally valid subgradient.

    The masks are floats, not bools, because on CPU the elementwise kernels that read or
    write bools are many times slower than float arithmetic (300,000 elements: ``a > b``
    into a bool 54 us, into a float 19 us; ``a * mask`` 708 us with a bool mask, 19 us with
    a float one; benchmarks/README.md).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        pairs = x.permute(0, 2, 3, 1).view(n, h // 2, 2, w // 2, 2, c)  # a view: x is NHWC
        top, bottom = pairs[:, :, 0], pairs[:, :, 1]
        rows = torch.maximum(top, bottom)  # (n, h/2, w/2, 2, c)
        bottom_won = torch.gt(bottom, top, out=torch.empty_like(rows))
        left, right = rows[..., 0, :], rows[..., 1, :]
        out = torch.maximum(left, right)  # (n, h/2, w/2, c)
        right_won = torch.gt(right, left, out=torch.empty_like(out))
        ctx.save_for_backward(bottom_won, right_won)
        return out.permute(0, 3, 1, 2)  # (n, c, h/2, w/2), NHWC in memory

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        bottom_won, right_won = ctx.saved_tensors
        n, h2, w2, _, c = bottom_won.shape
        grad = grad.permute(0, 2, 3, 1)  # (n, h/2, w/2, c)
        right = grad * right_won
        grad_rows = torch.stack([grad - right, right], dim=3)  # (n, h/2, w/2, 2, c)
        bottom = grad_rows * bottom_won
        grad_x = torch.stack([grad_rows - bottom, bottom], dim=2)  # (n, h/2, 2, w/2, 2, c)
        return grad_x.view(n, 2 * h2, 2 * w2, c).permute(0, 3, 1, 2)


def _is_nhwc(x: torch.Tensor) -> bool:
    return x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


def _training_nhwc(x: torch.Tensor) -> bool:
    """A 4-D NHWC tensor on its way through a backward pass, outside graph capture: where
    the layers here take their training routes."""
    return (x.dim() == 4 and _is_nhwc(x) and torch.is_grad_enabled() and x.requires_grad
            and not _capturing_graph())


def _plain(stride, padding, dilation, groups: int) -> bool:
    """A convolution at stride 1, without padding, dilation or groups: the kind the custom
    convolutions here compute."""
    return (_pair(stride) == (1, 1) and _pair(padding) == (0, 0) and _pair(dilation) == (1, 1)
            and groups == 1)


def _pair(v) -> tuple:
    """A layer's size argument as a tuple: 2 -> (2, 2); a string (``padding="same"``) is
    returned as a tuple of characters, which equals no size."""
    return (v, v) if isinstance(v, int) else tuple(v)


def _capturing_graph() -> bool:
    """Tracing (ONNX export) or torch.compile: the native ops, so graphs hold plain layers."""
    return torch.jit.is_tracing() or torch.compiler.is_compiling()


class MaxPool2d(nn.MaxPool2d):
    """``nn.MaxPool2d``, faster on 2x2 windows at stride 2 (LeNet's S2 and S4).

    PyTorch's CPU max-pool kernel vectorizes over channels, so LeNet's S2 (6 maps in
    channels_last) runs in its scalar tail, and it writes int64 indices for the backward.
    Here (measured in benchmarks/README.md):

    - without autograd (evaluation, prediction): two elementwise ``torch.maximum`` of
      strided views, exactly the same values (NaN propagates the same); S2 of a 512-image
      batch 6.4 -> 0.9 ms, S4 0.42 -> 0.25 ms on one thread;
    - training, an NHWC input of fewer than 16 channels (S2): the same forward keeping two
      0/1 masks, and a backward through them (:class:`_MaxPool2x2`); S2 of a 512-image
      batch under bf16 autocast, forward + backward 5.7 -> 2.0 ms on two threads. With 16
      channels (S4) the native kernel is faster and is kept;
    - other windows, odd sizes, tracing and export: the native op, so exported graphs hold
      a plain MaxPool.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (x.dim() != 4 or x.shape[-2] % 2 or x.shape[-1] % 2 or _capturing_graph()
                or not _is_2x2_pool(self)):
            return super().forward(x)
        if not torch.is_grad_enabled():
            return _pool_2x2(x)
        if x.shape[1] < 16 and _is_nhwc(x):
            return _MaxPool2x2.apply(x)
        return super().forward(x)
