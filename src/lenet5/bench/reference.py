"""The reference: LeNet-5 trained the way most LeNet-5 repositories train it, in plain PyTorch.

A map-style ``torch.utils.data.Dataset`` that turns one image at a time into a tensor
(pad by 2, scale to [0, 1], normalize: what ``transforms.Compose([Pad(2), ToTensor(),
Normalize(...)])`` does), a ``DataLoader`` with batch 64 and shuffling, Adam at 1e-3, cross
entropy, the model as ``create_model`` builds it (plain ``torch.nn`` layers, float32,
NCHW; the project's path calls ``lenet5.fastpath.accelerate`` on it), and an evaluation
loop under ``torch.no_grad()`` with the test loader's batch of 1000 (as in
pytorch/examples' MNIST).
It skips PIL (the images stay uint8 tensors), which makes it a little faster than the
repositories it stands for, never slower.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset

from ..data import Split
from ..models import Preprocess

BATCH_SIZE = 64
TEST_BATCH_SIZE = 1000
LR = 1e-3


class PerSampleDataset(TorchDataset):
    """One (image, label) per ``__getitem__``, transformed on the fly."""

    def __init__(self, split: Split, pre: Preprocess):
        self.images, self.labels, self.pre = split.images, split.labels, pre

    def __len__(self) -> int:
        return len(self.labels)

    def transform(self, image: torch.Tensor) -> torch.Tensor:
        x = image.float().div(255.0).unsqueeze(0)  # ToTensor
        if self.pre.pad:
            x = F.pad(x, (self.pre.pad,) * 4)  # Pad: background is 0
        return (x - self.pre.mean) / self.pre.std  # Normalize

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(self.images[i]), int(self.labels[i])


def train_loader(split: Split, pre: Preprocess, seed: int = 0) -> DataLoader:
    return DataLoader(PerSampleDataset(split, pre), batch_size=BATCH_SIZE, shuffle=True,
                      generator=torch.Generator().manual_seed(seed))


def test_loader(split: Split, pre: Preprocess) -> DataLoader:
    return DataLoader(PerSampleDataset(split, pre), batch_size=TEST_BATCH_SIZE)


def make_optimizer(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.Adam(model.parameters(), lr=LR)


def train_epoch(model: nn.Module, loader: DataLoader, optimizer: torch.optim.Optimizer,
                device: torch.device) -> None:
    model.train()
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()


def evaluate(model: nn.Module, loader: DataLoader, device: torch.device) -> tuple[float, int, int]:
    """(mean loss, correct, total)."""
    model.eval()
    total_loss, correct, total = 0.0, 0, 0
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            out = model(x)
            total_loss += F.cross_entropy(out, y, reduction="sum").item()
            correct += (out.argmax(1) == y).sum().item()
            total += len(y)
    return total_loss / max(total, 1), correct, total


def predict_one(model: nn.Module, dataset: PerSampleDataset, image: torch.Tensor,
                device: torch.device) -> int:
    with torch.no_grad():
        return int(model(dataset.transform(image).unsqueeze(0).to(device)).argmax(1))
