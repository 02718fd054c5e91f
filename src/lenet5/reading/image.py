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

from ..data.images import open_image
from ..data.photo import line_ink
from .line import LineDigit, LineReading, read_ink_maps


def ink_of(img: Image.Image, name: str = "image") -> tuple[np.ndarray, float]:
    """The ink of a picture of one written line: a uint8 map (bright ink on black) and its
    scale (ink-map pixels per picture pixel): the photo preprocessing of ``predict``
    (``lenet5.data.photo.line_ink``: the paper estimated locally and divided out, either
    polarity, ruled lines and specks removed), keeping every digit of the line."""
    return line_ink(img, name=name)


def read_image(model, pre, img: Image.Image, options=None, name: str = "image") -> LineReading:
    """The reading of a picture of one written number: its text, its confidence and each
    digit's probability and box (x0, y0, x1, y1 in ``img``'s pixels, ends exclusive);
    ``strip`` is the 32-pixel line the reader saw, ``outputs`` the output strip its text
    was decoded from. ``options``: a ``DecodeOptions``."""
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
    h, w = ink.shape  # the picture turned upright (EXIF), as line_ink saw it
    w, h = round(w * k), round(h * k)

    def back(box):
        x0, y0, x1, y1 = box
        return (max(0, int(np.floor(x0 * k))), max(0, int(np.floor(y0 * k))),
                min(w, int(np.ceil(x1 * k))), min(h, int(np.ceil(y1 * k))))

    return LineReading(r.text, r.confidence,
                       tuple(LineDigit(d.digit, d.probability, back(d.box)) for d in r.digits),
                       r.strip, outputs=r.outputs)
