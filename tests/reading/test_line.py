"""Bringing an ink map of any size to the readers' strip, and boxes back to its pixels."""

from __future__ import annotations

import pytest
import torch

from lenet5.data.strings import INK, StringOptions, compose
from lenet5.errors import Lenet5Error
from lenet5.models import create_model, get_model_entry
from lenet5.reading.line import DIGIT_HEIGHT, SIDE, digit_height, normalize_line, read_ink_maps
from tests.data.test_strings import fake_digits


def ink_box(image: torch.Tensor) -> tuple[int, int, int, int]:
    ys, xs = torch.nonzero(image >= INK, as_tuple=True)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


@pytest.fixture(scope="module")
def photo():
    """A composed number, 3x larger, off-centre on a wide dark page."""
    s = compose(fake_digits(30, 1, 0), 1, StringOptions(length=(4, 4)), torch.Generator().manual_seed(0))
    big = s.images[0, :, : int(s.widths[0])].repeat_interleave(3, 0).repeat_interleave(3, 1)
    page = torch.zeros(200, 500, dtype=torch.uint8)
    page[40:40 + big.shape[0], 70:70 + big.shape[1]] = big
    return page


def test_normalized_line_is_32_high_with_its_ink_centred(photo):
    strip, where = normalize_line(photo)
    assert strip.shape[0] == 32 and strip.dtype == torch.uint8
    x0, y0, x1, y1 = ink_box(strip)
    assert abs(digit_height(strip >= INK) - DIGIT_HEIGHT) <= 1 and abs((y0 + y1) / 2 - 16) <= 1
    assert x0 == SIDE and strip.shape[1] - x1 == SIDE
    # the strip's ink box, mapped back, is the page's
    back = where.to_original(x0, x1, y0, y1)
    for got, want in zip(back, ink_box(photo)):
        assert abs(got - want) <= 3


def test_digit_height_is_the_median_piece_not_the_line():
    mask = torch.zeros(60, 100, dtype=torch.bool)
    mask[10:30, 5:15] = mask[14:34, 20:30] = True  # two digits, not on one level
    mask[12:52, 40:50] = True  # one with a long tail
    mask[20:40, 60:70] = True
    mask[50:51, 80:81] = True  # a speck
    assert digit_height(mask) == 20


def test_a_line_already_at_the_size_is_not_resampled():
    line = torch.zeros(32, 60, dtype=torch.uint8)
    h = DIGIT_HEIGHT
    line[6:6 + h, 4:14] = torch.randint(INK, 256, (h, 10), dtype=torch.uint8)
    line[7:6 + h, 17:25] = 200
    line[5:5 + h, 28:40] = 120
    strip, where = normalize_line(line)
    assert where.scale == 1.0
    x0, y0, x1, y1 = ink_box(line)
    assert torch.equal(strip[:, SIDE:SIDE + x1 - x0][where.top:where.top + y1 - y0],
                       line[y0:y1, x0:x1])


def test_no_ink_and_bad_arrays_are_one_line_errors():
    with pytest.raises(Lenet5Error, match="no ink"):
        normalize_line(torch.zeros(40, 40, dtype=torch.uint8))
    with pytest.raises(Lenet5Error, match="2-D uint8"):
        normalize_line(torch.zeros(3, 40, 40, dtype=torch.uint8))


def test_read_ink_maps_gives_boxes_in_the_pages_pixels(photo):
    model = create_model("lenet5-ctc")
    r = read_ink_maps(model, get_model_entry("lenet5-ctc").preprocess, [photo, photo[:, :300]])
    assert len(r) == 2
    for reading in r:
        assert len(reading.digits) == len(reading.text) and 0 <= reading.confidence <= 1
        for d in reading.digits:
            x0, y0, x1, y1 = d.box
            assert 60 <= x0 < x1 <= 440 and 30 <= y0 < y1 <= 150
