"""Stage 1 of reading handwriting in photos: from grey levels to ink.

The paper's own brightness is estimated under every pixel and divided out, so uneven
light, vignetting and the steps of shadow edges cancel (``paper_level``, a grey closing,
or one level when the paper is evenly lit); light ink on a dark board is found and turned
round first (``is_light_on_dark``); ``ink_map`` gives the ink strength per pixel and the
mask of confident ink, from which ``remove_lines`` takes the lines of ruled and squared
paper. Used through ``lenet5.data.photo``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

from ..errors import Lenet5Error
from . import filters


@dataclass(frozen=True)
class PhotoConfig:
    """The stages' knobs. Fractions are of the image's or the digit's size, as named."""

    work_side: int = 1024  # px: the digit is found on the image reduced to this longer side
    digit_side: int = 160  # px: it is read again from the full image at up to this size
    find_window: float = 0.2  # of the shorter side: the paper window when finding the digit
    digit_window: float = 0.5  # of the digit's longer side: the paper window when reading it
    margin: float = 0.5  # of the digit's longer side: paper read around it
    flat_below: float = 0.06  # paper brightness varying less than this is taken as even
    min_contrast: float = 0.15  # the strongest strokes darken the paper this much at least
    noise_sigmas: float = 5.0  # ink stands this many noise deviations above paper ...
    min_ink: float = 0.06  # ... and darkens it by at least this much
    strong: float = 0.4  # of the strongest strokes' level: weaker ink is lines or halo
    faint: float = 0.1  # of the digit's stroke level: fainter ink is not drawn into the digit
    min_blob: float = 0.02  # of the main blob's ink: smaller pieces are specks
    near: float = 0.35  # of the digit's longer side: how far apart its pieces may lie
    line_span: float = 0.6  # of the image's width or height: a straight run this long is a line
    line_gap: float = 1.5  # of a written number's height: how far apart its digits may lie
    line_height: int = 64  # px: a written number is read at most at this height


DEFAULT = PhotoConfig()


@dataclass
class InkMap:
    """Stage 1's result for one grey image (h, w).

    ``ink``: float32, 0 paper .. 1 black, relative to the paper under each pixel;
    ``mask``: bool, confident ink (above the noise and ``strong`` of ``strength``), lines
    of ruled or squared paper removed; ``lines``: bool, what was removed as lines (their
    faint edges aside); ``noise``: the paper's standard deviation in ink
    units; ``strength``: the ink level of the strongest strokes (what ``crop_ink`` maps
    to full ink); ``inverted``: the image was light ink on dark and was turned round.
    """

    ink: np.ndarray
    mask: np.ndarray
    lines: np.ndarray
    noise: float
    strength: float
    inverted: bool



def grey_image(img: Image.Image) -> Image.Image:
    """The image as 8-bit grey ("L"): EXIF rotation applied, transparency laid on white."""
    img = ImageOps.exif_transpose(img)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", img.size, (255, 255, 255, 255)), img)
    return img.convert("L")


def grey_levels(grey: Image.Image, side: int, box: tuple[int, int, int, int] | None = None
                ) -> tuple[np.ndarray, float]:
    """float32 grey levels of ``grey`` (or its ``box``, left, top, right, bottom), reduced
    by area averaging so that the longer side is at most ``side``; and the scale (<= 1)."""
    if box is not None:
        grey = grey.crop(box)
    scale = min(1.0, side / max(grey.size))
    if scale < 1:
        size = (max(1, round(grey.width * scale)), max(1, round(grey.height * scale)))
        grey = grey.resize(size, Image.Resampling.BOX)
    return np.asarray(grey, dtype=np.float32), scale


def _resize(a: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return np.asarray(Image.fromarray(a.astype(np.float32)).resize(
        (shape[1], shape[0]), Image.Resampling.BILINEAR))


def _coarse(a: np.ndarray, side: int) -> np.ndarray:
    """``a`` reduced (antialiased) to a longer side of at most ``side``."""
    scale = side / max(a.shape)
    if scale >= 1:
        return a
    return _resize(a, (max(1, round(a.shape[0] * scale)), max(1, round(a.shape[1] * scale))))


def even_paper(grey: np.ndarray, cfg: PhotoConfig = DEFAULT) -> float | None:
    """The paper's level if it is evenly lit (for dark ink on light paper), else None:
    a closing of a coarse copy, half its shorter side wide (no stroke survives it),
    varies less than ``flat_below``."""
    coarse = _coarse(grey, 128)
    lo, mid, hi = np.quantile(closing(coarse, max(3, int(0.5 * min(coarse.shape)) | 1)),
                              [0.05, 0.5, 0.95])
    return float(mid) if hi - lo < cfg.flat_below * max(hi, 1.0) else None


def is_light_on_dark(grey: np.ndarray, cfg: PhotoConfig = DEFAULT, prior: float = 2.5) -> bool:
    """Whether the ink is lighter than the paper.

    Evenly lit: the side on which the paper is even. Otherwise very bright images are
    paper (above half grey) and very dark ones a board or a screen (below 10%). In
    between, strokes are told by their shape: thin lines, dark or light, found by the
    Hessian of the log brightness on a coarse copy (one curvature much stronger than the
    other, at 1 to 3.5 px; a ridge is a light line, a valley a dark one). A shadow's
    edge is a step, as much ridge as valley; the inside of a loop is a blob, not a line.
    Light lines must outweigh dark ones ``prior`` times over (dark ink on light paper is
    the common case), counting only the strong ones: above half the level that the
    strongest few of either kind reach.
    """
    return _light_on_dark(grey, cfg, prior)[0]


def _light_on_dark(grey: np.ndarray, cfg: PhotoConfig = DEFAULT, prior: float = 2.5
                   ) -> tuple[bool, tuple[float | None, float | None]]:
    """``is_light_on_dark``, and ``even_paper`` of the image as it is and turned round
    (what ``paper_level`` would compute again)."""
    levels = even_paper(grey, cfg), even_paper(255.0 - grey, cfg)
    dark_even, light_even = levels[0] is not None, levels[1] is not None
    if dark_even != light_even:
        return light_even, levels
    coarse = _coarse(grey, 512)
    middle = float(np.median(coarse))
    if middle > 0.5 * 255 or middle < 0.1 * 255:
        return middle < 0.1 * 255, levels
    dark, light = line_strength(np.log(coarse + 8.0))
    n = min(dark.size - 1, max(20, int(1e-4 * dark.size)))
    strong = 0.5 * max(np.partition(dark, -n)[-n], np.partition(light, -n)[-n])
    if strong < 0.03:  # no line anywhere, only noise: a blank sheet, paper
        return False, levels
    light_mass = float(np.clip(light - strong, 0, None).sum())
    return light_mass > prior * float(np.clip(dark - strong, 0, None).sum()), levels


def line_strength(a: np.ndarray, sigmas=(1.0, 2.0, 3.5)) -> tuple[np.ndarray, np.ndarray]:
    """How much each pixel of ``a`` lies on a thin dark line and on a thin light one
    (flattened, a margin of the widest scale left out): the scale-normalized difference of
    the Hessian's two eigenvalues' magnitudes at the scale where it is largest, counted as
    dark if the larger eigenvalue is positive there (a valley), light if negative (a
    ridge). Taking one scale per pixel keeps a line's flanks, where the next scale up sees
    the opposite curvature, from counting for the other side."""
    best = np.zeros(a.shape, np.float32)
    sign = np.zeros(a.shape, np.float32)
    for s in sigmas:
        hxx = filters.gaussian_filter(a, s, order=(0, 2))
        hyy = filters.gaussian_filter(a, s, order=(2, 0))
        hxy = filters.gaussian_filter(a, s, order=(1, 1))
        mean, half = (hxx + hyy) / 2, np.sqrt(((hxx - hyy) / 2) ** 2 + hxy ** 2)
        big = np.where(mean >= 0, mean + half, mean - half)  # the eigenvalue of larger magnitude
        line = s * s * (np.abs(big) - np.abs(2 * mean - big))
        better = line > best
        best = np.where(better, line, best)
        sign = np.where(better, np.sign(big), sign)
    m = int(2 * sigmas[-1]) + 1
    if min(a.shape) > 4 * m:
        best, sign = best[m:-m, m:-m], sign[m:-m, m:-m]
    return (best * (sign > 0)).ravel(), (best * (sign < 0)).ravel()


_UNKNOWN = object()


def paper_level(grey: np.ndarray, window: int, cfg: PhotoConfig = DEFAULT, even=_UNKNOWN
                ) -> np.ndarray:
    """The paper's brightness under each pixel (h, w), for dark ink on light paper.

    Evenly lit (``even_paper``, unless given as ``even``): that one level. Otherwise a
    grey closing (a max then a min filter) ``window`` px wide: strokes narrower than the
    window vanish; gradients, vignetting and the steps of shadow edges stay.
    """
    level = even_paper(grey, cfg) if even is _UNKNOWN else even
    if level is not None:
        return np.full_like(grey, level)
    # on a copy halved while larger than 512 px (the paper varies slowly, or in steps
    # that moving by a pixel does not change), smoothed: a max filter takes noise's peaks
    f = 1
    while max(grey.shape) / f > 512 and window / f >= 6:
        f *= 2
    small = _coarse(grey, max(grey.shape) // f) if f > 1 else grey
    small = filters.gaussian_filter(small, 1.0, mode="nearest")
    k = max(3, int(window / f) | 1)
    paper = closing(small, k)
    return _resize(paper, grey.shape) if f > 1 else paper


def closing(a: np.ndarray, k: int) -> np.ndarray:
    """A k x k grey closing, the image continued past its edges by repeating them, far
    enough that the closing's second half (the min filter) still sees the first half's
    result computed from image pixels: a gradient running into the edge stays as it is,
    where padding each half on its own would lift it."""
    p = k // 2 + 1
    big = np.pad(a, p, mode="edge")
    return filters.grey_closing(big, k)[p:-p, p:-p]


def ink_map(grey: np.ndarray, window: int, cfg: PhotoConfig = DEFAULT,
            inverted: bool | None = None, name: str = "image") -> InkMap:
    """Stage 1: ink strength per pixel and the confident-ink mask of a grey image (float
    0..255, as ``grey_levels`` gives), the paper estimated over ``window`` px.
    ``inverted`` (light ink on dark) is found from the image when None.

    Raises ``Lenet5Error("<name>: no ink found ...")`` when the strongest strokes darken
    the paper by less than ``min_contrast`` or ``noise_sigmas`` noise deviations.
    """
    even = _UNKNOWN
    if inverted is None:
        inverted, levels = _light_on_dark(grey, cfg)
        even = levels[1 if inverted else 0]
    if inverted:
        grey = 255.0 - grey
    if even is _UNKNOWN:
        even = even_paper(grey, cfg)
    if even is None:
        paper = paper_level(grey, max(3, int(window) | 1), cfg, even)
    else:  # one level (paper_level's full array of it, as a 0-d array: the same figures)
        paper = np.full_like(grey, even, shape=())
    floor = 0.2 * float(np.quantile(paper, 0.95)) + 1.0  # deep shadow, a table: not divided up
    ratio = (paper - grey) / np.maximum(paper, floor)
    sample = ratio[::3, ::3]
    noise = 1.4826 * float(np.median(np.abs(sample - np.median(sample)))) + 1e-3
    small = min(grey.shape) < 48  # a drawing or an MNIST digit: no noise to smooth away
    smooth = ratio if small else filters.gaussian_filter(ratio, 1.0)
    threshold = max(cfg.noise_sigmas * noise / (1 if small else 2), cfg.min_ink)
    candidate = smooth > threshold
    strength = _stroke_strength(smooth, candidate) if candidate.any() else 0.0
    if strength < max(cfg.min_contrast, cfg.noise_sigmas * noise):
        raise Lenet5Error(f"{name}: no ink found (nothing stands out from the background)")
    # lines are looked for among all the ink, faint ruling included, so that crop_ink can
    # leave out their faint parts too; the mask is the confident part of what is left
    cleaned = remove_lines(candidate, smooth, cfg)
    mask = cleaned & (smooth > max(threshold, cfg.strong * strength))
    return InkMap(np.clip(ratio, 0, 1).astype(np.float32), mask, candidate & ~cleaned, noise,
                  strength, inverted)


def _stroke_strength(smooth: np.ndarray, candidate: np.ndarray) -> float:
    """How dark the strongest strokes are: the ink level that the darkest few dozen
    candidate pixels reach (a stroke's core, not one pixel of a speck)."""
    values = smooth[candidate]
    n = max(20, int(5e-5 * smooth.size))
    if values.size <= n:
        return float(values.min())
    return float(np.partition(values, values.size - n)[values.size - n])


def remove_lines(mask: np.ndarray, smooth: np.ndarray, cfg: PhotoConfig = DEFAULT) -> np.ndarray:
    """The mask without the lines of ruled or squared paper: straight, thin runs of ink
    across at least ``line_span`` of the image, within 8 degrees of horizontal or vertical
    (a projection of the mask at each angle, as a Hough transform does). Where a stroke
    crosses a line, the line's pixels between the stroke's two sides are kept; so are
    those clearly darker than the line."""
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return mask
    level = smooth[ys, xs]
    line = np.zeros(ys.size, bool)
    keep = np.zeros(ys.size, bool)
    thickest = 1
    h, w = mask.shape
    angles = np.deg2rad(np.arange(-8, 8.01, 0.5))
    for along, across, extent, perp in ((xs, ys, w, h), (ys, xs, h, w)):
        for _ in range(3):  # under perspective the lines are a few angles
            live = ~line
            if not live.any():
                break
            best = _best_angle(along[live], across[live], angles)
            # a pixel's width of drift along the whole line: refine to a 0.05 degree step
            best = _best_angle(along[live], across[live], best[1] + np.deg2rad(np.arange(-0.5, 0.51, 0.05)))
            if best[0] < cfg.line_span * extent:
                break
            _, t, lo, counts = best
            bins, thick = _line_bins(counts, cfg.line_span * extent, max(4, 0.03 * perp))
            if not bins.any():
                break
            thickest = max(thickest, thick)
            rho = np.round(across * np.cos(t) - along * np.sin(t)).astype(np.int64) - lo
            on = (rho >= 0) & (rho < counts.size) & bins[np.clip(rho, 0, counts.size - 1)] & live
            keep |= on & (level > 1.6 * float(np.quantile(level[on], 0.75)))
            line |= on
    if not line.any():
        return mask
    out = mask.copy()
    out[ys[line & ~keep], xs[line & ~keep]] = False
    reach = thickest + 4
    bridged = filters.binary_closing(out, reach, axis=0) | filters.binary_closing(out, reach, axis=1)
    out[ys[line], xs[line]] |= bridged[ys[line], xs[line]]
    return out


def _best_angle(along: np.ndarray, across: np.ndarray, angles: np.ndarray, chunk: int = 1 << 15
                ) -> tuple[int, float, int, np.ndarray]:
    """The angle whose projection piles the most pixels into one bin: (that count, the
    angle, the first bin's offset, the counts); the first such angle on a tie.

    The bins are ``round(across * cos(t) - along * sin(t))``, to the last bit (the same
    float64 operations), for several angles at a time: one (angles, pixels) array and one
    ``bincount`` for them all, each angle's bins placed after the previous angle's, the
    room each needs bounded from the pixels' extremes (no pass to find it)."""
    along, across = np.asarray(along, np.float64), np.asarray(across, np.float64)
    cos = np.array([np.cos(t) for t in angles])  # the scalar functions, as one angle at a time
    sin = np.array([np.sin(t) for t in angles])
    a0, a1, c0, c1 = along.min(), along.max(), across.min(), across.max()
    lo = np.floor(np.minimum(c0 * cos, c1 * cos) - np.maximum(a0 * sin, a1 * sin)) - 1
    hi = np.ceil(np.maximum(c0 * cos, c1 * cos) - np.minimum(a0 * sin, a1 * sin)) + 1
    room = (hi - lo).astype(np.int64) + 1
    best = (-1, 0.0, 0, np.zeros(1, np.int64))
    step = max(1, chunk // along.size)
    buf = np.empty((2, min(step, len(angles)), along.size))
    bins = np.empty(buf.shape[1:], np.int32)  # reused: no fresh pages per chunk
    for s in range(0, len(angles), step):
        n = len(angles[s:s + step])
        rho, part = buf[0, :n], buf[1, :n]
        np.multiply(cos[s:s + n, None], across, out=rho)
        np.multiply(sin[s:s + n, None], along, out=part)
        rho -= part
        np.rint(rho, out=rho)
        first = np.cumsum(room[s:s + n]) - room[s:s + n]
        rho -= (lo[s:s + n] - first)[:, None]
        np.copyto(bins[:n], rho, casting="unsafe")
        counts = np.bincount(bins[:n].ravel(), minlength=int(room[s:s + n].sum()))
        peaks = np.maximum.reduceat(counts, first)
        j = int(np.argmax(peaks))
        if peaks[j] > best[0]:
            mine = counts[first[j]:first[j] + room[s + j]]
            used = np.flatnonzero(mine)
            best = (int(peaks[j]), float(angles[s + j]), int(lo[s + j]) + int(used[0]),
                    mine[used[0]:used[-1] + 1])
    return best


def _line_bins(counts: np.ndarray, peak: float, thickest: float) -> tuple[np.ndarray, int]:
    """The bins of lines: runs of bins above a third of ``peak`` that reach ``peak`` and
    are at most ``thickest`` bins thick, widened by one bin either side; and the thickest
    such run's width."""
    runs, _ = filters.label(counts >= peak / 3)
    keep = np.zeros(counts.size, bool)
    widest = 0
    for sl in filters.find_objects(runs):
        width = sl[0].stop - sl[0].start
        if width <= thickest and counts[sl].max() >= peak:
            keep[max(0, sl[0].start - 1):sl[0].stop + 1] = True
            widest = max(widest, width + 2)
    return keep, widest
