"""The photo benchmark, small: MNIST test digits made into photos of each tuned kind
(benchmarks/photogen.py, at most 640 px here) are read by predict's preprocessing as the
originals are (the session's 2-epoch model), and look like them (no model)."""

from dataclasses import replace

import numpy as np
import pytest

from benchmarks.photo_conditions import CONDITIONS, scene, shrink
from benchmarks.photogen import photo_file
from benchmarks.predict_photos import run_conditions

TUNED = [c for c in CONDITIONS if not c.held_out]


def smaller(c):
    """The condition with its photos shrunk to 640 px: CI's time."""
    return replace(c, draw=lambda rng: shrink(c.draw(rng), 640))


@pytest.fixture(scope="module")
def results(small_run, mnist):
    from lenet5.predict import Predictor

    predictor = Predictor.from_checkpoint(small_run)
    images = mnist.test.images[:80].numpy()
    original = predictor.probabilities(images).argmax(1).numpy()
    assert (original == mnist.test.labels[:80].numpy()).mean() > 0.9  # a model worth comparing with
    return run_conditions(predictor, images, [smaller(c) for c in TUNED])


def test_photos_are_read_as_the_originals(results):
    photos = sum(st.photos for st in results.values())
    agree = sum(st.agree for st in results.values())
    assert photos == 80 and all(st.photos == 8 for st in results.values())
    assert agree / photos >= 0.95, {n: st.agreement for n, st in results.items()}


def test_photos_give_the_originals_shape(results):
    """Model-free: the 28x28 from each photo correlates with the original (no refusals)."""
    for name, st in results.items():
        assert st.refused == 0, name
        assert st.similarity / st.photos >= 0.85, (name, st.similarity / st.photos)


def test_the_generator_is_seeded(mnist):
    digit = mnist.test.images[7].numpy()
    c = TUNED[-1]  # every kind of paper, light and camera at random
    s = shrink(scene(c, 7, seed=3), 400)
    assert photo_file(digit, s) == photo_file(digit, shrink(scene(c, 7, seed=3), 400))
    assert photo_file(digit, s) != photo_file(digit, replace(s, seed=s.seed + 1))
    assert scene(c, 7, seed=3) != scene(c, 8, seed=3) and isinstance(s.sheet[0], int)
    assert np.isfinite(s.digit_side)
