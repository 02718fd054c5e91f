"""Reading a whole number from an image: a photo or scan of one written number.

    >>> from PIL import Image
    >>> from lenet5.checkpoint import load_checkpoint
    >>> from lenet5.reading.image import read_image
    >>> ckpt = load_checkpoint("runs/lenet5-ctc.safetensors")
    >>> r = read_image(ckpt.build_model(), ckpt.preprocess, Image.open("4096.jpg"))
    >>> r.text, r.confidence, [(d.digit, d.probability, d.box) for d in r.digits]

Two steps: ``ink_of`` turns the picture into an ink map (bright ink on black, whatever the
paper and the pen), then ``read_ink_maps`` (line.py) brings the line to the readers'
geometry and reads it. ``ink_of`` is the one place the picture becomes ink.
"""

from __future__ import annotations

import io
import os

import numpy as np
from PIL import Image

from ..data.images import MIN_CONTRAST, NOISE_FLOOR, open_image, to_grey
from ..errors import Lenet5Error
from .line import LineDigit, LineReading, read_ink_maps


def ink_of(img: Image.Image, name: str = "image") -> tuple[np.ndarray, float]:
    """The ink of a picture of one written line: a uint8 map (bright ink on black, 255 the
    darkest stroke) and its scale (ink-map pixels per picture pixel).

    The paper is told from the ink by the border's median grey (light paper: dark ink);
    ink is how far a pixel stands from the paper, stretched so the strongest stroke is
    255, and what is under ``NOISE_FLOOR`` of it is paper. Clean scans and even light;
    the map keeps the picture's size.
    """
    grey = to_grey(img)
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    paper = float(np.median(border))
    # the ink is on the side of the paper where pixels stand farthest from it
    darker, lighter = np.clip(paper - grey, 0, None), np.clip(grey - paper, 0, None)
    ink = darker if _strong(darker) >= _strong(lighter) else lighter
    peak = float(ink.max())
    if peak < MIN_CONTRAST:
        raise Lenet5Error(f"{name}: no ink found (nothing stands out from the background)")
    ink = np.clip(ink / peak, 0, 1)
    ink[ink < NOISE_FLOOR] = 0
    return np.round(ink * 255).astype(np.uint8), 1.0


def _strong(ink: np.ndarray) -> float:
    """How strongly ink stands out: a high percentile (not the maximum: one speck), over
    every other row and column (as good, 4 times cheaper)."""
    return float(np.percentile(ink[::2, ::2], 99.5))


def read_image(model, pre, img: Image.Image, options=None, name: str = "image") -> LineReading:
    """The reading of a picture of one written number: its text, its confidence and each
    digit's probability and box (x0, y0, x1, y1 in ``img``'s pixels, ends exclusive);
    ``strip`` is the 32-pixel line the reader saw. ``options``: a ``DecodeOptions``."""
    return _read(model, pre, img, options, name, 1.0)


def read_file(model, pre, source: str | os.PathLike | bytes, name: str | None = None,
              options=None) -> LineReading:
    """``read_image`` of an image file (or its bytes), decoded within ``open_image``'s
    bounds; the boxes in the file's own pixels, however much it was reduced to be read."""
    label = name or (str(source) if not isinstance(source, bytes) else "image")
    img = open_image(source, label)
    with _header_only(source) as full:  # the size as stored, before open_image reduced it
        factor = max(full.size) / max(img.size)
    return _read(model, pre, img, options, label, factor)


def _header_only(source):
    return Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)


def _read(model, pre, img, options, name, factor: float) -> LineReading:
    """Read ``img``; boxes scaled by ``factor`` (original pixels per ``img`` pixel)."""
    ink, scale = ink_of(img, name)
    [r] = read_ink_maps(model, pre, [ink], options)
    k = factor / scale  # original pixels per ink-map pixel
    h, w = ink.shape  # the picture as to_grey turned it upright (EXIF)
    w, h = round(w * k), round(h * k)

    def back(box):
        x0, y0, x1, y1 = box
        return (max(0, int(np.floor(x0 * k))), max(0, int(np.floor(y0 * k))),
                min(w, int(np.ceil(x1 * k))), min(h, int(np.ceil(y1 * k))))

    return LineReading(r.text, r.confidence,
                       tuple(LineDigit(d.digit, d.probability, back(d.box)) for d in r.digits),
                       r.strip)
