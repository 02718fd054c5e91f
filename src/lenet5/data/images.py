"""Turning a user's image into an MNIST digit: the preprocessing MNIST itself was made with.

LeCun, Cortes and Burges built MNIST by size-normalizing each digit to fit a 20x20 box
(keeping its aspect ratio, anti-aliased) and centring it by its centre of mass in a 28x28
field. ``mnistify`` does the same to any photo or scan of one digit, after finding the ink
the way a phone photo needs (``lenet5.data.photo``): the paper's brightness estimated and
divided out locally (uneven light, shadows), dark-on-light or the reverse found from the
image, the lines of ruled or squared paper and stray specks left out, the digit picked
out of a larger sheet.

``open_image`` refuses, with one clear line each, what is not an image, is empty, is
enormous, or is a decompression bomb.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import Lenet5Error
from .photo import FIELD, INK_BOX, read_digit

MAX_SIDE = 4096  # pixels; larger images are refused
MAX_FILE_BYTES = 64 * 2**20
__all__ = ["FIELD", "INK_BOX", "MAX_FILE_BYTES", "MAX_SIDE", "load_digit", "mnistify", "open_image"]


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


def mnistify(img: Image.Image, name: str = "image") -> np.ndarray:
    """A 28x28 uint8 MNIST-style digit (ink 255 on 0) from any image of one digit.

    Raises ``Lenet5Error("<name>: no ink found ...")`` when nothing stands out."""
    return read_digit(img, name)


def load_digit(source: str | os.PathLike | bytes, name: str | None = None) -> np.ndarray:
    """open_image + mnistify: a path or bytes to a 28x28 uint8 digit."""
    label = name or (str(source) if not isinstance(source, bytes) else "image")
    return mnistify(open_image(source, label), label)
