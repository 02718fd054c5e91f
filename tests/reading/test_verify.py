"""The second opinion: digits cut out of a line by where the line reader put them, and
the two readers' probabilities multiplied."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from lenet5.errors import Lenet5Error
from lenet5.models import Preprocess
from lenet5.reading.paths import Segment
from lenet5.reading.verify import PIECE, DigitReader, cut_digits, digit_reader, second_opinion


def line(*strokes: tuple[int, int, int, int], value: int = 200) -> np.ndarray:
    """A 32x60 line with a bright block per (row0, row1, col0, col1)."""
    image = np.zeros((32, 60), dtype=np.uint8)
    for r0, r1, c0, c1 in strokes:
        image[r0:r1, c0:c1] = value
    return image


def test_separate_digits_keep_their_own_ink_and_a_stray_dot_goes_to_the_nearest():
    image = line((6, 26, 5, 15), (6, 26, 30, 40), (28, 30, 42, 44))  # the dot nearer 35
    first, second = cut_digits(image, np.array([10.0, 35.0]))
    assert (first[:, :20] == image[:, :20]).all() and not first[:, 20:].any()
    assert (second[:, 20:] == image[:, 20:]).all() and not second[:, :20].any()


def test_touching_digits_are_cut_at_the_faintest_column_between_their_centres():
    image = line((6, 26, 5, 20), (6, 26, 23, 38), (15, 17, 20, 23))  # joined by a thin bar
    left, right = cut_digits(image, np.array([12.0, 30.0]))
    cut = int(np.flatnonzero(right.any(0))[0])
    assert 20 <= cut <= 22  # in the bar, not through a digit
    assert not left[:, cut:].any() and not right[:, :cut].any()
    assert (left + right == image).all()  # every pixel of ink goes to one digit


def test_dim_edges_go_with_the_ink_they_border():
    image = line((6, 26, 5, 15))
    image[6:26, 15] = PIECE // 2  # a dim edge: not a piece of its own
    [digit] = cut_digits(image, np.array([10.0]))
    assert (digit == image).all()


class Says(nn.Module):
    """A digit reader that reads every image as the given probabilities."""

    def __init__(self, probs):
        super().__init__()
        self.logits = torch.tensor(probs).log()

    def forward(self, x):
        return self.logits.expand(len(x), -1)


def test_the_digit_is_the_best_product_of_both_readers():
    image = torch.from_numpy(line((6, 26, 10, 20)))[None]
    probs = np.full((1, 5, 11), 1e-4, dtype=np.float32)
    probs[0, :, 10] = 0.99
    probs[0, 2, 10] = 0.0
    probs[0, 2, 7], probs[0, 2, 1] = 0.6, 0.4  # the line reader: 7 rather than 1
    reader = DigitReader(Says([0.01] + [0.9] + [0.01] * 8), Preprocess(pad=2))  # sure of 1
    segs, digit_probs = second_opinion([[Segment(7, 2, 2)]], probs, torch.tensor([5]),
                                       np.array([0, 5, 15, 25, 35.0]), image, reader)
    assert segs == [[Segment(1, 2, 2)]]
    line_p = probs[0, 2, :10] / probs[0, 2, :10].sum()
    joint = line_p * np.array([0.01] + [0.9] + [0.01] * 8)
    assert digit_probs[0][0] == pytest.approx(joint[1] / joint.sum(), rel=1e-5)


def test_a_line_without_bright_ink_keeps_the_line_reader_s_word():
    image = torch.from_numpy(line((6, 26, 10, 20), value=PIECE // 2))[None]
    probs = np.full((1, 5, 11), 0.01, dtype=np.float32)
    probs[0, 2, 7] = 0.9
    reader = DigitReader(Says([0.01] + [0.91] + [0.01] * 8), Preprocess(pad=2))
    segs, digit_probs = second_opinion([[Segment(7, 2, 2)]], probs, torch.tensor([5]),
                                       np.array([0, 5, 15, 25, 35.0]), image, reader)
    assert segs == [[Segment(7, 2, 2)]] and digit_probs[0][0] == pytest.approx(0.9)


def test_the_verifier_must_read_single_digits():
    assert isinstance(digit_reader("reader.mnist").model, nn.Module)
    with pytest.raises(Lenet5Error, match="not a reader of single digits"):
        digit_reader("lenet5-sdnn.mnist-strings")
