"""AlexNet, LeNet-5's scaled-up descendant.

A. Krizhevsky, I. Sutskever, G. E. Hinton, "ImageNet Classification with Deep
Convolutional Neural Networks", NeurIPS 2012; layout of torchvision's ``alexnet``
(the single-GPU "one weird trick" variant, 61,100,840 parameters with 1000 classes).
A 10-class, 1-channel version for digits is ``create_model("alexnet", num_classes=10,
in_channels=1)``.
"""

from __future__ import annotations

import torch
from torch import nn

from .registry import Preprocess, register_model


class AlexNet(nn.Module):
    def __init__(self, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 64, kernel_size=11, stride=4, padding=2),  # 64 x 55 x 55
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),  # 64 x 27 x 27
            nn.Conv2d(64, 192, kernel_size=5, padding=2),  # 192 x 27 x 27
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),  # 192 x 13 x 13
            nn.Conv2d(192, 384, kernel_size=3, padding=1),  # 384 x 13 x 13
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),  # 256 x 13 x 13
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),  # 256 x 13 x 13
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),  # 256 x 6 x 6
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(p=dropout),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.avgpool(self.features(x)))


@register_model("alexnet", input_size=(3, 224, 224),
                preprocess=Preprocess(pad=0, mean=0.5, std=0.5))
def alexnet(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> AlexNet:
    """AlexNet (torchvision layout): 3x224x224 input, 61,100,840 parameters at 1000 classes."""
    return AlexNet(num_classes, in_channels, dropout)
