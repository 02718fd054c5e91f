"""A dataset from a folder of the user's own images: ``--dataset imagefolder --data-dir ROOT``.

Layout: one subfolder per class, ``ROOT/<class>/<image>``; class names are the subfolder
names, sorted. The test split is ``ROOT/train/<class>/...`` and ``ROOT/test/<class>/...``
when both exist, else a seeded, per-class fraction (``TEST_FRACTION``) of each class.

How the images are shaped depends on the model they are for, which the caller describes
by its input size and padding (``folder_format``; nothing here looks a model up): a model
that takes one channel of 28x28 before padding (the LeNet family) gets MNIST-style
digits, made exactly as ``lenet5 predict`` makes them
(``images.mnistify``: grey, ink bright on black, cropped, 20 px box, centred by mass);
any other model gets the image itself, in colour (3 channels) or grey (1), its shorter
side resized to the model's input side and centre-cropped square, as ImageNet models
are evaluated. The whole folder is decoded once into memory as uint8, like the IDX sets.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from ..errors import Lenet5Error
from .dataset import Dataset, Split
from .images import FIELD, mnistify, open_image
from .registry import IMAGE_FOLDER

# The files taken for images when a directory is searched (here and by `lenet5 predict DIR`):
# formats Pillow decodes. A file named explicitly is tried whatever its suffix.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".pgm",
                  ".ppm", ".pbm")
TEST_FRACTION = 0.2  # of each class, when the folder has no train/ and test/ subfolders
SPLIT_SEED = 0


@dataclass(frozen=True)
class FolderFormat:
    """``digit``: 28x28 MNIST-style digits; ``rgb`` / ``grey``: square images of ``size``."""

    mode: str
    size: int

    def load(self, path: Path) -> np.ndarray:
        img = open_image(path)
        if self.mode == "digit":
            return mnistify(img, str(path))
        img = ImageOps.exif_transpose(img).convert("RGB" if self.mode == "rgb" else "L")
        scale = self.size / min(img.size)
        w, h = max(self.size, round(img.width * scale)), max(self.size, round(img.height * scale))
        img = img.resize((w, h), Image.Resampling.BILINEAR)
        left, top = (w - self.size) // 2, (h - self.size) // 2
        img = img.crop((left, top, left + self.size, top + self.size))
        array = np.asarray(img, dtype=np.uint8)
        return array.transpose(2, 0, 1) if array.ndim == 3 else array  # CHW, or HW for grey


def folder_format(input_size: tuple[int, int, int] | None = None, pad: int = 0) -> FolderFormat:
    """The images for a model whose input is ``input_size`` (C, H, W), of which ``pad``
    pixels on each side are padding its preprocessing adds (a registry entry's
    ``input_size`` and ``preprocess.pad``); MNIST digits when no size is given."""
    if input_size is None:
        return FolderFormat("digit", FIELD)
    channels, height, _ = input_size
    side = height - 2 * pad
    if channels == 1 and side == FIELD:
        return FolderFormat("digit", FIELD)
    return FolderFormat("rgb" if channels == 3 else "grey", side)


def _class_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def image_files(directory: Path) -> list[Path]:
    """The image files under ``directory`` (by suffix, hidden ones left out), sorted."""
    return sorted(p for p in directory.rglob("*")
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                  and not p.name.startswith("."))


def _scan(root: Path, classes: list[str] | None = None) -> tuple[list[str], list[tuple[Path, int]]]:
    dirs = _class_dirs(root)
    if classes is None:
        classes = [d.name for d in dirs]
    index = {c: i for i, c in enumerate(classes)}
    items = []
    for d in dirs:
        if d.name not in index:
            raise Lenet5Error(f"{d}: class {d.name!r} is not among the training classes "
                              f"({', '.join(classes)})")
        items += [(p, index[d.name]) for p in image_files(d)]
    return classes, items


def _split_by_fraction(items: list[tuple[Path, int]], n_classes: int, fraction: float,
                       seed: int) -> tuple[list, list]:
    """A seeded, per-class split: ``fraction`` of each class (at least one image of every
    class with two or more) goes to the test split."""
    gen = torch.Generator().manual_seed(seed)
    train, test = [], []
    for c in range(n_classes):
        members = [it for it in items if it[1] == c]
        n_test = round(len(members) * fraction)
        if len(members) >= 2:
            n_test = min(max(n_test, 1), len(members) - 1)
        order = torch.randperm(len(members), generator=gen).tolist()
        test += [members[i] for i in sorted(order[:n_test])]
        train += [members[i] for i in sorted(order[n_test:])]
    return train, test


def _load(items: list[tuple[Path, int]], fmt: FolderFormat, hasher) -> Split:
    images, labels = [], []
    for path, label in items:
        try:
            raw = path.read_bytes()
        except OSError as e:
            raise Lenet5Error(f"{path}: cannot read ({e.strerror or e})") from None
        hasher.update(f"{path.parent.name}/{path.name}:{hashlib.sha256(raw).hexdigest()}\n".encode())
        images.append(fmt.load(path))
        labels.append(label)
    shape = (0, fmt.size, fmt.size) if fmt.mode != "rgb" else (0, 3, fmt.size, fmt.size)
    stacked = np.stack(images) if images else np.zeros(shape, np.uint8)
    return Split(torch.from_numpy(stacked), torch.tensor(labels, dtype=torch.int64))


def load_image_folder(root: str | os.PathLike | None, image_format: FolderFormat | None = None,
                      test_fraction: float = TEST_FRACTION, seed: int = SPLIT_SEED) -> Dataset:
    """The ``imagefolder`` dataset of ``root``, each image made into ``image_format``
    (default: MNIST-style digits); see the module docstring."""
    if not root:
        raise Lenet5Error(f"--dataset {IMAGE_FOLDER} needs --data-dir ROOT, a folder of "
                          "<class>/<image> subfolders")
    root = Path(root)
    if not root.is_dir():
        raise Lenet5Error(f"--data-dir {root} is not a directory")
    fmt = image_format or folder_format()
    if (root / "train").is_dir() and (root / "test").is_dir():
        classes, train_items = _scan(root / "train")
        _, test_items = _scan(root / "test", classes)
    else:
        classes, items = _scan(root)
        train_items, test_items = _split_by_fraction(items, len(classes), test_fraction, seed)
    if len(classes) < 2:
        raise Lenet5Error(f"{root}: an image folder needs at least two class subfolders "
                          f"(<class>/<image>), found {len(classes)}")
    if not train_items:
        raise Lenet5Error(f"{root}: no images ({', '.join(IMAGE_SUFFIXES)}) found")
    hasher = hashlib.sha256()
    train, test = _load(train_items, fmt, hasher), _load(test_items, fmt, hasher)
    return Dataset(name=IMAGE_FOLDER, train=train, test=test, classes=tuple(classes),
                   file_sha256={f"{root.name}/*": hasher.hexdigest()}, source=root)
