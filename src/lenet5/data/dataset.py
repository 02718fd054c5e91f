"""A dataset in memory: both splits as uint8 images and int64 labels, with what identifies it."""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import Lenet5Error


@dataclass
class Split:
    """One split in memory: uint8 images (N, H, W) or (N, C, H, W) and int64 labels (N,)."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: torch.Tensor | slice) -> Split:
        return Split(self.images[index], self.labels[index])


@dataclass
class Dataset:
    name: str
    train: Split
    test: Split
    classes: tuple[str, ...]
    file_sha256: dict[str, str]
    source: Path | None = None
    limit: int | None = None  # only the first N images of each split are used

    @property
    def in_channels(self) -> int:
        return 1 if self.train.images.dim() == 3 else self.train.images.shape[1]

    @property
    def content_hash(self) -> str:
        """One SHA-256 for the whole dataset: of the sorted ``name:hash`` lines of its files."""
        lines = "".join(f"{k}:{v}\n" for k, v in sorted(self.file_sha256.items()))
        return hashlib.sha256(lines.encode()).hexdigest()

    def describe(self) -> dict:
        """What a checkpoint records about its data: name, hashes, class names."""
        d = {"name": self.name, "sha256": self.content_hash, "files": self.file_sha256,
             "classes": list(self.classes)}
        if self.limit is not None:
            d["limit"] = self.limit
        return d

    def head(self, n: int | None) -> Dataset:
        """The first ``n`` images of each split (all of them for None)."""
        if n is None:
            return self
        if n < 1:
            raise Lenet5Error(f"--limit must be positive, not {n}")
        return dataclasses.replace(self, train=self.train.subset(slice(0, n)),
                                   test=self.test.subset(slice(0, n)), limit=n)
