"""LeNet-5 as tutorials build it today, in the variants users compare against.

Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, "Gradient-Based Learning Applied to Document
Recognition", Proc. IEEE 86(11):2278-2324, 1998. The paper's own network, with its partial
C3, trainable subsampling and RBF output, is ``lenet5-1998`` in ``lenet1998.py``; the
models here keep its shape (C1-S2-C3-S4-C5-F6-output, 61,706 parameters) and swap the
parts modern practice swapped:

==================  ===========  ==============  ===================  =========================
name                activation   pooling         C5                   extras
==================  ===========  ==============  ===================  =========================
classic             tanh         average 2x2     Linear 400->120
modern              ReLU         max 2x2         Linear 400->120
classic-c5conv      tanh         average 2x2     Conv 16->120, 5x5
modern-c5conv       ReLU         max 2x2         Conv 16->120, 5x5
sigmoid             sigmoid      average 2x2     Conv 16->120, 5x5
keras               tanh         average 2x2     Linear 400->120      Dropout 0.2 after C5, F6
==================  ===========  ==============  ===================  =========================

Input: one 32x32 channel (MNIST's 28x28 padded by 2, see ``Preprocess``).
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from .registry import register_model

_ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "sigmoid": nn.Sigmoid}
_POOLS = {"avg": nn.AvgPool2d, "max": nn.MaxPool2d}


class LeNet5(nn.Module):
    """C1-S2-C3-S4 in ``features``, C5-F6-output in ``classifier``.

    With ``c5="conv"`` C5 is a 5x5 convolution over S4's 16 maps (the paper's view: 120
    maps of 1x1) and lives in ``features``; with ``c5="linear"`` it is the equivalent
    Linear(400, 120) after a flatten. Both have 48,120 parameters.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        activation: str = "tanh",
        pool: str = "avg",
        c5: str = "linear",
        dropout: float = 0.0,
    ):
        super().__init__()
        act, pool_cls = _ACTIVATIONS[activation], _POOLS[pool]
        features = OrderedDict([
            ("c1", nn.Conv2d(in_channels, 6, kernel_size=5)),  # 6 x 28 x 28
            ("act1", act()),
            ("s2", pool_cls(kernel_size=2, stride=2)),  # 6 x 14 x 14
            ("c3", nn.Conv2d(6, 16, kernel_size=5)),  # 16 x 10 x 10
            ("act3", act()),
            ("s4", pool_cls(kernel_size=2, stride=2)),  # 16 x 5 x 5
        ])
        classifier: OrderedDict[str, nn.Module] = OrderedDict(flatten=nn.Flatten())
        if c5 == "conv":
            features.update(c5=nn.Conv2d(16, 120, kernel_size=5), act5=act())  # 120 x 1 x 1
        elif c5 == "linear":
            classifier.update(c5=nn.Linear(16 * 5 * 5, 120), act5=act())  # 120
        else:
            raise ValueError(f"c5 must be 'conv' or 'linear', not {c5!r}")
        if dropout > 0:
            classifier.update(drop5=nn.Dropout(dropout))
        classifier.update(f6=nn.Linear(120, 84), act6=act())
        if dropout > 0:
            classifier.update(drop6=nn.Dropout(dropout))
        classifier.update(output=nn.Linear(84, num_classes))
        self.features = nn.Sequential(features)
        self.classifier = nn.Sequential(classifier)

    def forward(self, x):
        return self.classifier(self.features(x))


@register_model("classic")
def classic(num_classes: int = 10, in_channels: int = 1) -> LeNet5:
    """LeNet-5 with tanh and average pooling, the textbook version (61,706 parameters)."""
    return LeNet5(num_classes, in_channels, activation="tanh", pool="avg", c5="linear")


@register_model("modern")
def modern(num_classes: int = 10, in_channels: int = 1) -> LeNet5:
    """LeNet-5 with ReLU and max pooling (61,706 parameters)."""
    return LeNet5(num_classes, in_channels, activation="relu", pool="max", c5="linear")


@register_model("classic-c5conv")
def classic_c5conv(num_classes: int = 10, in_channels: int = 1) -> LeNet5:
    """classic with C5 as a 5x5 convolution to 120 maps of 1x1, as in the paper."""
    return LeNet5(num_classes, in_channels, activation="tanh", pool="avg", c5="conv")


@register_model("modern-c5conv")
def modern_c5conv(num_classes: int = 10, in_channels: int = 1) -> LeNet5:
    """modern with C5 as a 5x5 convolution to 120 maps of 1x1."""
    return LeNet5(num_classes, in_channels, activation="relu", pool="max", c5="conv")


@register_model("sigmoid")
def sigmoid(num_classes: int = 10, in_channels: int = 1) -> LeNet5:
    """LeNet-5 with logistic sigmoids: trains poorly with plain SGD, well with Adam."""
    return LeNet5(num_classes, in_channels, activation="sigmoid", pool="avg", c5="conv")


@register_model("keras")
def keras(num_classes: int = 10, in_channels: int = 1, dropout: float = 0.2) -> LeNet5:
    """The Keras tutorials' LeNet-5: tanh, average pooling, Dropout 0.2 after C5 and F6."""
    return LeNet5(num_classes, in_channels, activation="tanh", pool="avg", c5="linear",
                  dropout=dropout)
