"""LeNet-5 swept over a whole line of digits: the paper's SDNN and a CTC reader.

Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, "Gradient-Based Learning Applied to Document
Recognition", Proc. IEEE 86(11):2278-2324, 1998, section VII (Space Displacement Neural
Networks) and VI.B (the "forward" training criterion, of which CTC is the modern form:
A. Graves et al., "Connectionist Temporal Classification", ICML 2006).

A convolutional network can be applied to an image wider than its input in one pass: with
C5 a 5x5 convolution and F6 and the output 1x1 convolutions, LeNet-5 on a 32-pixel-high
strip of any width W gives one output vector per 4-pixel shift of its 32x32 window,
(W - 32) / 4 + 1 of them, each exactly what LeNet-5 would say about that window alone.

=================  ===================================================  ======
layer              what it is                                           params
=================  ===================================================  ======
C1                 6 maps, 5x5 convolution                                 156
S2                 2x2 max pooling, ReLU
C3                 16 maps, 5x5 over Table I's subsets of S2's maps      1,516
S4                 2x2 max pooling, ReLU
C5                 120 maps, 5x5 convolution, ReLU: one column per shift  48,120
F6                 84 units (1x1 convolution), ReLU                     10,164
output             11 classes (1x1 convolution): ten digits + "none"       935
=================  ===================================================  ======

60,891 parameters: the paper's C3 connection table keeps both readers within the 61,706 of
LeNet-5 with a full C3 and ten outputs (a full C3 and eleven outputs would be 61,791).
ReLU and max pooling, as ``modern`` (the better of the family on MNIST), not the paper's
scaled tanh and trainable subsampling.

- ``lenet5-sdnn``: the paper's SDNN. Trained as a classifier of 32x32 windows (a central
  digit with random neighbours, or no central digit: class 10, "none"; see
  ``data/strings.py``), read by sweeping it over the line and decoding the output strip
  with the paper's character model (``reading/transducer.py``).
- ``lenet5-ctc``: the same layers trained on whole strings with ``nn.CTCLoss`` (class 10
  the blank), one output per 2-pixel shift: S4 pools with a horizontal stride of 1 and C5
  skips every other column (dilation 2), which is the 4-pixel sweep run twice, 2 pixels
  apart, interleaved. Repeated narrow digits ("11" written tight) need a blank between
  them, and at 4 pixels there is not always room for it. Batch normalization after C1,
  C3, C5 and F6 (452 parameters more: 61,343): with it, at twice the rate and batch, the
  training loss after 20 epochs is 0.044, against 0.059 without it at 3e-3 and batch 32,
  and the test figures are better too (docs/reading.md).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn

from .lenet1998 import C3_TABLE, PartialConv2d
from .registry import Preprocess, register_model

WINDOW = 32  # pixels of line each output sees (LeNet-5's input)
# The strips are 32 pixels high already (data/strings.py): no padding.
STRIP_PREPROCESS = Preprocess(pad=0)


@dataclass(frozen=True)
class StripConfig:
    """The shape of a strip reader: maps per layer (LeNet-5's by default), C3's connections,
    normalization, and the sweep's stride."""

    c1: int = 6  # maps of C1
    c3: int = 16  # maps of C3 ...
    c3_table: bool = True  # ... connected as the paper's Table I (needs c1 6, c3 16), or fully
    c5: int = 120  # units of C5
    f6: int = 84  # units of F6 (0: none, the output reads C5)
    context: int = 0  # taps of a depthwise convolution across the outputs after C5 (0: none)
    norm: bool = False  # batch normalization after every convolution but the output
    stride: int = 4  # input pixels between output columns: 4, or 2 (S4 and C5 interleaved)


class StripNet(nn.Module):
    """LeNet-5's layers over a (B, 1, 32, W) strip: scores (B, num_classes + 1, T), one
    column per ``stride`` pixels, column t seeing input columns [stride * t, stride * t + 32);
    the last class is "none" (the SDNN) or the blank (CTC)."""

    objective = "sdnn"  # how its output strip is trained and decoded (reading/objectives.py)

    def __init__(self, num_classes: int = 10, in_channels: int = 1,
                 config: StripConfig = StripConfig()):
        super().__init__()
        c = self.config = config
        if c.stride not in (2, 4):
            raise ValueError(f"stride must be 2 or 4, not {c.stride}")
        if c.c3_table and (c.c1, c.c3) != (6, 16):
            raise ValueError("the paper's C3 table connects 6 maps to 16: set c3_table=False")
        self.stride = c.stride
        self.blank = num_classes  # "none" (SDNN) or CTC's blank: the class after the digits
        fine = c.stride == 2  # S4 keeps every column, C5 reads every other one

        def bn(layer: int, n: int) -> list[tuple[str, nn.Module]]:
            return [(f"bn{layer}", nn.BatchNorm2d(n))] if c.norm else []

        c3 = PartialConv2d(C3_TABLE, kernel_size=5) if c.c3_table else \
            nn.Conv2d(c.c1, c.c3, kernel_size=5)
        self.features = nn.Sequential(OrderedDict([  # LeNet-5's order
            ("c1", nn.Conv2d(in_channels, c.c1, kernel_size=5)),  # c1 x 28 x (W - 4)
            *bn(1, c.c1),
            ("act1", nn.ReLU()),
            ("s2", nn.MaxPool2d(2)),  # c1 x 14 x (W - 4) / 2
            ("c3", c3),  # c3 x 10
            *bn(3, c.c3),
            ("act3", nn.ReLU()),
            ("s4", nn.MaxPool2d(2, stride=(2, 1) if fine else 2)),  # c3 x 5
            ("c5", nn.Conv2d(c.c3, c.c5, kernel_size=5, dilation=(1, 2) if fine else 1)),  # 1 row
            *bn(5, c.c5),
            ("act5", nn.ReLU()),
        ]))
        head: list[tuple[str, nn.Module]] = []
        width = c.c5
        if c.context:  # each output also sees its neighbours' C5 maps, 2 outputs apart
            head += [("context", nn.Conv2d(c.c5, c.c5, (1, c.context), dilation=(1, 2),
                                           padding=(0, c.context - 1), groups=c.c5)),
                     *bn(7, c.c5), ("act7", nn.ReLU())]
        if c.f6:
            head += [("f6", nn.Conv2d(width, c.f6, kernel_size=1)), *bn(6, c.f6), ("act6", nn.ReLU())]
            width = c.f6
        head.append(("output", nn.Conv2d(width, num_classes + 1, kernel_size=1)))
        self.classifier = nn.Sequential(OrderedDict(head))
        if c.c3_table:  # C3's kernels as nn.Conv2d would start a full C3
            bound = 1 / (6 * 25) ** 0.5
            nn.init.uniform_(self.features.c3.weight, -bound, bound)
            nn.init.uniform_(self.features.c3.bias, -bound, bound)

    def frames(self, width: int | torch.Tensor) -> int | torch.Tensor:
        """Output columns for an input ``width`` (an int or a tensor of widths)."""
        return (width - WINDOW) // self.stride + 1

    def centre(self, t: int | torch.Tensor) -> float | torch.Tensor:
        """The input column at the centre of output column ``t``'s window."""
        return self.stride * t + WINDOW / 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x)).squeeze(2)


class CTCNet(StripNet):
    objective = "ctc"


@register_model("lenet5-sdnn", input_size=(1, 32, 32), preprocess=STRIP_PREPROCESS,
                task="read")
def lenet5_sdnn(num_classes: int = 10, in_channels: int = 1) -> StripNet:
    """The paper's SDNN: LeNet-5 swept over a line, one output per 4 pixels, + "none"."""
    return StripNet(num_classes, in_channels, StripConfig())


@register_model("lenet5-ctc", input_size=(1, 32, 32), preprocess=STRIP_PREPROCESS,
                task="read")
def lenet5_ctc(num_classes: int = 10, in_channels: int = 1, stride: int = 2,
               norm: bool = True) -> CTCNet:
    """LeNet-5's layers with batch norm trained on whole strings with CTC, an output per 2 px."""
    return CTCNet(num_classes, in_channels, StripConfig(norm=norm, stride=stride))


@register_model("reader-ctc", input_size=(1, 32, 32), preprocess=STRIP_PREPROCESS,
                task="read")
def reader_ctc(num_classes: int = 10, in_channels: int = 1, c1: int = 16, c3: int = 48,
               c5: int = 96, context: int = 5) -> CTCNet:
    """The reader's layers over a line, each output seeing its neighbours', trained with CTC.

    Wider C1 and C3 than LeNet-5, a full C3, no F6 (models/reader.py), wider again than the
    reader (a line asks more of them: docs/reading.md), and a depthwise convolution across
    the outputs after C5 (``context`` taps, 2 outputs apart)."""
    return CTCNet(num_classes, in_channels, StripConfig(c1=c1, c3=c3, c3_table=False, c5=c5, f6=0,
                                                       context=context, norm=True, stride=2))
