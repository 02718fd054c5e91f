"""Turning a user's image into an MNIST digit: the preprocessing MNIST itself was made with.

LeCun, Cortes and Burges built MNIST by size-normalizing each digit to fit a 20x20 box
(keeping its aspect ratio, anti-aliased) and centring it by its centre of mass in a 28x28
field. ``mnistify`` does the same to any photo or scan:

1. grey (a transparent background is laid on white paper first);
2. find the paper: the median of the border pixels; light paper is inverted so ink is
   bright, as in MNIST;
3. subtract the paper level and stretch the ink to 0..255, dropping faint noise;
4. crop to the ink's bounding box;
5. scale the longer side to 20 px, keeping the aspect ratio, with anti-aliasing;
6. paste into 28x28 so the centre of mass lands on the centre.

``open_image`` refuses, with one clear line each, what is not an image, is empty, is
enormous, or is a decompression bomb.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import Lenet5Error

MAX_SIDE = 4096  # pixels; larger images are refused
MAX_FILE_BYTES = 64 * 2**20
INK_BOX = 20  # MNIST: the digit fits a 20x20 box ...
FIELD = 28  # ... centred by mass in a 28x28 field
MIN_CONTRAST = 40  # ink must stand this far (of 255) from the paper
NOISE_FLOOR = 0.15  # after stretching, below this fraction of full ink is paper


def open_image(source: str | os.PathLike | bytes, name: str | None = None) -> Image.Image:
    """Open and fully decode an image from a path or bytes, refusing bad or huge input."""
    label = name or (str(source) if not isinstance(source, bytes) else "image")
    if isinstance(source, bytes):
        data = source
    else:
        path = Path(source)
        try:
            size = path.stat().st_size
            if size > MAX_FILE_BYTES:
                raise Lenet5Error(f"{label}: file is too large ({size:,} bytes)")
            data = path.read_bytes()
        except OSError as e:
            raise Lenet5Error(f"{label}: cannot read ({e.strerror or e})") from None
    if not data:
        raise Lenet5Error(f"{label}: file is empty")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data))
            w, h = img.size
            if w > MAX_SIDE or h > MAX_SIDE:
                raise Lenet5Error(f"{label}: image is {w}x{h}, larger than {MAX_SIDE}x{MAX_SIDE}")
            img.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise Lenet5Error(f"{label}: refused as a decompression bomb") from None
        except UnidentifiedImageError:
            raise Lenet5Error(f"{label}: not an image (PNG, JPEG, BMP, GIF, WebP, ...)") from None
        except (OSError, SyntaxError, ValueError) as e:
            raise Lenet5Error(f"{label}: cannot decode image ({e})") from None
    if img.width == 0 or img.height == 0:
        raise Lenet5Error(f"{label}: image has no pixels")
    return img


def to_grey(img: Image.Image) -> np.ndarray:
    """float32 grey levels 0..255; transparency is composited onto white paper."""
    img = ImageOps.exif_transpose(img)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
        paper = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(paper, img)
    return np.asarray(img.convert("L"), dtype=np.float32)


def mnistify(img: Image.Image, name: str = "image") -> np.ndarray:
    """A 28x28 uint8 MNIST-style digit (ink 255 on 0) from any image of one digit."""
    grey = to_grey(img)
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    paper = float(np.median(border))
    if paper > 127:  # light paper, dark ink: invert so ink is bright, as in MNIST
        grey, paper = 255.0 - grey, 255.0 - paper
    ink = np.clip(grey - paper, 0, None)
    peak = float(ink.max())
    if peak < MIN_CONTRAST:
        raise Lenet5Error(f"{name}: no ink found (nothing stands out from the background)")
    ink = ink / peak
    ink[ink < NOISE_FLOOR] = 0.0
    rows, cols = np.nonzero(ink)
    ink = ink[rows.min():rows.max() + 1, cols.min():cols.max() + 1]

    h, w = ink.shape
    scale = INK_BOX / max(h, w)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    box = Image.fromarray(ink.astype(np.float32)).resize(
        (new_w, new_h), Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BICUBIC)
    digit = np.clip(np.asarray(box), 0, 1)

    field = np.zeros((FIELD, FIELD), dtype=np.float32)
    total = digit.sum()
    cy, cx = ((np.indices(digit.shape) * digit).sum(axis=(1, 2)) / total) if total > 0 else (
        (new_h - 1) / 2, (new_w - 1) / 2)
    top = int(round(FIELD / 2 - cy))  # MNIST's centres of mass sit at (14.0, 14.0)
    left = int(round(FIELD / 2 - cx))
    top = min(max(top, 0), FIELD - new_h)
    left = min(max(left, 0), FIELD - new_w)
    field[top:top + new_h, left:left + new_w] = digit
    return np.round(field * 255).astype(np.uint8)


def load_digit(source: str | os.PathLike | bytes, name: str | None = None) -> np.ndarray:
    """open_image + mnistify: a path or bytes to a 28x28 uint8 digit."""
    label = name or (str(source) if not isinstance(source, bytes) else "image")
    return mnistify(open_image(source, label), label)
