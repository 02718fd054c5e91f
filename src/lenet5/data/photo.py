"""From a photo or scan of handwriting to ink, and from ink to MNIST digits.

Reusable stages, each a plain function on numpy arrays:

1. :func:`ink_map`: grey levels -> ink strength per pixel (0 = paper, 1 = black ink). The
   paper's own brightness is estimated locally and divided out, so uneven light,
   vignetting and shadow edges cancel; light ink on dark is turned round first. Also the
   binary :attr:`InkMap.mask` of confident ink, the lines of ruled or squared paper taken
   out of it.
2. :func:`find_blobs` / :func:`pick_digit`: the connected pieces of ink and their
   statistics; the digit's pieces: the main one and those near it (a ``5``'s hat, a
   broken stroke), not specks, lines, shadows or the sheet's edge.
3. :func:`crop_ink` then :func:`mnist_normalize`: the digit's ink cut out and made into
   an MNIST digit: the longer side scaled to 20 px keeping the aspect ratio
   (anti-aliased), pasted into 28x28 with its centre of mass at the centre.

:func:`read_digit` runs them for an image of one digit, twice: once on the whole image,
reduced, to find the digit; then on the digit's neighbourhood at up to ``digit_side`` px,
the paper window scaled to the digit, to read it. A reader of several digits on a line
can do the same with its own grouping of blobs between stages 2 and 3.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..errors import Lenet5Error
from . import filters
from .ink import (
    DEFAULT,
    InkMap,
    PhotoConfig,
    closing,
    even_paper,
    grey_image,
    grey_levels,
    ink_map,
    is_light_on_dark,
    paper_level,
    remove_lines,
)

__all__ = ["DEFAULT", "FIELD", "INK_BOX", "Blob", "InkMap", "PhotoConfig", "bounding_box",
           "closer_look", "closing", "crop_ink", "even_paper", "find_blobs", "grey_image", "grey_levels",
           "ink_map", "is_light_on_dark", "line_ink", "looks_written", "mnist_normalize",
           "paper_level", "pick_digit", "pick_line", "read_digit", "remove_lines"]

INK_BOX = 20  # MNIST: the digit fits a 20x20 box ...
FIELD = 28  # ... centred by mass in a 28x28 field
Box = tuple[slice, slice]  # (rows, columns), as numpy indexes and filters.find_objects give


@dataclass(frozen=True)
class Blob:
    """A connected piece of ink: ``label`` in the label image, its box, pixel count,
    summed ink, and how many of its pixels lie on the image's outermost rows and columns."""

    label: int
    box: Box
    area: int
    mass: float
    contact: int

    @property
    def side(self) -> int:
        return max(self.box[0].stop - self.box[0].start, self.box[1].stop - self.box[1].start)

    @property
    def edge(self) -> bool:
        """It touches the image's edge."""
        return self.contact > 0

    @property
    def fill(self) -> float:
        """The share of its box it covers: strokes cover little, a shadow's patch much."""
        return self.area / ((self.box[0].stop - self.box[0].start) * (self.box[1].stop - self.box[1].start))

    @property
    def hugs_edge(self) -> bool:
        """It runs along the image's edge for longer than three of its own widths (its
        area over its length): the sheet's edge, a table or a shadow, not a stroke."""
        return self.contact > 3 * self.area / self.side


def find_blobs(mask: np.ndarray, ink: np.ndarray) -> tuple[np.ndarray, list[Blob]]:
    """Stage 2a: the mask's 8-connected pieces: the label image and one Blob each."""
    labels, n = filters.label(mask)
    if n == 0:
        return labels, []
    at = np.flatnonzero(labels)  # the ink's pixels only, in raster order: the same sums
    which = labels.ravel()[at]
    areas = np.bincount(which, minlength=n + 1)[1:]
    masses = np.bincount(which, weights=ink.ravel()[at], minlength=n + 1)[1:]
    frame = np.concatenate([labels[0], labels[-1], labels[1:-1, 0], labels[1:-1, -1]])
    contact = np.bincount(frame, minlength=n + 1)
    blobs = [Blob(i + 1, box, int(areas[i]), float(masses[i]), int(contact[i + 1]))
             for i, box in enumerate(filters.find_objects(labels, at))]
    return labels, blobs


def _gap(a: tuple[slice, slice], b: tuple[slice, slice]) -> int:
    """Pixels between two boxes (0 when they overlap)."""
    dy = max(0, a[0].start - b[0].stop, b[0].start - a[0].stop)
    dx = max(0, a[1].start - b[1].stop, b[1].start - a[1].stop)
    return max(dy, dx)


def _union(a: tuple[slice, slice], b: tuple[slice, slice]) -> tuple[slice, slice]:
    return (slice(min(a[0].start, b[0].start), max(a[0].stop, b[0].stop)),
            slice(min(a[1].start, b[1].start), max(a[1].stop, b[1].stop)))


def _candidates(blobs: list[Blob], within: Box | None = None) -> list[Blob]:
    """The blobs that may be writing: no solid blob hugging the image's edge (a shadow's
    patch, a table), no other hugging one unless nothing else of size is left (a tightly
    cropped digit may run along the edge); those overlapping ``within`` if any do."""
    blobs = [b for b in blobs if not (b.hugs_edge and b.fill >= 0.45)]
    inner = [b for b in blobs if not b.hugs_edge]
    if inner and max(b.mass for b in inner) >= 0.05 * max(b.mass for b in blobs):
        blobs = inner
    if within is not None:
        blobs = [b for b in blobs if _gap(b.box, within) == 0] or blobs
    return blobs


def pick_digit(blobs: list[Blob], cfg: PhotoConfig = DEFAULT, within: Box | None = None
               ) -> list[Blob]:
    """Stage 2b: the blobs of the digit, main one first. Solid blobs hugging the image's
    edge are left out (a shadow's patch, a table), and other hugging ones unless nothing
    else of size is left. The main one has the most ink (one
    touching the image's edge counting a quarter: a cut-off neighbour), among those that
    overlap ``within`` if given; then, largest first, every blob with ``min_blob`` of its
    ink or more within ``near`` of the digit's size of the digit's box so far."""
    blobs = _candidates(blobs, within)
    if not blobs:
        return []
    main = max(blobs, key=lambda b: b.mass * (0.25 if b.edge else 1.0))
    chosen, box = [main], main.box
    for b in sorted(blobs, key=lambda b: -b.mass):
        if b is main or b.mass < cfg.min_blob * main.mass:
            continue
        if _gap(box, b.box) <= cfg.near * _side(box):
            chosen.append(b)
            box = _union(box, b.box)
    return chosen


def _side(box: Box) -> int:
    return max(box[0].stop - box[0].start, box[1].stop - box[1].start)


def bounding_box(blobs: list[Blob]) -> Box:
    """The box around all the blobs."""
    box = blobs[0].box
    for b in blobs[1:]:
        box = _union(box, b.box)
    return box


def looks_written(labels: np.ndarray, blobs: list[Blob], min_side: int = 8,
                  min_width: float = 0.035, size: float | None = None) -> bool:
    """Whether the blobs can be writing: ``size`` (default: their box's longer side; a
    line's height for a line) at least ``min_side`` px, and their strokes (twice their
    area over their outline) at least ``min_width`` of it: not a grid crossing's dot nor
    what is left of a line."""
    box = bounding_box(blobs)
    size = _side(box) if size is None else size
    if size < min_side:
        return False
    own = np.isin(labels[box], [b.label for b in blobs])
    outline = np.count_nonzero(own & ~filters.binary_erosion(own))
    return 2 * np.count_nonzero(own) / max(outline, 1) >= min_width * size


def crop_ink(imap: InkMap, labels: np.ndarray, blobs: list[Blob], cfg: PhotoConfig = DEFAULT
             ) -> np.ndarray:
    """Stage 3a: the blobs' ink cut to their box, float32 0..1: 1 from the blobs' typical
    stroke level up, 0 below ``faint`` of it. Around the blobs' confident pixels their soft
    edges are kept (as far as a twentieth of their size: one MNIST pixel); other blobs,
    the lines of ruled paper and the paper in the box are zeroed."""
    return _ink_of(imap, labels, blobs, cfg)[0]


def _ink_of(imap: InkMap, labels: np.ndarray, blobs: list[Blob], cfg: PhotoConfig = DEFAULT,
            size: float | None = None) -> tuple[np.ndarray, Box]:
    """``crop_ink``'s crop, and the box of ``labels`` it was cut from. ``size``: what one
    MNIST pixel is a twentieth of (default: the blobs' box's longer side)."""
    box = bounding_box(blobs)
    grow = max(2, round((_side(box) if size is None else size) / INK_BOX))
    h, w = labels.shape
    box = (slice(max(0, box[0].start - grow), min(h, box[0].stop + grow)),
           slice(max(0, box[1].start - grow), min(w, box[1].stop + grow)))
    own = np.isin(labels[box], [b.label for b in blobs])
    near = filters.binary_dilation(own, grow)
    lines = filters.binary_dilation(imap.lines[box], 2)  # and their soft edges
    near &= own | ~(lines | (labels[box] > 0))
    ink = imap.ink[box] * near
    full = max(float(np.quantile(ink[own], 0.75)) if own.any() else 1.0, 1e-3)
    return np.clip((ink / full - cfg.faint) / (1 - cfg.faint), 0, 1).astype(np.float32), box


def mnist_normalize(ink: np.ndarray, floor: float = 0.15) -> np.ndarray:
    """Stage 3b: a 28x28 uint8 MNIST digit (ink 255 on 0) from an ink crop (float 0..1).

    As MNIST was made: ink below ``floor`` dropped, cut to the ink's box, the longer side
    scaled to 20 px keeping the aspect ratio (anti-aliased), pasted into 28x28 so that the
    centre of mass lands on the centre (14, 14).
    """
    ink = np.where(ink >= floor, ink, 0).astype(np.float32)
    rows, cols = np.nonzero(ink)
    if rows.size == 0:
        raise Lenet5Error("no ink to normalize")
    ink = ink[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    h, w = ink.shape
    scale = INK_BOX / max(h, w)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    box = Image.fromarray(ink).resize(
        (new_w, new_h), Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BICUBIC)
    digit = np.clip(np.asarray(box), 0, 1)
    field = np.zeros((FIELD, FIELD), dtype=np.float32)
    total = digit.sum()
    cy, cx = ((np.indices(digit.shape) * digit).sum(axis=(1, 2)) / total) if total > 0 else (
        (new_h - 1) / 2, (new_w - 1) / 2)
    top = min(max(int(round(FIELD / 2 - cy)), 0), FIELD - new_h)  # MNIST's centres of mass
    left = min(max(int(round(FIELD / 2 - cx)), 0), FIELD - new_w)  # sit at (14.0, 14.0)
    field[top:top + new_h, left:left + new_w] = digit
    return np.round(field * 255).astype(np.uint8)


def closer_look(grey: Image.Image, box: Box, scale: float, inverted: bool,
                cfg: PhotoConfig = DEFAULT, name: str = "image") -> tuple[InkMap, Box]:
    """Stage 1 again, for what ``box`` (in an ink map of ``grey`` reduced by ``scale``)
    holds: its neighbourhood (``margin`` of its longer side around it) cut from the full
    image, reduced so that the box's longer side is at most ``digit_side`` px, the paper
    window ``digit_window`` of that side. Returns the new ink map and where the box lies
    in it."""
    pad = cfg.margin * _side(box)
    region = (max(0, int((box[1].start - pad) / scale)), max(0, int((box[0].start - pad) / scale)),
              min(grey.width, int(np.ceil((box[1].stop + pad) / scale))),
              min(grey.height, int(np.ceil((box[0].stop + pad) / scale))))
    side = _side(box) / scale  # in image px
    longest = max(region[2] - region[0], region[3] - region[1])
    near, r = grey_levels(grey, max(1, round(cfg.digit_side * longest / side)), region)
    within = tuple(slice(max(0, int((b.start / scale - o) * r)), int(np.ceil((b.stop / scale - o) * r)))
                   for b, o in zip(box, (region[1], region[0])))
    return ink_map(near, cfg.digit_window * side * r, cfg, inverted, name), within


def read_digit(img: Image.Image, name: str = "image", cfg: PhotoConfig = DEFAULT) -> np.ndarray:
    """All stages: a 28x28 uint8 MNIST-style digit (ink 255 on 0) from an image of one
    digit. Raises ``Lenet5Error`` (one line, starting with ``name``) when there is no ink.

    Twice: the digit is found on the image reduced to ``work_side``, the paper window
    ``find_window`` of its shorter side; then read from a closer look at the full image
    (``closer_look``), or as found if that sees nothing."""
    grey = grey_image(img)
    work, scale = grey_levels(grey, cfg.work_side)
    found = ink_map(work, cfg.find_window * min(work.shape), cfg, name=name)
    labels, blobs = find_blobs(found.mask, found.ink)
    digit = pick_digit(blobs, cfg)
    if not digit or not looks_written(labels, digit):
        raise Lenet5Error(f"{name}: no ink found (nothing stands out from the background)")
    try:
        near, within = closer_look(grey, bounding_box(digit), scale, found.inverted, cfg, name)
    except Lenet5Error:
        return mnist_normalize(crop_ink(found, labels, digit, cfg))
    near_labels, near_blobs = find_blobs(near.mask, near.ink)
    near_digit = pick_digit(near_blobs, cfg, within)
    if not near_digit:
        return mnist_normalize(crop_ink(found, labels, digit, cfg))
    return mnist_normalize(crop_ink(near, near_labels, near_digit, cfg))


def _overlap(a: slice, b: slice) -> int:
    return min(a.stop, b.stop) - max(a.start, b.start)


def _height(box: Box) -> int:
    return box[0].stop - box[0].start


def _beside(b: Blob, c: Blob, reach: float) -> float | None:
    """How far ``b`` lies from ``c`` along a line of writing, or None if it is not on the
    line beside ``c``: rows overlapping by a third of the shorter and at most ``reach``
    columns apart, or just above or below it (a ``5``'s detached hat)."""
    gap = max(0, b.box[1].start - c.box[1].stop, c.box[1].start - b.box[1].stop)
    if _overlap(b.box[0], c.box[0]) * 3 >= min(_height(b.box), _height(c.box)) and gap <= reach:
        return gap
    if _overlap(b.box[1], c.box[1]) > 0 and _gap(b.box, c.box) <= 0.15 * _height(c.box):
        return 0
    return None


def pick_line(blobs: list[Blob], cfg: PhotoConfig = DEFAULT, within: Box | None = None
              ) -> list[Blob]:
    """The blobs of one line of digits (a written number), main one first: as
    ``pick_digit`` finds the main blob (the most ink, no shadow or table along the edge),
    then, nearest first, every blob beside one already chosen (``_beside``), at most
    ``line_gap`` of the line's height (the median of its blobs') along it. Specks (under
    ``min_blob`` of the main blob's ink, or under a quarter of its height both ways),
    marks above or below the line and marks further along it are left out."""
    blobs = _candidates(blobs, within)
    if not blobs:
        return []
    main = max(blobs, key=lambda b: b.mass * (0.25 if b.edge else 1.0))
    h = _height(main.box)
    pool = [b for b in blobs if b is not main and b.mass >= cfg.min_blob * main.mass
            and 4 * _side(b.box) >= h]
    chosen = [main]
    while pool:
        reach = cfg.line_gap * float(np.median([_height(b.box) for b in chosen]))
        near = [(g, b) for b in pool for c in chosen
                if (g := _beside(b, c, reach)) is not None]
        if not near:
            break
        best = min(near, key=lambda gb: gb[0])[1]
        chosen.append(best)
        pool.remove(best)
    return chosen


def line_ink(img: Image.Image, cfg: PhotoConfig = DEFAULT, name: str = "image"
             ) -> tuple[np.ndarray, float]:
    """The ink of a written number (a line of digits) in an image: a uint8 ink map of the
    whole image (bright ink on black, every other pixel 0) at a working resolution, and its
    scale: a box in the map is ``box / scale`` in the image. For
    ``lenet5.reading.line.read_ink_maps``.

    The stages of ``read_digit``, with the line's blobs (``pick_line``) instead of one
    digit's; the line read again, its paper window ``digit_window`` of its digits' height,
    at a resolution where they are about ``line_height`` px high (never above the image's
    own). Raises ``Lenet5Error("<name>: no ink found ...")`` when nothing stands out."""
    grey = grey_image(img)
    work, scale = grey_levels(grey, cfg.work_side)
    found = ink_map(work, cfg.find_window * min(work.shape), cfg, name=name)
    labels, blobs = find_blobs(found.mask, found.ink)
    line = pick_line(blobs, cfg)
    height = float(np.median([_height(b.box) for b in line])) if line else 0.0
    if not line or not looks_written(labels, line, size=height):
        raise Lenet5Error(f"{name}: no ink found (nothing stands out from the background)")
    box = bounding_box(line)
    height /= scale  # image px
    r = min(1.0, cfg.line_height / height)
    pad = cfg.margin * height
    region = (max(0, int(box[1].start / scale - pad)), max(0, int(box[0].start / scale - pad)),
              min(grey.width, int(np.ceil(box[1].stop / scale + pad))),
              min(grey.height, int(np.ceil(box[0].stop / scale + pad))))
    near, r = grey_levels(grey, max(1, round(r * max(region[2] - region[0], region[3] - region[1]))),
                          region)
    within = tuple(slice(max(0, int((b.start / scale - o) * r)), int(np.ceil((b.stop / scale - o) * r)))
                   for b, o in zip(box, (region[1], region[0])))
    try:
        imap = ink_map(near, cfg.digit_window * height * r, cfg, found.inverted, name)
        near_labels, near_blobs = find_blobs(imap.mask, imap.ink)
        chosen = pick_line(near_blobs, cfg, within)
    except Lenet5Error:
        chosen = []
    offset = (round(region[1] * r), round(region[0] * r))
    if not chosen:  # the closer look saw nothing: as first found
        imap, near_labels, chosen, r, offset = found, labels, line, scale, (0, 0)
    ink, (rows, cols) = _ink_of(imap, near_labels, chosen, cfg,
                                np.median([_height(b.box) for b in chosen]))
    out = np.zeros((max(1, round(grey.height * r)), max(1, round(grey.width * r))), np.uint8)
    y, x = rows.start + offset[0], cols.start + offset[1]
    part = np.round(ink[:out.shape[0] - y, :out.shape[1] - x] * 255).astype(np.uint8)
    out[y:y + part.shape[0], x:x + part.shape[1]] = part
    return out, r
