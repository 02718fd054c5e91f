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
column where both sides read best as digits (of the two with the least ink); a piece
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
CUTS = 2  # columns tried where two digits touch (validation numbers: 2 read as 4 did)
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


@dataclass
class _Join:
    """A piece of ink holding several digits' centres: where it is cut between them."""

    box: tuple[slice, slice]
    own: np.ndarray  # the piece's pixels within box
    digits: np.ndarray  # the digits whose centres it holds, left to right
    cuts: list[int]  # its first column, a cut between each two digits, its last + 1
    options: list[list[int]]  # the columns each cut may be at, the faintest first


class LineCut:
    """One line's ink in pieces, each assigned to digits: ``cut_digits`` in steps, so that
    the cuts of many lines can be tried in one batch (``settle``)."""

    def __init__(self, image: np.ndarray, centres: np.ndarray, piece: int = PIECE):
        self.image, self.centres = image, centres
        labels, _ = filters.label(image >= piece)
        self.owner = np.full(image.shape, -1)
        self.joins: list[_Join] = []
        columns = np.arange(image.shape[1])
        for j, box in enumerate(filters.find_objects(labels), start=1):
            cols = box[1]
            own = labels[box] == j
            a, b = cols.start, cols.stop - 1
            inside = np.flatnonzero((centres >= a) & (centres <= b))
            if len(inside) == 0:  # a dot, a stroke apart: the nearest digit's
                mass = own.sum(0)
                cx = (mass * columns[cols]).sum() / mass.sum()
                self.owner[box][own] = int(np.abs(centres - cx).argmin())
                continue
            ink = (image[box] * own).sum(0)
            options = [_faintest(ink, a, centres[p], centres[q])
                       for p, q in zip(inside, inside[1:])]
            self.joins.append(_Join(box, own, inside, [a] + [o[0] for o in options] + [b + 1],
                                    options))

    def trials(self) -> list[tuple[_Join, int, int, np.ndarray, np.ndarray]]:
        """Each other way to cut: (join, cut k, column, the ink left of it up to the cut
        before, the ink right of it up to the cut after)."""
        out = []
        for join in self.joins:
            a = join.box[1].start
            ink = self.image[join.box] * join.own
            for k, o in enumerate(join.options, start=1):
                for c in o if len(o) > 1 else ():
                    out.append((join, k, c, _columns(ink, join.cuts[k - 1] - a, c - a),
                                _columns(ink, c - a, join.cuts[k + 1] - a)))
        return out

    def inks(self) -> list[np.ndarray]:
        """Each digit's ink, the cuts as they stand; the dimmer pixels follow their piece."""
        owner = self.owner.copy()
        for join in self.joins:
            a = join.box[1].start
            mine = owner[join.box]
            for k, p in enumerate(join.digits):
                part = join.own.copy()
                part[:, :join.cuts[k] - a] = False
                part[:, join.cuts[k + 1] - a:] = False
                mine[part] = p
        for _ in range(HAZE):
            owner = _spread(owner, self.image > 0)
        return [np.where(owner == k, self.image, 0) for k in range(len(self.centres))]


Sure = Callable[[list[np.ndarray], list[tuple[int, int]]], np.ndarray]


def settle(lines: list[LineCut], sure: Sure) -> None:
    """Cut each join of ``lines`` where both sides read best: ``sure(inks, digits)`` says
    how well each ink reads as its digit ((line, digit) in ``lines``); one call for all."""
    trials = [(i, t) for i, line in enumerate(lines) for t in line.trials()]
    if not trials:
        return
    inks = [side for _, t in trials for side in t[3:]]
    which = [(i, int(t[0].digits[t[1] - 1 + s])) for i, t in trials for s in (0, 1)]
    both = sure(inks, which).reshape(-1, 2).prod(1)
    best: dict[tuple[int, int], tuple[float, int]] = {}
    for (_, (join, k, c, _, _)), score in zip(trials, both):
        key = (id(join), k)
        if key not in best or score > best[key][0]:
            best[key] = (float(score), c)
    for line in lines:
        for join in line.joins:
            for k in range(1, len(join.cuts) - 1):
                if (id(join), k) in best:
                    join.cuts[k] = best[(id(join), k)][1]


def cut_digits(image: np.ndarray, centres: np.ndarray, piece: int = PIECE,
               sure: Sure | None = None) -> list[np.ndarray]:
    """The ink of each digit of a uint8 line ``image`` (ink bright), the digits centred on
    the columns ``centres`` (ascending): one image per digit, other digits' ink dark.
    ``sure``: as for ``settle`` (the line is line 0); given, touching digits are cut at
    whichever of their ``CUTS`` faintest columns both sides read best at (the paper's
    recognition-based segmentation), else at the faintest."""
    line = LineCut(image, centres, piece)
    if sure is not None:
        settle([line], sure)
    return line.inks()


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
    line b's are the line's), ``centres`` (T,) each output's column in the line,
    ``images`` (B, 32, W) uint8. Touching digits are cut where both sides agree best with
    both readers, all lines' trials read in one batch. Returns the segments with their
    new labels and each digit's combined probability."""
    lines, mine, where = [], [], []
    for b, segs in enumerate(found):
        if not segs:
            continue
        peaks = [_peak(probs[b], s) for s in segs]
        for k in range(len(segs)):
            lo = (peaks[k - 1] + peaks[k]) // 2 + 1 if k else 0
            hi = (peaks[k] + peaks[k + 1]) // 2 if k + 1 < len(peaks) else int(frames[b]) - 1
            p = probs[b, lo:hi + 1, :DIGITS].max(0)
            mine.append(p / p.sum())
            where.append((b, k))
        lines.append(LineCut(images[b].numpy(), np.asarray(centres, dtype=np.float64)[peaks]))
    first = np.cumsum([0] + [len(line.centres) for line in lines])
    # each digit as cut at the faintest columns, read in the same batch as the other cuts
    # tried; after settling, only the digits whose ink changed are read again
    inks = [line.inks() for line in lines]
    before = [ink for line_inks in inks for ink in line_inks]
    cuts = [[list(join.cuts) for join in line.joins] for line in lines]
    read: dict[str, np.ndarray] = {}

    def agree(inks: list[np.ndarray], which: list[tuple[int, int]]) -> np.ndarray:
        p = reader.read(before + inks)
        read["before"] = p[:len(before)]
        return (p[len(before):] * np.stack([mine[first[i] + k] for i, k in which])).sum(1)

    settle(lines, agree)  # a cut is as good as both sides agree with both readers
    second = read["before"] if "before" in read else reader.read(before)
    after = [ink for line, was, line_inks in zip(lines, cuts, inks)
             for ink in (line.inks() if [j.cuts for j in line.joins] != was else line_inks)]
    moved = [i for i, (a, b) in enumerate(zip(before, after)) if not np.array_equal(a, b)]
    if moved:
        second[moved] = reader.read([after[i] for i in moved])
    out = [list(s) for s in found]
    digit_probs = [[float(probs[b, s.first:s.last + 1, s.label].max()) for s in segs]
                   for b, segs in enumerate(found)]
    for (b, k), p1, p2 in zip(where, mine, second):
        if not p2.any():  # no ink bright enough: the line reader's word stands
            continue
        joint = p1 * p2 / (p1 * p2).sum()
        label = int(joint.argmax())
        s = out[b][k]
        out[b][k] = Segment(label, s.first, s.last)
        digit_probs[b][k] = float(joint[label])
    return out, digit_probs
