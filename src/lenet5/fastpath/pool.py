"""2x2 max pooling, faster where PyTorch's CPU kernel is slow for LeNet's maps."""

from __future__ import annotations

import torch
from torch import nn

from .layout import capturing_graph, is_nhwc, pair


def is_2x2_pool(pool: nn.Module) -> bool:
    """A max pooling of 2x2 windows at stride 2, without padding or indices."""
    return (isinstance(pool, nn.MaxPool2d) and pair(pool.kernel_size) == (2, 2)
            and pair(pool.stride) == (2, 2) and pair(pool.padding) == (0, 0)
            and pair(pool.dilation) == (1, 1) and not pool.return_indices)


def pool_2x2(x: torch.Tensor) -> torch.Tensor:
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

    The masks are floats, not bools: on CPU the elementwise kernels that read or write
    bools are many times slower than float arithmetic.
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


class MaxPool2d(nn.MaxPool2d):
    """``nn.MaxPool2d``, faster on 2x2 windows at stride 2 (LeNet's S2 and S4).

    PyTorch's CPU max-pool kernel vectorizes over channels, so LeNet's S2 (6 maps in
    channels_last) runs in its scalar tail, and it writes int64 indices for the backward:

    - without autograd (evaluation, prediction): two elementwise ``torch.maximum`` of
      strided views, exactly the same values (NaN propagates the same);
    - training, an NHWC input of fewer than 16 channels (S2): the same forward keeping two
      0/1 masks, and a backward through them (:class:`_MaxPool2x2`). With 16 channels
      (S4) the native kernel is faster and is kept;
    - other windows, odd sizes, tracing and export: the native op, so exported graphs hold
      a plain MaxPool.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (x.dim() != 4 or x.shape[-2] % 2 or x.shape[-1] % 2 or capturing_graph()
                or not is_2x2_pool(self)):
            return super().forward(x)
        if not torch.is_grad_enabled():
            return pool_2x2(x)
        if x.shape[1] < 16 and is_nhwc(x):
            return _MaxPool2x2.apply(x)
        return super().forward(x)
