"""``reader``: the best digit reader in LeNet-5's parameter budget (61,706), for people's writing.

LeNet-5's layout (LeCun, Bottou, Bengio & Haffner, Proc. IEEE 1998): C1 5x5 convolution,
S2 2x2 pooling, C3 5x5 convolution, S4 2x2 pooling, C5 a 5x5 convolution down to 1x1, then
the output layer. What changed, from what the field has learned since (each change is
measured on a validation split in docs/reader.md):

- **ReLU and max pooling** instead of the scaled tanh and trainable average subsampling
  (Nair & Hinton 2010; Jarrett et al. 2009): the ``modern`` variant's choice.
- **Batch normalization** after every convolution (Ioffe & Szegedy, "Batch Normalization:
  Accelerating Deep Network Training by Reducing Internal Covariate Shift", ICML 2015),
  whose bias replaces the convolution's.
- **Parameters moved from the classifier into the convolutions**: LeNet-5 spends 48,120 of
  its 61,706 parameters on C5 over 16 maps and 10,164 on F6. Here C1 and C3 are wider
  (wide, shallow feature extractors pay off on small images: Zagoruyko & Komodakis, "Wide
  Residual Networks", BMVC 2016), C5 narrower, and F6 goes.
- **Dropout** before the output layer (Srivastava et al., JMLR 2014), off by default.

The training recipe (``lenet5.training.recipes``: label smoothing, a moving average of the
weights, the ``writing`` augmentation of ``lenet5.training.augment``) is what ``lenet5 train
--model reader`` does; the input is MNIST's 28x28 padded to 32x32, as for the rest of the
family.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from torch import nn

from .registry import register_model


@dataclass(frozen=True)
class ReaderConfig:
    """The shape of the network: maps per layer and the normalization."""

    c1: int = 16  # maps of C1 (LeNet-5: 6)
    c2: int = 0  # maps of a 3x3 convolution on S2's maps, before C3 (0: none; LeNet-5: none)
    c3: int = 32  # maps of C3 (LeNet-5: 16)
    c5: int = 56  # units of C5 (LeNet-5: 120, then F6 with 84)
    f6: int = 0  # units of an F6 layer after C5 (0: none)
    norm: bool = True  # batch normalization after each convolution
    dropout: float = 0.0  # before the output layer


def _block(cin: int, cout: int, norm: bool, n: int, pool: bool, kernel: int = 5,
           padding: int = 0) -> list[tuple[str, nn.Module]]:
    """C<n> (5x5), batch norm, ReLU, then S<n+1> (2x2 max pooling) if ``pool``: the
    family's order, so that C1's maps are the same thing here as in every other model."""
    layers: list[tuple[str, nn.Module]] = [
        (f"c{n}", nn.Conv2d(cin, cout, kernel, padding=padding, bias=not norm))]
    if norm:
        layers.append((f"bn{n}", nn.BatchNorm2d(cout)))
    layers.append((f"act{n}", nn.ReLU()))
    if pool:
        layers.append((f"s{n + 1}", nn.MaxPool2d(2)))
    return layers


class Reader(nn.Module):
    """C1-S2-C3-S4-C5 in ``features`` (C5 a 5x5 convolution to 1x1, as in the paper),
    then F6 (optional) and the output in ``classifier``."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1,
                 config: ReaderConfig = ReaderConfig()):
        super().__init__()
        c = config
        self.config = config
        mid = c.c2 or c.c1
        self.features = nn.Sequential(OrderedDict([
            *_block(in_channels, c.c1, c.norm, 1, pool=True),  # c1 x 28 x 28 -> 14 x 14
            *(_block(c.c1, c.c2, c.norm, 2, pool=False, kernel=3, padding=1) if c.c2 else []),
            *_block(mid, c.c3, c.norm, 3, pool=True),  # c3 x 10 x 10 -> 5 x 5
            *_block(c.c3, c.c5, c.norm, 5, pool=False),  # c5 x 1 x 1
        ]))
        classifier: list[tuple[str, nn.Module]] = [("flatten", nn.Flatten())]
        width = c.c5
        if c.f6:
            classifier += [("f6", nn.Linear(width, c.f6)), ("act6", nn.ReLU())]
            width = c.f6
        if c.dropout > 0:
            classifier.append(("drop", nn.Dropout(c.dropout)))
        classifier.append(("output", nn.Linear(width, num_classes)))
        self.classifier = nn.Sequential(OrderedDict(classifier))

    def forward(self, x):
        return self.classifier(self.features(x))


@register_model("reader")
def reader(num_classes: int = 10, in_channels: int = 1, **config) -> Reader:
    """LeNet-5's budget for people's writing: batch norm, wider convolutions, augmentation."""
    return Reader(num_classes, in_channels, ReaderConfig(**config))
