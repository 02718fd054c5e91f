"""lenet5.data.filters against scipy.ndimage: the same outputs, bit for bit, on random
images and on the edge cases (empty and full masks, one pixel, one row or column, odd
sizes, shapes touching the border, windows wider than the image)."""

from __future__ import annotations

import numpy as np
import pytest

from lenet5.data import filters

SHAPES = [(1, 1), (1, 7), (7, 1), (2, 3), (5, 5), (13, 29), (31, 8), (64, 48)]


def _images(seed: int = 0):
    rng = np.random.default_rng(seed)
    for shape in SHAPES:
        yield (rng.random(shape) * 255).astype(np.float32)
    yield np.full((9, 11), 17.5, np.float32)  # flat
    yield np.log(rng.random((40, 33)).astype(np.float32) * 255 + 8.0)  # as line_strength's


def _masks(seed: int = 0):
    rng = np.random.default_rng(seed)
    for shape in SHAPES:
        for p in (0.0, 0.1, 0.5, 0.8, 1.0):
            yield rng.random(shape) < p
    n = 40
    yy, xx = np.indices((n, n))
    yield (yy + xx) % 2 == 0  # a checkerboard: one piece through its diagonals
    frame = np.zeros((n, n), bool)
    frame[[0, -1]] = frame[:, [0, -1]] = True  # touching every border
    yield frame
    serpentine = np.zeros((n, n), bool)
    serpentine[:, ::2] = True  # columns joined alternately at the bottom and the top
    serpentine[-1, 1::4] = serpentine[0, 3::4] = True
    yield serpentine
    yield np.eye(n, dtype=bool)[::-1]  # a diagonal line: 8-connected, not 4-connected
    yield ((yy * 3 + xx) % 7 < 2)  # slanted stripes


@pytest.fixture(scope="module")
def ndimage():
    return pytest.importorskip("scipy.ndimage")


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0, 3.5])
@pytest.mark.parametrize("order", [0, (0, 2), (2, 0), (1, 1), (0, 1)])
def test_gaussian_filter_reflect(ndimage, sigma, order):
    for a in _images():
        assert np.array_equal(filters.gaussian_filter(a, sigma, order=order),
                              ndimage.gaussian_filter(a, sigma, order=order))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint8])
def test_gaussian_filter_nearest_and_dtypes(ndimage, dtype):
    for a in _images(1):
        a = a.astype(dtype)
        ours = filters.gaussian_filter(a, 1.0, mode="nearest")
        ref = ndimage.gaussian_filter(a.astype(ours.dtype), 1.0, mode="nearest")
        assert ours.dtype == ref.dtype and np.array_equal(ours, ref)


@pytest.mark.parametrize("order", [0, (0, 2), (1, 1)])
def test_gaussian_filter_large_images_in_blocks(ndimage, order):
    """Images larger than a block of lines: the blocks' seams leave no trace."""
    rng = np.random.default_rng(3)
    for shape in [(300, 257), (41, 2000), (2000, 41)]:
        a = (rng.random(shape) * 255).astype(np.float32)
        for mode in ("reflect", "nearest"):
            assert np.array_equal(filters.gaussian_filter(a, 1.0, order=order, mode=mode),
                                  ndimage.gaussian_filter(a, 1.0, order=order, mode=mode))


@pytest.mark.parametrize("size", [1, 3, 5, 9, 31, 101])
def test_grey_closing(ndimage, size):
    for a in _images(2):
        assert np.array_equal(filters.grey_closing(a, size),
                              ndimage.grey_closing(a, size=(size, size), mode="nearest"))


def test_grey_closing_rejects_even_size():
    with pytest.raises(ValueError, match="odd"):
        filters.grey_closing(np.zeros((4, 4), np.float32), 4)


@pytest.mark.parametrize("length", [1, 2, 3, 4, 7, 12])
@pytest.mark.parametrize("axis", [0, 1])
def test_binary_closing_line(ndimage, length, axis):
    structure = np.ones((length, 1) if axis == 0 else (1, length))
    for m in _masks(3):
        assert np.array_equal(filters.binary_closing(m, length, axis),
                              ndimage.binary_closing(m, structure, border_value=0))


@pytest.mark.parametrize("radius", [1, 2, 5])
def test_binary_dilation_square(ndimage, radius):
    for m in _masks(4):
        assert np.array_equal(filters.binary_dilation(m, radius),
                              ndimage.binary_dilation(m, np.ones((3, 3)), iterations=radius))


def test_binary_erosion_cross(ndimage):
    for m in _masks(5):
        assert np.array_equal(filters.binary_erosion(m), ndimage.binary_erosion(m))


def test_label_and_find_objects_2d(ndimage):
    for m in _masks(6):
        ours, n = filters.label(m)
        ref, n_ref = ndimage.label(m, np.ones((3, 3)))
        assert n == n_ref
        assert ours.dtype == np.int32 and np.array_equal(ours, ref)
        assert filters.find_objects(ours) == ndimage.find_objects(ref)


def test_label_and_find_objects_1d(ndimage):
    rng = np.random.default_rng(7)
    for size in (1, 2, 5, 60):
        for p in (0.0, 0.3, 0.7, 1.0):
            v = rng.random(size) < p
            ours, n = filters.label(v)
            ref, n_ref = ndimage.label(v)
            assert n == n_ref and np.array_equal(ours, ref)
            assert filters.find_objects(ours) == ndimage.find_objects(ref)


def test_label_large_noise(ndimage):
    m = np.random.default_rng(8).random((300, 257)) < 0.45
    ours, n = filters.label(m)
    ref, n_ref = ndimage.label(m, np.ones((3, 3)))
    assert n == n_ref > 100 and np.array_equal(ours, ref)


def test_label_numbers_in_raster_order_without_scipy():
    m = np.array([[0, 0, 1, 0, 1],
                  [1, 0, 1, 0, 0],
                  [0, 1, 0, 0, 1],
                  [0, 0, 0, 1, 1]], bool)
    labels, n = filters.label(m)
    # the pixel at (0, 2) comes first; (1, 0) joins it through (2, 1) diagonally
    assert n == 3
    assert labels.tolist() == [[0, 0, 1, 0, 2],
                               [1, 0, 1, 0, 0],
                               [0, 1, 0, 0, 3],
                               [0, 0, 0, 3, 3]]
    assert filters.find_objects(labels) == [(slice(0, 3), slice(0, 3)), (slice(0, 1), slice(4, 5)),
                                            (slice(2, 4), slice(3, 5))]
    assert filters.label(np.zeros((3, 4), bool))[1] == 0
    assert filters.find_objects(np.zeros((3, 4), np.int32)) == []


def test_morphology_without_scipy():
    m = np.zeros((7, 7), bool)
    m[3, 3] = True
    assert filters.binary_dilation(m, 2).sum() == 25
    assert not filters.binary_erosion(m).any()
    block = np.ones((3, 3), bool)
    assert filters.binary_erosion(block).tolist() == [[0, 0, 0], [0, 1, 0], [0, 0, 0]]
    gap = np.zeros((1, 9), bool)
    gap[0, [2, 3, 5, 6]] = True  # a one-pixel gap, closed by a line of 3, not at the border
    assert filters.binary_closing(gap, 3, axis=1)[0].tolist() == [0, 0, 1, 1, 1, 1, 1, 0, 0]
