"""The photo stages: uneven light, shadows, ruled paper, small digits on big sheets, the
reverse polarity; each stage's contract; and blank sheets refused."""

import numpy as np
import pytest
from PIL import Image, ImageDraw

from lenet5.data import photo
from lenet5.errors import Lenet5Error

FOUR = [[(60, 20), (25, 110), (105, 110)], [(85, 50), (85, 170)]]  # a "4", 150 px tall


def sheet(size=(400, 300), at=(120, 50), scale=1.0, paper=235, ink=30, width=11,
          strokes=FOUR) -> np.ndarray:
    """A digit drawn on even paper, as float grey levels."""
    img = Image.new("L", size, paper)
    draw = ImageDraw.Draw(img)
    for line in strokes:
        draw.line([(at[0] + x * scale, at[1] + y * scale) for x, y in line], fill=ink,
                  width=max(1, round(width * scale)), joint="curve")
    return np.asarray(img, dtype=np.float32)


def light(shape, kind: str) -> np.ndarray:
    """A multiplicative light field over the sheet."""
    h, w = shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == "gradient":  # 65% darker at one corner
        return 1 - 0.65 * (xs / w + ys / h) / 2
    if kind == "vignette":
        return 1 - 0.5 * (((ys - h / 2) / h) ** 2 + ((xs - w / 2) / w) ** 2) * 2
    if kind == "shadow":  # a hard edge across the digit, the far side 55% darker
        return np.where(xs + 0.4 * ys > 230, 0.45, 1.0)
    raise ValueError(kind)


def image(a: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(np.round(a), 0, 255).astype(np.uint8))


def similar(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of two 28x28 digits, the better of the shifts by up to a pixel (the
    centre of mass is rounded to a whole pixel: half a pixel of difference can move it)."""
    return max(float(np.corrcoef(np.roll(a, (dy, dx), (0, 1)).ravel().astype(float),
                                 b.ravel().astype(float))[0, 1])
               for dy in (-1, 0, 1) for dx in (-1, 0, 1))


@pytest.fixture(scope="module")
def reference():
    return photo.read_digit(image(sheet()))


@pytest.mark.parametrize("kind", ["gradient", "vignette", "shadow"])
def test_uneven_light_reads_as_even_light(reference, kind):
    plain = sheet()
    lit = plain * light(plain.shape, kind)
    out = photo.read_digit(image(lit + np.random.default_rng(0).normal(0, 3, lit.shape)))
    assert similar(out, reference) > 0.95, kind


def test_a_shadow_edge_that_hugs_the_sheets_edge_is_not_the_digit(reference):
    plain = sheet()
    plain[:, 370:] *= 0.4  # a shadow strip along the right edge, narrower than the paper window
    assert similar(photo.read_digit(image(plain)), reference) > 0.95


def test_ruled_and_squared_lines_are_left_out(reference):
    plain = sheet()
    h, w = plain.shape
    ys, xs = np.mgrid[0:h, 0:w]
    for lines in (np.abs((ys - 0.05 * xs) % 40 - 20) < 1.2,  # ruled, tilted 3 degrees, through the digit
                  (np.abs(ys % 35 - 17) < 1) | (np.abs(xs % 35 - 17) < 1)):  # squared
        paper = np.where(lines, plain * 0.7, plain)
        out = photo.read_digit(image(paper * light(plain.shape, "gradient")))
        assert similar(out, reference) > 0.93


def test_small_digit_on_a_big_sheet_among_specks(reference):
    big = sheet(size=(1600, 1200), at=(1300, 950), scale=0.3, width=11)
    rng = np.random.default_rng(1)
    for y, x in rng.integers(0, 1150, size=(30, 2)):  # dust: a few pixels each
        big[y:y + 3, x:x + 2] *= 0.5
    out = photo.read_digit(image(big * light(big.shape, "gradient")))
    assert similar(out, reference) > 0.9


def test_light_ink_on_a_dark_board_under_uneven_light(reference):
    board = (255 - sheet(paper=235, ink=30)) * light((300, 400), "gradient")
    assert photo.is_light_on_dark(board)
    assert not photo.is_light_on_dark(sheet() * light((300, 400), "gradient"))
    assert similar(photo.read_digit(image(board)), reference) > 0.95


@pytest.mark.parametrize("kind", ["gradient", "vignette", "shadow"])
def test_blank_sheets_are_refused(kind):
    paper = np.full((300, 400), 235, np.float32) * light((300, 400), kind)
    paper += np.random.default_rng(2).normal(0, 3, paper.shape)
    with pytest.raises(Lenet5Error, match="^blank.jpg: no ink found"):
        photo.read_digit(image(paper), "blank.jpg")


def test_ink_map_contract():
    grey = sheet() * light((300, 400), "shadow")
    imap = photo.ink_map(grey, 60)
    assert imap.ink.shape == imap.mask.shape == grey.shape and imap.ink.dtype == np.float32
    assert imap.ink.min() >= 0 and imap.ink.max() <= 1 and imap.mask.dtype == bool
    assert not imap.inverted and 0.7 < imap.strength <= 1 and imap.noise < 0.02
    drawn = sheet(paper=255, ink=0) < 128
    # the mask is the drawing, in the shadow as in the light: few pixels off, along the edges
    assert np.count_nonzero(imap.mask != drawn) < 0.15 * np.count_nonzero(drawn)


def test_remove_lines_keeps_the_stroke_that_crosses_a_line():
    mask = np.zeros((200, 300), bool)
    ys, xs = np.mgrid[0:200, 0:300]
    line = np.abs(ys - 100 - 0.05 * (xs - 150)) < 1.0  # a line over the whole width, 3 degrees
    stroke = (np.abs(xs - 150) < 5) & (ys > 60) & (ys < 140)
    mask |= line | stroke
    out = photo.remove_lines(mask, mask.astype(np.float32))
    assert not (out & line & ~stroke).any()  # all of the line is gone ...
    assert out[stroke].all()  # ... and none of the stroke, where they cross included


def test_a_soft_dark_line_goes_whole_a_darker_stroke_stays():
    """A notebook's red margin: its core is far darker than its faint flanks, and still a
    line; a pen stroke crossing it, darker still, is kept."""
    ys, xs = np.mgrid[0:300, 0:400].astype(np.float32)
    level = np.clip(0.42 - 0.12 * np.abs(xs - 50), 0, None)  # 7 px wide, 0.06 at its edges
    stroke = (np.abs(ys - 150) < 4) & (xs > 30) & (xs < 90)
    level = np.where(stroke, 0.9, level)
    out = photo.remove_lines(level > 0.05, level)
    assert not (out & ~stroke).any() and out[stroke].all()


def test_pick_digit_leaves_specks_and_joins_a_detached_hat():
    mask = np.zeros((300, 300), bool)
    mask[100:200, 120:130] = True  # the body
    mask[90:96, 122:170] = True  # a hat, 4 px above it
    mask[10:13, 10:13] = True  # a speck far away
    mask[:, 295:] = True  # a band along the edge (the sheet's edge)
    labels, blobs = photo.find_blobs(mask, mask.astype(np.float32))
    assert len(blobs) == 4
    chosen = photo.pick_digit(blobs)
    assert photo.bounding_box(chosen) == (slice(90, 200), slice(120, 170))


def test_mnist_normalize_box_and_centre_of_mass():
    ink = np.zeros((90, 40), np.float32)
    ink[5:85, 10:30] = 1  # a bar, 80 x 20
    out = photo.mnist_normalize(ink)
    ys, xs = np.nonzero(out > 0)
    assert ys.max() - ys.min() + 1 == 20 and xs.max() - xs.min() + 1 in (5, 6)
    total = out.sum()
    assert abs((np.indices(out.shape)[0] * out).sum() / total - 14) <= 0.5
    assert abs((np.indices(out.shape)[1] * out).sum() / total - 14) <= 0.5
