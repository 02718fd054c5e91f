import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lenet5.evaluation import robustness as rb

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def digits(mnist):
    return mnist.test.images[:60], mnist.test.labels[:60]


def ink_box(images):
    """Height and width of each digit's ink (pixels above half ink), as (N, 2)."""
    out = []
    for d in images.numpy():
        rows, cols = np.nonzero(d > 127)
        out.append((rows.max() - rows.min() + 1, cols.max() - cols.min() + 1))
    return np.array(out)


def test_the_shift_list_names_the_two_exemptions():
    assert [s.name for s in rb.SHIFTS if s.exempt] == ["rotate15", "lowres8"]
    assert {"clean", "thicker", "thinner", "rotate10", "slant", "small", "large", "lowres16",
            "contrast"} <= {s.name for s in rb.SHIFTS}
    with pytest.raises(KeyError):
        rb.get_shift("sepia")


def test_clean_raw_view_is_the_original(digits):
    images, _ = digits
    assert torch.equal(rb.view(images, rb.get_shift("clean"), "raw"), images)


def test_clean_predict_view_is_close_to_the_original(digits):
    images, _ = digits
    out = rb.view(images, rb.get_shift("clean"), "predict")
    assert out.dtype == torch.uint8 and out.shape == images.shape
    diff = (out.float() - images.float()).abs().mean() / 255
    assert diff < 0.02  # mnistify re-renders MNIST's own normalization


@pytest.mark.parametrize("shift", [s.name for s in rb.SHIFTS])
def test_every_shift_is_deterministic_and_keeps_some_ink(digits, shift):
    images, _ = digits
    a = rb.transform_digits(images, rb.get_shift(shift))
    assert a.dtype == torch.uint8 and a.shape == (len(images), 40, 40)
    assert torch.equal(a, rb.transform_digits(images, rb.get_shift(shift)))
    assert (a.flatten(1).amax(1) > 40).all()


def test_the_shifts_change_what_they_say(digits):
    images, _ = digits

    def ink(name):
        return rb.transform_digits(images, rb.get_shift(name)).float().sum((1, 2))

    clean = ink("clean")
    assert (ink("thicker") > 1.3 * clean).all() and (ink("thinner") < 0.8 * clean).all()
    assert torch.allclose(ink("contrast"), 0.3 * clean, rtol=0.02)
    small, large = (ink_box(rb.view(images, rb.get_shift(n), "raw")) for n in ("small", "large"))
    base = ink_box(images)
    assert (small[:, 0] < 0.75 * base[:, 0]).all() and (large[:, 0] > 1.15 * base[:, 0]).mean() > 0.8
    # through predict's preprocessing a small digit is a 20 px digit again; the photo
    # preprocessing may refuse the faintest tiny one (a blank field): one in 60 at most
    seen = rb.view(images, rb.get_shift("small"), "predict")
    read = seen.flatten(1).amax(1) > 127
    assert read.sum() >= len(seen) - 1
    side = ink_box(seen[read]).max(1)
    assert (side >= 17).all() and (side <= 21).all()


def test_rotation_turns_a_bar_both_ways():
    bar = torch.zeros(2, 28, 28, dtype=torch.uint8)
    bar[:, 4:24, 13:15] = 255
    out = rb.raw_view(rb.transform_digits(bar, rb.get_shift("rotate15"))).float()
    cols = torch.arange(28.0)

    def centre(row):
        return out[:, row].mul(cols).sum(1) / out[:, row].sum(1)

    lean = centre(6) - centre(21)  # > 0: the top leans right (clockwise)
    assert lean[0] > 2 and lean[1] < -2


def test_robustness_reports_every_shift_and_view_and_agrees_with_accuracy(digits):
    images, labels = digits

    class Majority(torch.nn.Module):
        """Always answers 1: its accuracy is the share of ones, whatever the shift."""

        def forward(self, x):
            out = torch.zeros(len(x), 10)
            out[:, 1] = 1
            return out

    from lenet5.models import Preprocess

    cache = {}
    acc = rb.robustness(Majority(), Preprocess(), images, labels, cache=cache)
    assert set(acc) == {(s.name, v) for s in rb.SHIFTS for v in rb.VIEWS}
    share = float((labels == 1).float().mean())
    assert all(a == pytest.approx(share) for a in acc.values())
    assert len(cache) == len(acc)  # made once, reused by the next model


def test_a_trained_model_reads_clean_digits_as_evaluate_does(small_run, mnist):
    from lenet5.checkpoint import load_checkpoint
    from lenet5.evaluation import evaluate
    from lenet5.training.losses import build_loss

    ckpt = load_checkpoint(small_run)
    model, pre = ckpt.build_model(), ckpt.preprocess
    images, labels = mnist.test.images[:300], mnist.test.labels[:300]
    acc = rb.robustness(model, pre, images, labels, [rb.get_shift("clean"), rb.get_shift("lowres8")])
    from lenet5.data import Split

    expected = evaluate(model, Split(images, labels), pre, build_loss("cross_entropy")).acc
    assert acc[("clean", "raw")] == pytest.approx(expected)
    assert acc[("lowres8", "raw")] < acc[("clean", "raw")]


def test_other_writers_digits_come_out_as_mnist_digits():
    pytest.importorskip("sklearn")
    sys.path.insert(0, str(ROOT))
    from benchmarks.robustness import other_writers_digits

    images, labels = other_writers_digits()
    assert images.shape == (1797, 28, 28) and images.dtype == torch.uint8
    assert sorted(labels.unique().tolist()) == list(range(10))
    assert np.abs(ink_box(images[:50]).max(1) - 20).max() <= 2  # 20 px as MNIST's, edge aside


def test_the_benchmark_prints_both_views_for_a_checkpoint(small_run, mnist_dir, tmp_path, capsys):
    sys.path.insert(0, str(ROOT))
    from benchmarks.robustness import main

    out = tmp_path / "table.json"
    assert main([str(small_run), "--data-dir", str(mnist_dir), "--limit", "40",
                 "--no-other-writers", "--markdown", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "predict view" in text and "raw view" in text and "(rotate15)" in text
    assert "| classic |" in text
    import json

    row = json.loads(out.read_text())["models"]["classic"]
    assert {"clean/predict", "clean/raw", "lowres8/raw", "photos/predict"} <= set(row)
    assert all(0 <= v <= 1 for v in row.values())
