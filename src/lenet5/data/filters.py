"""The few image filters the photo stages need, in numpy: what ``scipy.ndimage`` would give.

scipy.ndimage is 0.3-0.45 s of a cold start (it imports scipy.special) for six functions,
so they are here, each reproducing scipy's output exactly for the arguments the stages
use (``tests/data/test_filters.py`` compares them with scipy):

- :func:`gaussian_filter`: Gaussian smoothing and derivatives (``truncate=4``, modes
  ``reflect`` and ``nearest``), computed in float64 with scipy's kernels, summation
  order and per-axis rounding to the input's dtype;
- :func:`grey_closing`: a k x k maximum then minimum filter (mode ``nearest``), in
  O(log k) whole-array steps whatever k;
- :func:`binary_dilation` (a square), :func:`binary_erosion` (the 3x3 cross) and
  :func:`binary_closing` (a line along one axis), everything outside the image False;
- :func:`label` (8-connected in 2-D, numbered in raster order of each piece's first
  pixel, as scipy numbers them) and :func:`find_objects`.

Labelling works on runs of pixels along rows: runs in neighbouring rows that touch
(diagonally too) are joined by a vectorized union-find (hook each root onto the smallest
neighbouring root, then jump pointers to the roots, until nothing changes), so its cost
follows the number of runs, not of pixels: tens of milliseconds for a 1024x1024 mask of
noise (``benchmarks/filters.py`` times each function against scipy).
"""

from __future__ import annotations

import numpy as np

__all__ = ["binary_closing", "binary_dilation", "binary_erosion", "find_objects",
           "gaussian_filter", "grey_closing", "label"]


# --- Gaussian filters --------------------------------------------------------------------

def gaussian_kernel1d(sigma: float, order: int, radius: int) -> np.ndarray:
    """scipy's 1-D Gaussian kernel (or its ``order``-th derivative), ``2 radius + 1`` taps:
    the sampled Gaussian normalized to sum 1, times the derivative's polynomial."""
    x = np.arange(-radius, radius + 1)
    phi = np.exp(-0.5 / (sigma * sigma) * x ** 2)
    phi = phi / phi.sum()
    if order == 0:
        return phi
    # f = q(x) phi(x); f' = (q' - q x / sigma^2) phi: apply that to q's coefficients
    powers = np.arange(order + 1)
    q = np.zeros(order + 1)
    q[0] = 1
    step = np.diag(powers[1:], 1) + np.diag(np.ones(order) / -(sigma * sigma), -1)
    for _ in range(order):
        q = step.dot(q)
    return (x[:, None] ** powers).dot(q) * phi


def _extend_index(n: int, before: int, after: int, mode: str) -> np.ndarray:
    """Indexes into a line of ``n`` that continue it ``before`` and ``after`` past its
    ends: ``reflect`` (d c b a | a b c d | d c ..., repeating) or ``nearest`` (a a | a b)."""
    i = np.arange(-before, n + after)
    if mode == "nearest":
        return np.clip(i, 0, n - 1)
    if mode == "reflect":
        m = i % (2 * n)
        return np.where(m < n, m, 2 * n - 1 - m)
    raise ValueError(f"mode must be 'reflect' or 'nearest', not {mode!r}")


def _along(axis: int, ndim: int, start: int | None, stop: int | None) -> tuple[slice, ...]:
    index = [slice(None)] * ndim
    index[axis] = slice(start, stop)
    return tuple(index)


def gaussian_filter1d(a: np.ndarray, sigma: float, axis: int = -1, order: int = 0,
                      mode: str = "reflect", truncate: float = 4.0) -> np.ndarray:
    """``a`` correlated with a Gaussian (derivative) of ``sigma`` along ``axis``, radius
    ``int(truncate sigma + 0.5)``; float64. The sum runs as scipy's does (the centre tap,
    then each pair of taps from the outside in), so the results agree to the last bit.
    A large array is done a block of lines at a time: every step of the sum then works on
    arrays small enough to stay in the cache and in memory already mapped."""
    radius = int(truncate * float(sigma) + 0.5)
    weights = gaussian_kernel1d(float(sigma), order, radius)[::-1]  # correlate, not convolve
    a = np.asarray(a)
    axis = axis % a.ndim
    other = 1 if axis == 0 else 0
    if a.ndim == 1 or a.size <= _BLOCK:
        return _correlate(a, weights, axis, order, mode)
    step = max(1, _BLOCK * a.shape[other] // a.size)  # lines per block
    out = np.empty(a.shape, np.float64)
    for s in range(0, a.shape[other], step):
        block = _along(other, a.ndim, s, s + step)
        out[block] = _correlate(a[block], weights, axis, order, mode)
    return out


_BLOCK = 1 << 15  # elements


def _correlate(a: np.ndarray, weights: np.ndarray, axis: int, order: int, mode: str) -> np.ndarray:
    """``gaussian_filter1d``'s sum over ``weights`` (2 radius + 1, reversed) along ``axis``."""
    radius = len(weights) // 2
    n = a.shape[axis]
    ext = np.take(a.astype(np.float64, copy=False), _extend_index(n, radius, radius, mode), axis=axis)
    out = ext[_along(axis, a.ndim, radius, radius + n)] * weights[radius]
    pair = np.empty_like(out)
    for j in range(radius, 0, -1):  # the taps at -j and +j, with the weight at -j
        left, right = ext[_along(axis, a.ndim, radius - j, radius - j + n)], \
            ext[_along(axis, a.ndim, radius + j, radius + j + n)]
        if order % 2:  # an odd derivative's kernel is antisymmetric
            np.subtract(left, right, out=pair)
        else:
            np.add(left, right, out=pair)
        pair *= weights[radius - j]
        out += pair
    return out


def gaussian_filter(a: np.ndarray, sigma: float, order: int | tuple[int, ...] = 0,
                    mode: str = "reflect", truncate: float = 4.0) -> np.ndarray:
    """scipy.ndimage.gaussian_filter for one ``sigma``: :func:`gaussian_filter1d` along
    each axis in turn (``order`` per axis: 0 smooths, 1 and 2 differentiate), the result
    rounded to ``a``'s float dtype after each axis as scipy does."""
    a = np.asarray(a)
    dtype = a.dtype if a.dtype.kind == "f" else np.dtype(np.float64)
    orders = (order,) * a.ndim if isinstance(order, int) else tuple(order)
    if len(orders) != a.ndim:
        raise ValueError(f"one order per axis: got {orders} for {a.ndim} axes")
    out = a.astype(dtype)
    if sigma <= 1e-15:
        return out
    for axis, o in enumerate(orders):
        out = gaussian_filter1d(out, sigma, axis, o, mode, truncate).astype(dtype)
    return out


# --- windows: grey and binary morphology -------------------------------------------------

def _window_extreme(a: np.ndarray, radius: int, axis: int, largest: bool) -> np.ndarray:
    """out[i] = max (or min) of a[i - radius .. i + radius] along ``axis``, the line
    continued by repeating its ends. Windows doubled in size, log2 steps of whole-array
    maxima, then two of them overlapping to cover the window: each step runs at numpy's
    full speed, where a running maximum (O(1) per element) runs one element at a time."""
    if radius == 0:
        return a.copy()
    n, k = a.shape[axis], 2 * radius + 1
    m = np.take(a, _extend_index(n, radius, radius, "nearest"), axis=axis)
    acc = np.maximum if largest else np.minimum
    span = 1
    while 2 * span <= k:  # m[i]: the extreme of the span from i on
        m = acc(m[_along(axis, a.ndim, 0, -span)], m[_along(axis, a.ndim, span, None)])
        span *= 2
    return acc(m[_along(axis, a.ndim, 0, n)], m[_along(axis, a.ndim, k - span, k - span + n)])


def grey_closing(a: np.ndarray, size: int) -> np.ndarray:
    """scipy.ndimage.grey_closing(a, size=(size, size), mode="nearest") of a 2-D array, for
    an odd ``size``: a size x size maximum filter then a minimum filter, the image
    continued past its edges by repeating them (each filter separable: columns, rows)."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"size must be odd and positive, not {size}")
    out = a
    for largest in (True, False):
        for axis in (0, 1):
            out = _window_extreme(out, size // 2, axis, largest)
    return out


def _window_count(mask: np.ndarray, before: int, after: int, axis: int) -> np.ndarray:
    """How many True pixels lie in mask[i - before .. i + after] along ``axis`` (outside
    the image: none)."""
    m = np.moveaxis(mask, axis, -1)
    n = m.shape[-1]
    c = np.zeros((*m.shape[:-1], n + before + after + 1), np.int32)
    np.cumsum(m, axis=-1, out=c[..., before + 1:before + 1 + n])
    c[..., before + 1 + n:] = c[..., before + n:before + 1 + n]
    return np.moveaxis(c[..., before + after + 1:] - c[..., :n], -1, axis)


def binary_dilation(mask: np.ndarray, radius: int) -> np.ndarray:
    """The mask dilated by a (2 radius + 1)-wide square: scipy's
    ``binary_dilation(mask, np.ones((3, 3)), iterations=radius)``, which is the same (a
    square's chain of steps between two pixels can always stay inside the image)."""
    out = np.asarray(mask, bool)
    for axis in (0, 1):
        out = _window_count(out, radius, radius, axis) > 0
    return out


def binary_erosion(mask: np.ndarray) -> np.ndarray:
    """scipy's ``binary_erosion(mask)``: a pixel stays if it and its four neighbours are
    set, outside the image counting as unset."""
    m = np.pad(np.asarray(mask, bool), 1)
    return m[1:-1, 1:-1] & m[:-2, 1:-1] & m[2:, 1:-1] & m[1:-1, :-2] & m[1:-1, 2:]


def binary_closing(mask: np.ndarray, length: int, axis: int) -> np.ndarray:
    """scipy's ``binary_closing(mask, s, border_value=0)`` for ``s`` a line of ``length``
    ones along ``axis``: a dilation then an erosion by it, outside the image unset (so the
    erosion unsets pixels within half the length of the edge). For an even length scipy's
    windows are off-centre: the dilation's reaches ``(length - 1) // 2`` back and
    ``length // 2`` forward, the erosion's the other way round."""
    back, fwd = (length - 1) // 2, length // 2
    grown = _window_count(np.asarray(mask, bool), back, fwd, axis) > 0
    return _window_count(grown, fwd, back, axis) == length


# --- connected components ----------------------------------------------------------------

def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The runs of set pixels along the rows of a 2-D (h, w) mask, in raster order, as
    flat indexes into an (h, w + 1) array: of each run's first pixel and of the pixel
    after its last (column w when the run ends the row)."""
    h, w = mask.shape
    edges = np.zeros((h, w + 2), np.int8)
    edges[:, 1:-1] = mask
    step = np.diff(edges, axis=1)  # (h, w + 1): +1 where a run starts, -1 after it ends
    return np.flatnonzero(step == 1), np.flatnonzero(step == -1)


def _touching(starts: np.ndarray, stops: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The pairs of runs (above, below) in neighbouring rows that touch, diagonals
    included: above's columns, widened by one each side, overlap below's. ``starts`` and
    ``stops`` as ``_runs`` gives them; one row up is ``width + 1`` back, and a row's
    indexes cannot reach into the next row's."""
    up = width + 1
    lo = np.searchsorted(stops, starts - up, side="left")  # the first above with stop >= start
    hi = np.searchsorted(starts, stops - up, side="right")  # past the last with start <= stop
    count = np.maximum(hi - lo, 0)
    below = np.repeat(np.arange(starts.size, dtype=np.int32), count)
    above = np.arange(below.size, dtype=np.int32) + np.repeat((lo - np.cumsum(count) + count)
                                                              .astype(np.int32), count)
    return above, below


def _components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Each of ``n`` nodes' smallest node in its connected component, for the edges
    (a[i], b[i]): roots hooked onto the smallest root next to them, then pointers jumped to
    the roots, until no edge joins two roots. Every parent is at most its node, so the
    trees stay trees."""
    parent = np.arange(n, dtype=np.int32)
    while True:
        pa, pb = parent[a], parent[b]
        differ = pa != pb
        if not differ.any():
            return parent
        pa, pb, a, b = pa[differ], pb[differ], a[differ], b[differ]
        np.minimum.at(parent, pa, pb)
        np.minimum.at(parent, pb, pa)
        while True:  # a chain of roots hooked one onto the next halves each time
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand


def label(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """scipy's ``label(mask, np.ones((3,) * mask.ndim))`` for a 1-D or 2-D mask: the
    8-connected pieces (in 1-D: the runs) numbered 1, 2, ... in raster order of each
    piece's first pixel (top row first, then leftmost), as scipy numbers them; 0 is
    background. Returns (int32 labels, how many)."""
    mask = np.asarray(mask, bool)
    if mask.ndim not in (1, 2):
        raise ValueError(f"label takes a 1-D or 2-D mask, not {mask.ndim}-D")
    flat = mask.reshape(1, -1) if mask.ndim == 1 else mask
    h, w = flat.shape
    starts, stops = _runs(flat)
    if starts.size == 0:
        return np.zeros(mask.shape, np.int32), 0
    root = _components(starts.size, *_touching(starts, stops, w))
    # a root is its piece's first run, so numbering roots in run order is raster order
    is_root = root == np.arange(starts.size)
    number = np.cumsum(is_root, dtype=np.int32)[root]
    # paint each run: its number at its start, minus it after its end, summed along rows
    paint = np.zeros((h, w + 1), np.int32)
    paint.flat[starts] = number
    paint.flat[stops] = -number
    out = np.cumsum(paint, axis=1, dtype=np.int32)[:, :w]
    return out.reshape(mask.shape), int(is_root.sum())


def find_objects(labels: np.ndarray, at: np.ndarray | None = None) -> list[tuple[slice, ...]]:
    """scipy's ``find_objects(labels)`` for labels numbered 1..n without gaps (as
    :func:`label` gives): the box of each label, in label order, as a tuple of slices.
    ``at``: ``np.flatnonzero(labels)`` if the caller has it already."""
    labels = np.asarray(labels)
    at = np.flatnonzero(labels) if at is None else at
    if at.size == 0:
        return []
    which = labels.ravel()[at] - 1
    n = int(which.max()) + 1
    bounds = []
    for coords in np.unravel_index(at, labels.shape):
        lo = np.full(n, np.iinfo(np.int64).max)
        hi = np.full(n, -1)
        np.minimum.at(lo, which, coords)
        np.maximum.at(hi, which, coords)
        bounds.append(map(slice, lo.tolist(), (hi + 1).tolist()))
    return list(zip(*bounds))
