"""The second opinion: each digit a line reader found, cut out of the line and read again
by a reader of single digits, the two readings' probabilities multiplied.

A line reader sees each digit among its neighbours and reads it a little worse than a
digit reader reads the same digit cut out and centred (on MNIST's test digits, ``reader``
misreads 0.4%); a digit reader cannot find the digits of a line. Together, as in the
paper's segmentation-based readers (section V: a segmenter proposes cuts, the recognizer
scores each piece), the line reader finds and places the digits and both read them.

How a digit is cut out, guided by where the line reader put its digits: the line's ink at
least ``PIECE`` bright in 8-connected pieces; a piece holding one digit's centre is that
digit's; a piece holding several (touching digits) is cut between each two centres at the
column where both sides read best as digits (of the few with the least ink); a piece
holding none (a dot, a detached stroke) goes to the nearest digit; dimmer pixels go with
the piece they border. Each digit's ink is then normalized as MNIST's digits were
(``mnist_normalize``) and read. Measured in docs/reading.md ("The second opinion").
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..data import filters, to_input
from ..data.photo import mnist_normalize
from ..errors import Lenet5Error
from ..models import Preprocess
from .paths import Segment

PIECE = 64  # a quarter of full ink: dimmer pixels (resampling haze) would join touching digits
CUTS = 4  # columns tried where two digits touch
HAZE = 2  # steps the dimmer pixels are followed out from a piece
DIGITS = 10


@dataclass(frozen=True)
class DigitReader:
    model: nn.Module
    preprocess: Preprocess

    @torch.inference_mode()
    def read(self, inks: list[np.ndarray]) -> np.ndarray:
        """Class probabilities (N, 10) of digits' ink (uint8 images of any size), each
        normalized as MNIST's digits were; a row of zeros where there is no ink."""
        out = np.zeros((len(inks), DIGITS), dtype=np.float32)
        crops, at = [], []
        for i, ink in enumerate(inks):
            try:
                crops.append(mnist_normalize(ink.astype(np.float32) / 255))
                at.append(i)
            except Lenet5Error:  # no ink bright enough
                pass
        if crops:
            x = to_input(torch.from_numpy(np.stack(crops)), self.preprocess)
            out[at] = torch.softmax(self.model(x).float(), 1).numpy()
        return out

    def sure(self, inks: list[np.ndarray]) -> np.ndarray:
        """How sure the reader is of each ink's digit: its best class's probability."""
        return self.read(inks).max(1)


@functools.lru_cache(maxsize=4)
def digit_reader(source: str) -> DigitReader:
    """The reader of single digits that ``source`` names: shipped weights or a checkpoint."""
    from ..models import get_model_entry
    from ..weights import resolve_checkpoint

    ckpt = resolve_checkpoint(source)
    classes = ckpt.model_args.get("num_classes")
    if get_model_entry(ckpt.model_name).task != "classify" or classes != DIGITS:
        raise Lenet5Error(f"{source} is not a reader of single digits (model "
                          f"{ckpt.model_name}, {classes} classes)")
    return DigitReader(ckpt.build_model().eval(), ckpt.preprocess)


def cut_digits(image: np.ndarray, centres: np.ndarray, piece: int = PIECE,
               sure: Callable[[list[np.ndarray], list[int]], np.ndarray] | None = None
               ) -> list[np.ndarray]:
    """The ink of each digit of a uint8 line ``image`` (ink bright), the digits centred on
    the columns ``centres`` (ascending): one image per digit, other digits' ink dark.
    ``sure(inks, digits)``: how well each ink reads as its digit (an index into
    ``centres``); given, touching digits are cut at whichever of their ``CUTS`` faintest
    columns both sides read best at (the paper's recognition-based segmentation), else at
    the faintest."""
    labels, n = filters.label(image >= piece)
    owner = np.full(image.shape, -1)
    columns = np.arange(image.shape[1])
    for j, box in enumerate(filters.find_objects(labels), start=1):
        rows, cols = box
        own = labels[box] == j
        a, b = cols.start, cols.stop - 1
        inside = np.flatnonzero((centres >= a) & (centres <= b))
        mine = owner[box]
        if len(inside) == 0:
            mass = own.sum(0)
            cx = (mass * columns[cols]).sum() / mass.sum()
            mine[own] = int(np.abs(centres - cx).argmin())
            continue
        piece_ink = image[box] * own
        ink = piece_ink.sum(0)
        options = [_faintest(ink, a, centres[p], centres[q])
                   for p, q in zip(inside, inside[1:])]
        cuts = [a] + [o[0] for o in options] + [b + 1]
        for k, o in enumerate(options, start=1):
            if sure is not None and len(o) > 1:
                sides = [_columns(piece_ink, x0 - a, x1 - a)
                         for c in o for x0, x1 in ((cuts[k - 1], c), (c, cuts[k + 1]))]
                which = [int(inside[k - 1]), int(inside[k])] * len(o)
                cuts[k] = o[int(sure(sides, which).reshape(-1, 2).prod(1).argmax())]
        for k, p in enumerate(inside):
            part = own.copy()
            part[:, :cuts[k] - a] = False
            part[:, cuts[k + 1] - a:] = False
            mine[part] = p
    for _ in range(HAZE):  # the dimmer edge pixels go with the ink they border
        owner = _spread(owner, image > 0)
    return [np.where(owner == k, image, 0) for k in range(len(centres))]


def _columns(ink: np.ndarray, x0: int, x1: int) -> np.ndarray:
    """``ink`` dark outside its columns x0..x1-1."""
    out = np.zeros_like(ink)
    out[:, x0:x1] = ink[:, x0:x1]
    return out


def _faintest(ink: np.ndarray, a: int, left: float, right: float) -> list[int]:
    """Up to ``CUTS`` columns between two centres where a piece (its column sums ``ink``,
    from column ``a``) has the least ink, the faintest first."""
    lo, hi = int(np.ceil(left)), int(np.floor(right))
    if hi <= lo:
        return [int(round((left + right) / 2))]
    order = np.argsort(ink[lo - a:hi - a + 1], kind="stable")[:CUTS]
    return [lo + int(i) for i in order]


def _spread(owner: np.ndarray, free: np.ndarray) -> np.ndarray:
    """``owner`` with each unowned ``free`` pixel given a neighbour's owner (8-connected)."""
    padded = np.pad(owner, 1, constant_values=-1)
    h, w = owner.shape
    out = owner.copy()
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            near = padded[1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
            take = (out < 0) & free & (near >= 0)
            out[take] = near[take]
    return out


def _peak(probs: np.ndarray, s: Segment) -> int:
    """The frame of a segment where its character is most probable."""
    return s.first + int(probs[s.first:s.last + 1, s.label].argmax())


def second_opinion(found: list[list[Segment]], probs: np.ndarray, frames: torch.Tensor,
                   centres: np.ndarray, images: torch.Tensor, reader: DigitReader
                   ) -> tuple[list[list[Segment]], list[list[float]]]:
    """Each line's segments read again: the digit of highest line probability (the best
    frame among those nearer this digit than its neighbours) times digit-reader
    probability. ``probs`` (B, T, C) the line reader's output strips (``frames[b]`` of
    line b's are the line's), ``centres`` (T,)
    each output's column in the line, ``images`` (B, 32, W) uint8. Returns the segments
    with their new labels and each digit's combined probability."""
    inks, line_p = [], []
    for b, segs in enumerate(found):
        if not segs:
            continue
        peaks = [_peak(probs[b], s) for s in segs]
        mine = []
        for k in range(len(segs)):
            lo = (peaks[k - 1] + peaks[k]) // 2 + 1 if k else 0
            hi = (peaks[k] + peaks[k + 1]) // 2 if k + 1 < len(peaks) else int(frames[b]) - 1
            p = probs[b, lo:hi + 1, :DIGITS].max(0)
            mine.append(p / p.sum())

        def agree(sides: list[np.ndarray], which: list[int], mine=mine) -> np.ndarray:
            return (reader.read(sides) * np.stack([mine[k] for k in which])).sum(1)

        inks += cut_digits(images[b].numpy(), np.asarray(centres, dtype=np.float64)[peaks],
                           sure=agree)
        line_p += mine
    where = [(b, k) for b, segs in enumerate(found) for k in range(len(segs))]
    out = [list(s) for s in found]
    digit_probs = [[float(probs[b, s.first:s.last + 1, s.label].max()) for s in segs]
                   for b, segs in enumerate(found)]
    for (b, k), p1, p2 in zip(where, line_p, reader.read(inks)):
        if not p2.any():  # no ink bright enough: the line reader's word stands
            continue
        joint = p1 * p2 / (p1 * p2).sum()
        label = int(joint.argmax())
        s = out[b][k]
        out[b][k] = Segment(label, s.first, s.last)
        digit_probs[b][k] = float(joint[label])
    return out, digit_probs
