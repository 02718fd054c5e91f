"""What makes training and evaluation fast, for any registered model.

``accelerate(model)`` (after ``create_model``, before the optimizer) swaps in the fast
layers, runs what commutes in the faster order and puts the weights in channels_last:
the same weights, state-dict keys and function (``accelerate.py``). The rest:

- ``precision.py``: bf16 autocast for training where the CPU runs oneDNN's bf16 kernels;
- ``layout.py``: channels_last weights and inputs;
- ``conv.py``, ``pool.py``, ``fused.py``: the fast layers (few-channel convolutions, 2x2
  max pooling, C1 + S2 as one convolution);
- ``compat.py``: the private PyTorch APIs they use, each with a public fallback
  (``LENET5_PUBLIC_TORCH=1`` forces the fallbacks).

Nothing here is keyed on a model's name; figures and what was tried: benchmarks/README.md.
"""

from .accelerate import FAST_TWINS, accelerate, execution_order, is_accelerated
from .compat import PUBLIC_TORCH_ENV, cpu_has_bf16, public_only
from .conv import Conv2d, Flatten, conv2d
from .fused import Sequential
from .layout import has_conv, input_memory_format, to_channels_last
from .pool import MaxPool2d
from .precision import PRECISIONS, autocast, resolve_precision

__all__ = [
    "FAST_TWINS",
    "PRECISIONS",
    "PUBLIC_TORCH_ENV",
    "Conv2d",
    "Flatten",
    "MaxPool2d",
    "Sequential",
    "accelerate",
    "autocast",
    "conv2d",
    "cpu_has_bf16",
    "execution_order",
    "has_conv",
    "input_memory_format",
    "is_accelerated",
    "public_only",
    "resolve_precision",
    "to_channels_last",
]
