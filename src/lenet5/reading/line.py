"""Bringing any image of one written number to the readers' geometry.

The readers were trained on strips 32 pixels high, ink bright on black, each digit's ink
about ``DIGIT_HEIGHT`` pixels high (MNIST's normalization) around row 16.
``normalize_line`` crops an ink map (bright ink, any size) to its ink and scales it so
that its digits are that high: the height that counts is the median over the line's
pieces of ink (runs of columns with ink: a digit, or digits that touch), which a digit
written higher or lower than the others, or a long tail, does not move the way it moves
the line's bounding box. ``Placement`` maps the strip back to the original image.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ..data.strings import HEIGHT, INK
from ..errors import Lenet5Error

# Pixels of ink a digit is high (``digit_height``): the median of the composed numbers,
# training's and test's alike (MNIST's 20-pixel box, and the haze of resampling around it).
DIGIT_HEIGHT = 21
# A line may be read at these heights, the most probable reading kept: a photo's scale is
# known only as well as its digits' height, and each number's own is 18 to 24 pixels ...
HEIGHTS = (DIGIT_HEIGHT - 1, DIGIT_HEIGHT, DIGIT_HEIGHT + 1)
# ... but one read at DIGIT_HEIGHT at least this surely is not read again (docs/reading.md)
SURE = 0.99
SIDE = 4  # background columns left and right of the ink, as the test strings have
NEAR = 0.05  # a line within 5% of the size is not resampled (no blur for nothing)


@dataclass(frozen=True)
class Placement:
    """Strip column x is original column ``x0 + (x - SIDE) / scale``; row y is ``y0 + (y -
    top) / scale``."""

    scale: float
    x0: int
    y0: int
    top: int

    def to_original(self, x0: float, x1: float, y0: float, y1: float) -> tuple[int, int, int, int]:
        """A box in the strip ([x0, x1) x [y0, y1)) as a box in the original image."""
        return (int(np.floor(self.x0 + (x0 - SIDE) / self.scale)),
                int(np.floor(self.y0 + (y0 - self.top) / self.scale)),
                int(np.ceil(self.x0 + (x1 - SIDE) / self.scale)),
                int(np.ceil(self.y0 + (y1 - self.top) / self.scale)))


def digit_height(mask: torch.Tensor) -> int:
    """The median height of the pieces of ink of a (H, W) boolean ink mask, a piece being
    a run of columns with ink; specks under a third of the tallest piece do not count."""
    m = np.asarray(mask, dtype=bool)
    cols = np.concatenate([[False], m.any(0)])
    starts = np.flatnonzero(cols[1:] & ~cols[:-1])  # where each run of inked columns starts
    # each run's rows with ink (the columns up to the next run's start hold no ink)
    rows = np.logical_or.reduceat(m, starts, axis=1)
    heights = len(m) - rows[::-1].argmax(0) - rows.argmax(0)
    tall = heights.max()
    return int(np.median(heights[3 * heights >= tall]))


def normalize_line(ink: np.ndarray | torch.Tensor, height: int = DIGIT_HEIGHT,
                   max_width: int = 4096) -> tuple[torch.Tensor, Placement]:
    """An ink map (H, W), uint8 with bright ink on a dark background, as a reader's strip:
    uint8 (32, W'), scaled (keeping the aspect ratio) so that its digits are ``height``
    rows high (``digit_height``), its ink box centred on row 16, ``SIDE`` columns of
    background left and right."""
    return normalize_line_at(ink, (height,), max_width)[0]


def normalize_line_at(ink: np.ndarray | torch.Tensor, heights: tuple[int, ...],
                      max_width: int = 4096) -> list[tuple[torch.Tensor, Placement]]:
    """``normalize_line`` at each of ``heights`` (the ink measured once)."""
    at = _measure(ink, max_width)
    return [at(h) for h in heights]


def _measure(ink: np.ndarray | torch.Tensor, max_width: int = 4096):
    """The ink cropped and its digits' height measured: a function placing it on a strip
    at a given digit height (``normalize_line``)."""
    a = torch.as_tensor(np.asarray(ink))
    if a.dim() != 2 or a.dtype != torch.uint8:
        raise Lenet5Error(f"an ink map is a 2-D uint8 image, not {tuple(a.shape)} {a.dtype}")
    mask = a >= INK
    if not bool(mask.any()):
        raise Lenet5Error("no ink in the image: nothing to read")
    rows, cols = torch.nonzero(mask.any(1))[:, 0], torch.nonzero(mask.any(0))[:, 0]
    y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    crop = a[y0:y1, x0:x1].float()
    measured = digit_height(mask[y0:y1, x0:x1])
    return lambda h: _place(crop, min(h / measured, HEIGHT / (y1 - y0),
                                      (max_width - 2 * SIDE) / (x1 - x0)), x0, y0)


def _place(crop: torch.Tensor, scale: float, x0: int, y0: int) -> tuple[torch.Tensor, Placement]:
    """The cropped ink scaled by ``scale`` and set on a strip."""
    if abs(scale - 1) < NEAR:
        scale, resized = 1.0, crop
    else:  # area averaging when shrinking (no aliasing), bilinear when enlarging
        size = (max(1, round(crop.shape[0] * scale)), max(1, round(crop.shape[1] * scale)))
        mode = "area" if scale < 1 else "bilinear"
        resized = F.interpolate(crop[None, None], size=size, mode=mode,
                                **({} if mode == "area" else {"align_corners": False}))[0, 0]
    h, w = min(resized.shape[0], HEIGHT), resized.shape[1]
    top = (HEIGHT - h) // 2
    strip = torch.zeros(HEIGHT, w + 2 * SIDE, dtype=torch.uint8)
    strip[top:top + h, SIDE:SIDE + w] = resized[:h].round().clamp(0, 255).to(torch.uint8)
    return strip, Placement(scale=scale, x0=x0, y0=y0, top=top)


@dataclass(frozen=True)
class LineDigit:
    digit: int
    probability: float
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in the original image, ends exclusive


@dataclass(frozen=True)
class LineReading:
    text: str
    confidence: float
    digits: tuple[LineDigit, ...]
    strip: torch.Tensor | None = field(default=None, repr=False, compare=False)  # (32, W) uint8
    placement: Placement | None = field(default=None, repr=False, compare=False)  # strip -> image
    # each output's class probabilities (T, C) and its window's centre in the strip (T,)
    outputs: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False, compare=False)


def read_ink_maps(model, pre, inks, options=None, heights: tuple[int, ...] = HEIGHTS,
                  sure: float = SURE) -> list[LineReading]:
    """Read each ink map (see ``normalize_line``) with a string reader; each digit's box
    in the ink map's own pixels (its columns from the reader, its rows from its ink), and
    the strip the reader saw, where it lies in the ink map and the reader's output strip.
    Each line is read at the middle of ``heights``; one read there with a confidence
    under ``sure`` is read at the others too (one batch) and the most probable reading
    is kept."""
    at = [_measure(ink) for ink in inks]  # each line placed at another height only if needed
    mid = len(heights) // 2
    first = [a(heights[mid]) for a in at]
    best = list(zip(first, _read(model, pre, first, options)))
    others = [(i, at[i](h)) for i, (_, r) in enumerate(best) if r.confidence < sure
              for k, h in enumerate(heights) if k != mid]
    for (i, p), r in zip(others, _read(model, pre, [p for _, p in others], options)):
        if r.confidence > best[i][1].confidence:
            best[i] = (p, r)
    out = []
    for (strip, where), r in best:
        digits = []
        for d in r.digits:
            rows = torch.nonzero((strip[:, d.x0:d.x1] >= INK).any(1))[:, 0]
            y0, y1 = (int(rows[0]), int(rows[-1]) + 1) if len(rows) else (0, HEIGHT)
            digits.append(LineDigit(d.digit, d.probability, where.to_original(d.x0, d.x1, y0, y1)))
        out.append(LineReading(r.text, r.confidence, tuple(digits), strip, where, r.outputs))
    return out


def _read(model, pre, placed: list[tuple[torch.Tensor, Placement]], options):
    """``read_strips`` of the strips of ``placed``, in one batch, keeping their outputs."""
    from .read import read_strips

    if not placed:
        return []
    width = max(s.shape[1] for s, _ in placed)
    images = torch.zeros(len(placed), HEIGHT, width, dtype=torch.uint8)
    for i, (s, _) in enumerate(placed):
        images[i, :, :s.shape[1]] = s
    widths = torch.tensor([s.shape[1] for s, _ in placed])
    return read_strips(model, pre, images, widths, options, keep_outputs=True)
