"""line_ink: the ink of a whole written number in a photo, for the number reader: every
digit's ink kept, the shadow, the ruled lines, specks and a far-away mark left out."""

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from scipy import ndimage

from lenet5.data import photo
from lenet5.data.strings import StringOptions, compose
from lenet5.errors import Lenet5Error

ZOOM = 4  # the composed 32 px strip is written 128 px high
AT = (260, 380)  # where the strip's top-left corner lies on the sheet (x, y)
SIZE = (1600, 1000)


@pytest.fixture(scope="module")
def number(mnist):
    """Six MNIST test digits composed into a number: the strip (32, W) and the boxes."""
    s = compose(mnist.test, 1, StringOptions(length=(6, 6), gap=(3, 8)),
                torch.Generator().manual_seed(5))
    return s.images[0, :, :int(s.widths[0])].numpy(), s.boxes[0].numpy()


@pytest.fixture(scope="module")
def read(number):
    """line_ink of the number's photo: (ink map, scale)."""
    return photo.line_ink(sheet(number[0]))


def sheet(strip: np.ndarray, pen=(0.1, 0.15, 0.55), seed=0) -> Image.Image:
    """The number in blue ink on ruled paper with a far-away scribble and dust, light
    falling off across the sheet and a hard shadow edge crossing the number."""
    w, h = SIZE
    rng = np.random.default_rng(seed)
    refl = np.full((h, w), 0.93, np.float32)
    refl[(np.arange(h) % 110) < 2] *= 0.7  # ruled lines, one under the number
    alpha = np.asarray(Image.fromarray(strip).resize((strip.shape[1] * ZOOM, 32 * ZOOM),
                                                     Image.Resampling.BICUBIC), np.float32) / 255
    alpha = np.clip(alpha, 0, 1)
    x, y = AT
    mark = Image.new("L", (w, h), 0)  # a scribble far to the right, specks here and there
    draw = ImageDraw.Draw(mark)
    draw.line([(1450, 150), (1520, 230), (1470, 260)], fill=255, width=9)
    for cx, cy in rng.uniform((0, 0), (w, h), (30, 2)):
        draw.ellipse([cx - 2, cy - 2, cx + 2, cy + 2], fill=255)
    cover = np.asarray(mark, np.float32) / 255
    cover[y:y + alpha.shape[0], x:x + alpha.shape[1]] = np.maximum(
        cover[y:y + alpha.shape[0], x:x + alpha.shape[1]], alpha)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    light = (1 - 0.45 * xs / w) * np.where(xs - 0.6 * ys > 300, 0.5, 1.0)  # the edge crosses the number
    rgb = np.stack([refl * (1 - cover * (1 - c)) * light for c in pen], -1) * 255
    rgb += rng.normal(0, 2.5, rgb.shape)
    return Image.fromarray(np.clip(rgb + 0.5, 0, 255).astype(np.uint8))


def where_ink(strip: np.ndarray, grow: int) -> np.ndarray:
    """The sheet's pixels within ``grow`` px of the number's ink."""
    alpha = np.asarray(Image.fromarray(strip).resize((strip.shape[1] * ZOOM, 32 * ZOOM),
                                                     Image.Resampling.BICUBIC)) > 40
    near = np.zeros(SIZE[::-1], bool)
    near[AT[1]:AT[1] + alpha.shape[0], AT[0]:AT[0] + alpha.shape[1]] = alpha
    return ndimage.binary_dilation(near, iterations=grow) if grow else near


def on_sheet(ink: np.ndarray, scale: float) -> np.ndarray:
    """The ink map's pixels brighter than the readers' ink level, at the sheet's size."""
    img = Image.fromarray(ink).resize(SIZE, Image.Resampling.NEAREST)
    assert abs(ink.shape[1] / scale - SIZE[0]) <= 1 / scale + 1
    return np.asarray(img) >= 16


def test_every_digit_and_nothing_else(number, read):
    strip, boxes = number
    ink, scale = read
    assert ink.dtype == np.uint8 and ink.ndim == 2 and 0 < scale <= 1
    found = on_sheet(ink, scale)
    for x0, y0, x1, y1 in boxes:  # each digit's own box on the sheet has its ink
        digit = found[AT[1] + y0 * ZOOM:AT[1] + y1 * ZOOM, AT[0] + x0 * ZOOM:AT[0] + x1 * ZOOM]
        truth = where_ink(strip, 0)[AT[1] + y0 * ZOOM:AT[1] + y1 * ZOOM, AT[0] + x0 * ZOOM:AT[0] + x1 * ZOOM]
        assert (digit & truth).sum() >= 0.8 * truth.sum()
    stray = found & ~where_ink(strip, 6)  # shadow edge, ruled lines, specks, the scribble
    assert stray.sum() <= 0.01 * found.sum(), stray.sum()


def test_boxes_map_back_by_the_scale(number, read):
    """A box in the ink map divided by the scale is the box in the image."""
    strip, _ = number
    ink, scale = read
    rows, cols = np.nonzero(ink >= 16)
    box = np.array([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]) / scale
    ys, xs = np.nonzero(where_ink(strip, 0))
    truth = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    assert np.abs(box - truth).max() <= 3 / scale + 6, (box, truth)


def test_a_tight_scan_and_chalk_on_a_board(number):
    """A plain crop of the number, and the same light on dark, give the same ink."""
    strip, _ = number
    scan = Image.fromarray(255 - strip).resize((strip.shape[1] * 3, 96), Image.Resampling.BICUBIC)
    light, s1 = photo.line_ink(scan)
    dark, s2 = photo.line_ink(Image.fromarray(255 - np.asarray(scan)))
    assert s1 == s2 and light.shape == dark.shape
    assert np.abs(light.astype(int) - dark.astype(int)).max() <= 2
    assert ((light >= 16) == (np.asarray(scan) < 200)).mean() > 0.97


def test_a_blank_ruled_sheet_has_no_ink():
    refl = np.full((600, 900), 230, np.float32)
    refl[(np.arange(600) % 60) < 2] = 170
    with pytest.raises(Lenet5Error, match="no ink found"):
        photo.line_ink(Image.fromarray(refl.astype(np.uint8)), name="blank.png")


def test_the_ink_map_feeds_the_number_reader(read, number):
    """The reader's strip holds six pieces of ink, one a digit (the test's gaps keep the
    digits apart), each about MNIST's 20 px high."""
    from lenet5.reading.line import DIGIT_HEIGHT, normalize_line

    strip, _ = normalize_line(read[0])
    assert strip.shape[0] == 32 and strip.dtype == torch.uint8
    cols = (strip >= 16).any(0).numpy()
    runs, n = ndimage.label(cols)
    assert n == len(number[1])
    heights = [int(np.ptp(np.nonzero((strip[:, sl[0]] >= 16).any(1).numpy())[0])) + 1
               for sl in ndimage.find_objects(runs)]
    assert abs(np.median(heights) - DIGIT_HEIGHT) <= 2
