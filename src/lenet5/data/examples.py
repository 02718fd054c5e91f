"""A dataset's look: a few of its images as PNG files, and a grid of them.

``lenet5 prepare --save-examples DIR`` writes them, so that a user sees what a model is
trained and tested on before training one: for ``mnist-strings`` the first numbers of its
fixed test set and a few training numbers (composed afresh, more varied), each at its own
width; for a digit dataset its first test images. The PNGs are the images as the models
get them (uint8, ink bright on black), nothing resampled; the grid shows them twice the
size with their labels.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from ..io import atomic_write_bytes

SCALE = 2  # the grid shows each pixel as SCALE x SCALE
GAP = 6  # pixels between the grid's images
LABEL = 74  # pixels left of a number for its text
TRAIN_SEED = 0  # the training numbers shown: the same every time


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG", optimize=True)
    return buf.getvalue()


def _examples(data, n: int) -> dict[str, list[tuple[str, np.ndarray]]]:
    """``{part: [(label, uint8 image (H, W) or (H, W, C)), ...]}``: what to show."""
    test = data.test
    if hasattr(test, "widths"):  # numbers (data/strings.py): each at its own width
        train = data.train.strings(n, torch.Generator().manual_seed(TRAIN_SEED))

        def lines(s):
            return [(s.text(i), s.images[i, :, :int(s.widths[i])].numpy()) for i in range(len(s))]
        return {"test": lines(test.subset(slice(0, n))), "train": lines(train)}
    images = test.images[:n]
    if images.dim() == 4:  # (N, C, H, W): colour or several channels, shown as grey or RGB
        images = images.permute(0, 2, 3, 1)
        images = images[..., 0] if images.shape[-1] != 3 else images
    return {"test": [(data.classes[int(y)], x.numpy()) for x, y in zip(images, test.labels[:n])]}


def save_examples(data, out_dir: str | os.PathLike, n: int = 16) -> list[Path]:
    """Write ``n`` test examples of ``data`` (a loaded dataset; for numbers ``n`` training
    numbers too) as ``<part>-<k>-<label>.png`` and all of them as ``grid.png`` under
    ``out_dir``; return the files written, the grid last."""
    out = Path(out_dir)
    parts = _examples(data, n)
    written = [atomic_write_bytes(out / f"{part}-{k:02d}-{label.replace(' ', '_').replace('/', '-')}.png",
                                  _png(Image.fromarray(image)))
               for part, shown in parts.items() for k, (label, image) in enumerate(shown)]
    written.append(atomic_write_bytes(out / "grid.png", _png(_grid(parts))))
    return written


def _grid(parts: dict[str, list[tuple[str, np.ndarray]]]) -> Image.Image:
    """The examples SCALE times larger, labelled, under one heading per part; numbers two
    to a row, digits eight."""
    font = ImageFont.load_default(size=14)
    titles = {"test": "test set", "train": "training (composed afresh for every batch)"}
    cells = []  # (x, y, label, image, a number?) in the grid
    y, width = 0, 0
    for part, shown in parts.items():
        cells.append((GAP, y + GAP, titles[part], None, False))
        y += 24
        wide = any(img.shape[1] > 2 * img.shape[0] for _, img in shown)
        per_row, label_w = (2, LABEL) if wide else (8, 0)
        cell_w = max(img.shape[1] for _, img in shown) * SCALE + GAP + label_w
        cell_h = max(img.shape[0] for _, img in shown) * SCALE + (GAP if wide else 22)
        for k, (label, img) in enumerate(shown):
            x = GAP + (k % per_row) * cell_w + label_w
            top = y + (k // per_row) * cell_h
            cells.append((x, top, label, img, wide))
            width = max(width, x + img.shape[1] * SCALE + GAP)
        y += -(-len(shown) // per_row) * cell_h + GAP
    colour = any(img.ndim == 3 for shown in parts.values() for _, img in shown)
    grid = Image.new("RGB" if colour else "L", (max(width, 360), y + GAP), "white")
    draw = ImageDraw.Draw(grid)
    for x, top, label, img, wide in cells:
        if img is None:
            draw.text((x, top), label, fill="black", font=font)
            continue
        big = Image.fromarray(img).resize((img.shape[1] * SCALE, img.shape[0] * SCALE),
                                          Image.Resampling.NEAREST).convert(grid.mode)
        if wide:  # numbers: the text on the left
            grid.paste(big, (x, top))
            draw.text((x - LABEL, top + big.height // 2 - 8), label, fill="black", font=font)
        else:
            grid.paste(big, (x, top + 18))
            draw.text((x, top), label, fill="black", font=font)
    return grid
