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

import contextlib
import io
import os
import stat
import threading
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import Lenet5Error
from .photo import FIELD, INK_BOX, read_digit

MAX_FILE_BYTES = 64 * 2**20  # a file larger than this is refused unread
MAX_SIDE = 8192  # pixels a side, as decoded; larger images are refused
MAX_PIXELS = 4096 * 4096  # the pixel budget of one decode (a 16.8-megapixel RGBA image is 64 MB)
WORK_SIDE = 1024  # decoded images are reduced to at most this a side before any float work
FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF", "PPM")  # what open_image reads

__all__ = ["FIELD", "FORMATS", "INK_BOX", "MAX_FILE_BYTES", "MAX_PIXELS", "MAX_SIDE",
           "WORK_SIDE", "decode_pixels", "load_digit", "mnistify", "open_image"]

_OPEN_LOCK = threading.Lock()  # warnings.catch_warnings is process-wide state


def _read_file(path: str | os.PathLike, label: str) -> bytes:
    """The bytes of a regular file, at most MAX_FILE_BYTES: never blocks on a FIFO, never
    reads a device (``/dev/zero``) without end."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as e:
        raise Lenet5Error(f"{label}: cannot read ({e.strerror or e})") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = ("a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode)
                    else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "special")
            raise Lenet5Error(f"{label}: not a regular file ({kind})")
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(MAX_FILE_BYTES + 1)  # the size on disk may change, or lie (/proc)
    except OSError as e:
        raise Lenet5Error(f"{label}: cannot read ({e.strerror or e})") from None
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES:
        raise Lenet5Error(f"{label}: file is too large (over {MAX_FILE_BYTES // 2**20} MB)")
    return data


def _shrink(img: Image.Image, max_side: int) -> Image.Image:
    """``img`` scaled down (box filter: the mean of the pixels each covers) to fit ``max_side``."""
    w, h = img.size
    if max(w, h) <= max_side:
        return img
    if img.mode == "P":  # a palette cannot be averaged: to colours first, keeping transparency
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif img.mode == "1":
        img = img.convert("L")
    scale = max_side / max(w, h)
    return img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BOX)


@contextlib.contextmanager
def _errors(label: str):
    """Pillow's ways of failing, as one-line Lenet5Errors."""
    try:
        yield
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise Lenet5Error(f"{label}: refused as a decompression bomb") from None
    except UnidentifiedImageError:
        raise Lenet5Error(f"{label}: not an image ({', '.join(FORMATS[:5])}, ...)") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise Lenet5Error(f"{label}: cannot decode image ({e})") from None


def _header(data: bytes, label: str, max_side: int | None) -> Image.Image:
    """The image, its header read and not decoded, set to decode at a reduced scale where
    its format can (JPEG: 1/2, 1/4, 1/8, keeping ``max_side`` a side); refused if that
    decode would be over MAX_SIDE a side or MAX_PIXELS in all."""
    if not data:
        raise Lenet5Error(f"{label}: file is empty")
    with _errors(label):
        with _OPEN_LOCK, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=FORMATS)
        w, h = img.size
        if max_side and max(w, h) > max_side:
            img.draft(img.mode, (-(-w * max_side // max(w, h)), -(-h * max_side // max(w, h))))
    dw, dh = img.size  # as it will be decoded
    if dw > MAX_SIDE or dh > MAX_SIDE:
        raise Lenet5Error(f"{label}: image is {w}x{h}, larger than {MAX_SIDE}x{MAX_SIDE}")
    if dw * dh > MAX_PIXELS:
        raise Lenet5Error(f"{label}: image is {w}x{h}, {w * h / 1e6:.1f} megapixels: more than "
                          f"{MAX_PIXELS / 1e6:.1f}")
    if dw == 0 or dh == 0:
        raise Lenet5Error(f"{label}: image has no pixels")
    return img


def decode_pixels(data: bytes) -> int:
    """How many pixels :func:`open_image` would decode from ``data`` (0: it would refuse
    them), from the header alone: what a decode will cost, known before it runs."""
    try:
        img = _header(data, "image", WORK_SIDE)
    except Lenet5Error:
        return 0
    return img.width * img.height


def open_image(source: str | os.PathLike | bytes, name: str | None = None,
               max_side: int | None = WORK_SIDE) -> Image.Image:
    """Open and decode an image from a path or bytes, refusing bad or huge input.

    The work is bounded before it is done: at most MAX_FILE_BYTES are read (a regular file
    only), a JPEG is decoded at a reduced scale (1/2, 1/4, 1/8) when that still leaves
    ``max_side`` pixels a side, no decode makes more than MAX_PIXELS pixels or a side over
    MAX_SIDE, and the decoded image is then scaled down to at most ``max_side`` a side
    (``None``: full size).
    """
    label = name or (str(source) if not isinstance(source, bytes) else "image")
    data = source if isinstance(source, bytes) else _read_file(source, label)
    img = _header(data, label, max_side)
    with _errors(label):
        img.load()
    return _shrink(img, max_side) if max_side else img


def mnistify(img: Image.Image, name: str = "image") -> np.ndarray:
    """A 28x28 uint8 MNIST-style digit (ink 255 on 0) from any image of one digit.

    Raises ``Lenet5Error("<name>: no ink found ...")`` when nothing stands out."""
    return read_digit(img, name)


def load_digit(source: str | os.PathLike | bytes, name: str | None = None) -> np.ndarray:
    """open_image + mnistify: a path or bytes to a 28x28 uint8 digit."""
    label = name or (str(source) if not isinstance(source, bytes) else "image")
    return mnistify(open_image(source, label), label)
