"""LeNet-5 as the paper built it: ``lenet5-1998``.

Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, "Gradient-Based Learning Applied to Document
Recognition", Proc. IEEE 86(11):2278-2324, 1998, section II.B and appendices A-C.

Everything the tutorials' versions (``lenet.py``) drop is kept:

=========  ==========================================  ======  ===========
layer      what it is                                  params  connections
=========  ==========================================  ======  ===========
C1         6 maps 28x28, 5x5 convolution, squash          156      122,304
S2         6 maps 14x14, trainable 2x2 subsampling         12        5,880
C3         16 maps 10x10, 5x5 over Table I's subsets    1,516      151,600
S4         16 maps 5x5, trainable 2x2 subsampling          32        2,000
C5         120 maps 1x1, 5x5 over all 16 maps          48,120       48,120
F6         84 units, squash                            10,164       10,164
output     10 Euclidean RBF units, fixed prototypes         0          840
=========  ==========================================  ======  ===========

Totals: 60,000 trainable parameters, 340,908 connections. The squashing function is
f(a) = 1.7159 tanh(2a/3); the input is scaled so that background is -0.1 and ink 1.175
(the model's registered ``Preprocess``); weights start uniform in +-2.4 / fan-in.

Output convention: like every model in this package, ``forward`` returns scores where
larger means more likely. The paper's output units compute distances y_i (smaller is
better), so the scores are ``-y_i``; the paper's MAP loss is ``losses.map_loss`` ("map").
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .digit_bitmaps import BITMAP_COLS, BITMAP_ROWS, digit_prototypes
from .registry import Preprocess, register_model

# Table I: the S2 maps each C3 map sees. Maps 0-5 see three neighbours, 6-11 four
# neighbours, 12-14 four non-neighbours, 15 all six.
C3_TABLE: tuple[tuple[int, ...], ...] = (
    *(tuple((i + k) % 6 for k in range(3)) for i in range(6)),
    *(tuple((i + k) % 6 for k in range(4)) for i in range(6)),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)

@dataclass(frozen=True)
class LeNet1998Config:
    num_classes: int = 10
    in_channels: int = 1
    amplitude: float = 1.7159  # A in f(a) = A tanh(S a)
    slope: float = 2.0 / 3.0  # S
    init_scale: float = 2.4  # weights start uniform in +-init_scale / fan-in


class Squash(nn.Module):
    """The paper's sigmoid: f(a) = A tanh(S a), with f(+-1) = +-1 and maximal curvature there."""

    elementwise = True  # for SDLM's second-derivative pass

    def __init__(self, amplitude: float = 1.7159, slope: float = 2.0 / 3.0):
        super().__init__()
        self.amplitude, self.slope = amplitude, slope

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        return self.amplitude * torch.tanh(self.slope * a)

    def extra_repr(self) -> str:
        return f"amplitude={self.amplitude}, slope={self.slope:.4f}"


class Subsampling(nn.Module):
    """S2/S4: each unit adds its 2x2 inputs, times one trainable coefficient per map, plus
    one trainable bias per map (the squash follows as its own module).

    Exposes ``kernel_size``/``stride``/``padding``/``dilation`` like ``nn.Conv2d``.
    """

    def __init__(self, channels: int, kernel_size: int = 2):
        super().__init__()
        self.channels = channels  # one coefficient and one bias per map, no kernels across maps
        self.kernel_size = (kernel_size, kernel_size)
        self.stride = self.kernel_size
        self.padding = (0, 0)
        self.dilation = (1, 1)
        self.weight = nn.Parameter(torch.empty(channels))
        self.bias = nn.Parameter(torch.empty(channels))

    @property
    def fan_in(self) -> int:
        return self.kernel_size[0] * self.kernel_size[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # avg_pool2d * area = the sum of each window, computed by one fused kernel
        summed = F.avg_pool2d(x, self.kernel_size, self.stride) * self.fan_in
        return summed * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)

    def connections(self, output_shape: tuple[int, ...]) -> int:
        """Each unit: its k*k inputs and the bias, as the paper counts S2 (5,880)."""
        return math.prod(output_shape) * (self.fan_in + 1)

    def extra_repr(self) -> str:
        return f"{self.channels}, kernel_size={self.kernel_size}, stride={self.stride}"


class PartialConv2d(nn.Module):
    """C3: a 5x5 convolution where output map ``m`` sees only the input maps ``table[m]``.

    Only the weights of real connections exist: ``weight`` holds one 5x5 kernel per
    connection of the table (60 for Table I) and ``bias`` one per output map, 1,516
    parameters rather than the 2,416 of a full convolution. Each forward pass scatters
    the kernels into a zero (out, in, 5, 5) tensor and runs one dense convolution: on a
    CPU that is ~15x faster than grouped convolutions over gathered inputs (PyTorch's
    grouped-convolution kernels are slow there), and the zeros receive no parameter and
    pass no gradient back to anything trainable.
    """

    def __init__(self, table: tuple[tuple[int, ...], ...], kernel_size: int = 5):
        super().__init__()
        self.table = tuple(tuple(t) for t in table)
        self.in_channels = 1 + max(max(t) for t in self.table)
        self.out_channels = len(self.table)
        self.kernel_size = (kernel_size, kernel_size)
        self.stride, self.padding, self.dilation = (1, 1), (0, 0), (1, 1)
        pairs = [(m, c) for m, t in enumerate(self.table) for c in t]
        self.register_buffer("conn_out", torch.tensor([m for m, _ in pairs]), persistent=False)
        self.register_buffer("conn_in", torch.tensor([c for _, c in pairs]), persistent=False)
        self.weight = nn.Parameter(torch.empty(len(pairs), kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(self.out_channels))

    def dense_weight(self) -> torch.Tensor:
        """The (out, in, k, k) kernel of the equivalent full convolution, zero off the table."""
        dense = self.weight.new_zeros(self.out_channels, self.in_channels, *self.kernel_size)
        return dense.index_put((self.conn_out, self.conn_in), self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.dense_weight(), self.bias)

    def fan_ins(self) -> dict[str, torch.Tensor]:
        """Fan-in of the unit each weight/bias entry feeds (for the paper's initialization)."""
        k = self.kernel_size[0] * self.kernel_size[1]
        per_map = torch.tensor([len(t) * k for t in self.table], dtype=torch.float32)
        return {"weight": per_map[self.conn_out].view(-1, 1, 1), "bias": per_map}

    def connections(self, output_shape: tuple[int, ...]) -> int:
        k = self.kernel_size[0] * self.kernel_size[1]
        per_position = sum(len(t) * k + 1 for t in self.table)
        return per_position * math.prod(output_shape[1:])

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"connections={len(self.conn_out)} of {self.in_channels * self.out_channels}")


class EuclideanRBF(nn.Module):
    """Output units y_i = sum_j (x_j - w_ij)^2 against fixed prototypes (a buffer, not
    trained). Returns the scores -y_i, so that larger means more likely."""

    def __init__(self, prototypes: torch.Tensor):
        super().__init__()
        self.register_buffer("prototypes", prototypes.clone())
        self.in_features, self.out_features = prototypes.shape[1], prototypes.shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # ||x||^2 - 2 x.w + ||w||^2, one matrix product instead of a (B, 10, 84) tensor
        w = self.prototypes
        y = (x * x).sum(1, keepdim=True) - 2 * x @ w.t() + (w * w).sum(1)
        return -y

    def connections(self, output_shape: tuple[int, ...]) -> int:
        return self.in_features * self.out_features

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, fixed"


class LeNet1998(nn.Module):
    """C1-S2-C3-S4-C5 in ``features``, F6-output in ``classifier``, as in the paper."""

    def __init__(self, config: LeNet1998Config | None = None):
        super().__init__()
        cfg = self.config = config or LeNet1998Config()
        if cfg.num_classes > 10:
            raise ValueError("lenet5-1998 has prototypes for the ten digits only "
                             f"(num_classes={cfg.num_classes})")

        def squash():
            return Squash(cfg.amplitude, cfg.slope)

        self.features = nn.Sequential(OrderedDict([
            ("c1", nn.Conv2d(cfg.in_channels, 6, kernel_size=5)),  # 6 x 28 x 28
            ("act1", squash()),
            ("s2", Subsampling(6)),  # 6 x 14 x 14
            ("act2", squash()),
            ("c3", PartialConv2d(C3_TABLE, kernel_size=5)),  # 16 x 10 x 10
            ("act3", squash()),
            ("s4", Subsampling(16)),  # 16 x 5 x 5
            ("act4", squash()),
            ("c5", nn.Conv2d(16, 120, kernel_size=5)),  # 120 x 1 x 1
            ("act5", squash()),
        ]))
        self.classifier = nn.Sequential(OrderedDict([
            ("flatten", nn.Flatten()),
            ("f6", nn.Linear(120, BITMAP_ROWS * BITMAP_COLS)),  # 84
            ("act6", squash()),
            ("output", EuclideanRBF(digit_prototypes()[:cfg.num_classes])),  # 10
        ]))
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Every weight and bias uniform in +-2.4 / F, F the fan-in of the unit it feeds."""
        bound = self.config.init_scale
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                fan_in = module.weight[0].numel()
                fans = {"weight": fan_in, "bias": fan_in}
            elif isinstance(module, Subsampling):
                fans = {"weight": module.fan_in, "bias": module.fan_in}
            elif isinstance(module, PartialConv2d):
                fans = module.fan_ins()
            else:
                continue
            for name, fan in fans.items():
                param = getattr(module, name)
                param.uniform_(-1, 1).mul_(bound / fan)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


# Input scaling: background -0.1, ink 1.175 (mean ~0, variance ~1).
# x = (p/255 - mean)/std: p=0 -> -mean/std = -0.1, p=255 -> (1-mean)/std = 1.175.
PAPER_PREPROCESS = Preprocess(pad=2, mean=0.1 / 1.275, std=1 / 1.275)


@register_model("lenet5-1998", preprocess=PAPER_PREPROCESS)
def lenet5_1998(num_classes: int = 10, in_channels: int = 1) -> LeNet1998:
    """LeNet-5 as in the 1998 paper: partial C3, trainable subsampling, RBF output (60,000)."""
    return LeNet1998(LeNet1998Config(num_classes=num_classes, in_channels=in_channels))
