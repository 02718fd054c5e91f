"""The string generator: provenance, gaps, labels, determinism, the SDNN's windows."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from lenet5.data import Dataset, Split, get_dataset_spec, load_dataset
from lenet5.data.strings import (
    HEIGHT,
    INK,
    NONE,
    StringDataset,
    StringOptions,
    compose,
    salt_and_pepper,
    sdnn_windows,
)
from lenet5.errors import Lenet5Error

PLAIN = StringOptions(scale=(1.0, 1.0), vertical_jitter=0.0)  # digits pasted as they are


def fake_digits(n: int, seed: int, offset: int) -> Split:
    """``n`` 28x28 "digits": random ink blobs of random widths, each image unique (its
    brightness pattern encodes ``offset + index``), labels i % 10."""
    g = torch.Generator().manual_seed(seed)
    images = torch.zeros(n, 28, 28, dtype=torch.uint8)
    for i in range(n):
        w = int(torch.randint(3, 18, (1,), generator=g))
        h = int(torch.randint(14, 21, (1,), generator=g))
        x0, y0 = (28 - w) // 2, (28 - h) // 2
        blob = torch.randint(INK + 40, 256, (h, w), generator=g, dtype=torch.int32)
        blob[0, 0] = 60 + (offset + i) % 190  # a mark that tells the images apart
        images[i, y0:y0 + h, x0:x0 + w] = blob.to(torch.uint8)
    return Split(images, torch.arange(n) % 10)


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return Dataset(name="fake", train=fake_digits(300, 1, 0), test=fake_digits(120, 2, 500),
                   classes=tuple(str(d) for d in range(10)), file_sha256={"f": "0" * 64})


def ink_box(image: torch.Tensor) -> torch.Tensor:
    ys, xs = torch.nonzero(image >= INK, as_tuple=True)
    return image[ys.min():ys.max() + 1, xs.min():xs.max() + 1]


def check_provenance(strings, split: Split) -> None:
    """Every digit of every string is its source digit's ink, pasted unchanged, and its
    label is the source's label."""
    for i in range(len(strings)):
        for k in range(int(strings.lengths[i])):
            src = int(strings.sources[i, k])
            x0, y0, x1, y1 = strings.boxes[i, k].tolist()
            assert torch.equal(strings.images[i, y0:y1, x0:x1], ink_box(split.images[src]))
            assert strings.digits[i, k] == split.labels[src]


def test_train_strings_only_from_training_digits_and_test_from_test(digits):
    data = StringDataset("fake-strings", digits, train_options=dataclasses.replace(PLAIN, gap=(1, 4)),
                         test_options=dataclasses.replace(PLAIN, gap=(1, 4)), test_size=40)
    train = data.train.strings(40, torch.Generator().manual_seed(0))
    check_provenance(train, digits.train)
    check_provenance(data.test, digits.test)
    # the two splits' images share nothing, so the pixels prove where each digit came from
    flat = {bytes(im.numpy()) for im in digits.train.images}
    assert not flat & {bytes(im.numpy()) for im in digits.test.images}


@pytest.mark.parametrize("gap", [-1, 0, 3])
def test_gaps_between_ink_boxes_are_as_asked(digits, gap):
    s = compose(digits.test, 30, dataclasses.replace(PLAIN, gap=(gap, gap), length=(2, 6)),
                torch.Generator().manual_seed(3))
    for i in range(len(s)):
        b = s.boxes[i, : int(s.lengths[i])]
        assert (b[1:, 0] - b[:-1, 2]).tolist() == [gap] * (len(b) - 1)


def test_gap_range_is_drawn_whole(digits):
    s = compose(digits.train, 200, dataclasses.replace(PLAIN, length=(3, 3)),
                torch.Generator().manual_seed(4))
    gaps = (s.boxes[:, 1:, 0] - s.boxes[:, :-1, 2]).flatten()
    assert set(gaps.tolist()) == set(range(-1, 5))


def test_lengths_widths_and_geometry(digits):
    opts = StringOptions(length=(2, 5), margin=(3, 3))
    s = compose(digits.train, 50, opts, torch.Generator().manual_seed(5))
    assert s.images.dtype == torch.uint8 and s.images.shape[1] == HEIGHT
    assert s.lengths.min() >= 2 and s.lengths.max() <= 5
    for i in range(len(s)):
        n, w = int(s.lengths[i]), int(s.widths[i])
        b = s.boxes[i, :n]
        assert b[0, 0] == 3 and int(b[:, 2].max()) + 3 == w  # the margins
        assert (s.images[i, :, w:] == 0).all()  # padding past the width is background
        assert (b[:, 1] >= 0).all() and (b[:, 3] <= HEIGHT).all()
        assert (s.digits[i, n:] == -1).all() and (s.boxes[i, n:] == -1).all()
        assert len(s.text(i)) == n


def test_vertical_jitter_and_scale_vary_the_digits(digits):
    s = compose(digits.train, 60, StringOptions(scale=(0.7, 1.3), vertical_jitter=3),
                torch.Generator().manual_seed(6))
    valid = s.digits >= 0
    heights = (s.boxes[..., 3] - s.boxes[..., 1])[valid]
    centres = ((s.boxes[..., 3] + s.boxes[..., 1]) / 2)[valid]
    assert heights.max() - heights.min() >= 8
    assert centres.max() - centres.min() >= 4


def test_same_seed_same_strings_other_seed_other_strings(digits):
    opts = StringOptions(slant=(-0.3, 0.3))
    a = compose(digits.train, 20, opts, torch.Generator().manual_seed(7))
    b = compose(digits.train, 20, opts, torch.Generator().manual_seed(7))
    c = compose(digits.train, 20, opts, torch.Generator().manual_seed(8))
    assert torch.equal(a.images, b.images) and torch.equal(a.boxes, b.boxes)
    assert a.texts() == b.texts() and a.texts() != c.texts()


def test_writing_varies_each_digit_and_keeps_its_label(digits):
    """``writing`` (a reader's ``--augment writing``) changes the digits' ink, never which
    digit it is, and repeats with the seed; with every digit left clean they are pasted
    as they are."""
    from lenet5.data.augment import Augment

    apart = dataclasses.replace(PLAIN, gap=(1, 4))  # no overlaps: each box is one digit's
    g = lambda: torch.Generator().manual_seed(9)  # noqa: E731
    varied = compose(digits.train, 30, apart, g(), writing=Augment(clean=0.0))
    again = compose(digits.train, 30, apart, g(), writing=Augment(clean=0.0))
    assert torch.equal(varied.images, again.images)
    pasted = [(int(varied.sources[i, k]), varied.boxes[i, k].tolist(), i)
              for i in range(len(varied)) for k in range(int(varied.lengths[i]))]
    assert all(varied.digits[i][varied.sources[i] == src][0] == digits.train.labels[src]
               for src, _, i in pasted)
    changed = sum(not torch.equal(varied.images[i, y0:y1, x0:x1], ink_box(digits.train.images[src]))
                  for src, (x0, y0, x1, y1), i in pasted)
    assert changed >= 0.9 * len(pasted)
    check_provenance(compose(digits.train, 30, apart, g(), writing=Augment(clean=1.0)), digits.train)


def test_every_digit_used_once_before_any_twice(digits):
    s = compose(digits.test, 30, StringOptions(length=(4, 4)), torch.Generator().manual_seed(9))
    used = s.sources[s.sources >= 0]
    assert len(used) == 120 and len(set(used.tolist())) == 120


def test_bad_options_are_one_line_errors(digits):
    with pytest.raises(Lenet5Error, match="gap range 4..-1 is empty"):
        compose(digits.test, 2, StringOptions(gap=(4, -1)), torch.Generator())
    with pytest.raises(Lenet5Error, match="at least one digit"):
        compose(digits.test, 2, StringOptions(length=(0, 3)), torch.Generator())


def test_sdnn_windows_centre_a_digit_or_none(digits):
    opts = dataclasses.replace(PLAIN, gap=(2, 2))
    w = sdnn_windows(digits.train, 400, opts, torch.Generator().manual_seed(10), noise=0.0)
    assert w.images.shape == (400, 32, 32) and w.images.dtype == torch.uint8
    assert (w.labels == NONE).sum() == 200 and w.labels.max() <= NONE
    half = 16
    for img, label in zip(w.images, w.labels):
        ink = (img >= INK).any(0).numpy()
        if label != NONE:  # a digit covers the centre (within the 2-pixel jitter)
            assert ink[half - 3:half + 3].any()
    again = sdnn_windows(digits.train, 400, opts, torch.Generator().manual_seed(10), noise=0.0)
    assert torch.equal(w.images, again.images) and torch.equal(w.labels, again.labels)


def test_salt_and_pepper_rate():
    clean = torch.full((50, 32, 32), 100, dtype=torch.uint8)
    noisy = salt_and_pepper(clean, 0.1, torch.Generator().manual_seed(0))
    changed = (noisy != clean).float().mean().item()
    assert 0.09 < changed < 0.11
    assert set(noisy.unique().tolist()) == {0, 100, 255}


def test_head_limits_and_keeps_the_same_test_strings(digits):
    full = StringDataset("s", digits, test_size=30)
    head = full.head(10)
    assert len(head.test) == 10 and head.test.texts() == full.test.texts()[:10]
    assert len(head.train.digits) == 10
    assert head.content_hash == full.content_hash and head.describe()["limit"] == 10


def test_mnist_strings_is_a_registered_read_dataset(mnist_dir):
    spec = get_dataset_spec("mnist-strings")
    assert spec.task == "read" and spec.base == "mnist"
    data = load_dataset("mnist-strings", data_dir=mnist_dir)
    assert isinstance(data, StringDataset) and data.classes == tuple("0123456789")
    small = dataclasses.replace(data, test_size=20)
    assert small.test.sources.max() < 10_000 and len(small.test) == 20
    train = small.train.strings(5, torch.Generator().manual_seed(0))
    assert np.isin(train.sources[train.sources >= 0].numpy(), np.arange(60_000)).all()
