"""From strips to readings: a stand-in model with a known output strip, the text's
probability, each digit's place; the training objectives' batches and losses."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

from lenet5.data import Dataset
from lenet5.data.strings import StringDataset, StringOptions
from lenet5.models import Preprocess, create_model
from lenet5.reading import read as read_module
from lenet5.reading.objectives import evaluate_reader, get_objective
from lenet5.reading.read import (
    MARGIN,
    DecodeOptions,
    output_strip,
    read_strips,
    shift_rows,
    text_probability,
)
from lenet5.reading.verify import DigitReader
from tests.data.test_strings import fake_digits
from tests.reading.test_verify import Says

PRE = Preprocess(pad=0)


class FixedStrip(nn.Module):
    """A reader whose output strip is given: ``scores`` (11, T) for every input."""

    objective, blank, stride = "sdnn", 10, 4

    def __init__(self, scores: torch.Tensor):
        super().__init__()
        self.scores = scores

    def frames(self, width):
        return (width - 32) // self.stride + 1

    def centre(self, t):
        return self.stride * t + 16

    def forward(self, x):
        assert x.shape[-1] == 80 + 2 * MARGIN
        return self.scores.expand(len(x), -1, -1)


def test_reading_places_each_digit_on_its_ink():
    image = torch.zeros(1, 32, 80, dtype=torch.uint8)
    image[0, 6:26, 10:18] = 200  # a digit, its centre near column 14: frames 3 and 4
    image[0, 8:24, 30:36] = 200  # another, centre 33: frame 8
    scores = torch.full((11, 21), -5.0)
    scores[10] = 5.0
    scores[7, 3], scores[7, 4], scores[10, 3:5] = 4.0, 6.0, 0.0
    scores[2, 8], scores[10, 8] = 6.0, 0.0
    model = FixedStrip(scores)
    r = read_strips(model, PRE, image, options=DecodeOptions(verifier=None))[0]
    assert r.text == "72"
    assert [(d.digit, d.x0, d.x1) for d in r.digits] == [(7, 10, 18), (2, 30, 36)]
    p = torch.softmax(scores, 0)
    assert r.digits[0].probability == pytest.approx(float(p[7, 4]), rel=1e-5)
    assert r.digits[1].probability == pytest.approx(float(p[2, 8]), rel=1e-5)
    assert 0 < r.confidence < 1


def test_only_lines_with_a_digit_the_line_reader_doubts_are_verified(monkeypatch):
    image = torch.zeros(1, 32, 80, dtype=torch.uint8)
    image[0, 6:26, 10:18] = 200
    image[0, 8:24, 30:36] = 200
    scores = torch.full((11, 21), -5.0)
    scores[10] = 5.0
    scores[7, 4], scores[1, 4], scores[10, 4] = 6.0, 2.5, 0.0  # 7 at 0.97, else 1
    scores[2, 8], scores[10, 8] = 6.0, 0.0  # 2 at 0.997
    says_1 = [1e-4] * 10
    says_1[1] = 1 - 9e-4
    monkeypatch.setattr(read_module, "digit_reader",
                        lambda source: DigitReader(Says(says_1), Preprocess(pad=2)))
    model = FixedStrip(scores)

    def text(trust):
        options = DecodeOptions(shifts=(), verifier="says-1", trust=trust)
        return read_strips(model, PRE, image, options=options)[0].text

    assert text(0.95) == "72"  # every digit over 0.95: the line reader's word stands
    assert text(0.97) == "12"  # the 7 doubted: both readers read the line, the 1 wins
    assert text(1.0) == "12"


def test_shift_rows_moves_the_ink_and_fills_with_background():
    image = torch.arange(1, 33, dtype=torch.uint8)[None, :, None].expand(2, 32, 5)
    down, up = shift_rows(image, 2), shift_rows(image, -1)
    assert (down[:, :2] == 0).all() and torch.equal(down[:, 2:], image[:, :30])
    assert (up[:, -1] == 0).all() and torch.equal(up[:, :-1], image[:, 1:])
    assert torch.equal(shift_rows(image, 0), image)


class RowProbe(nn.Module):
    """A reader that reads a 7 at frame 4, surer the further its top row of ink is from
    row 6 (logit ``sure[top row]``); it records the batches it is given."""

    objective, blank, stride = "ctc", 10, 4
    sure = {2: 8.0, 5: 6.0, 6: 0.5, 7: 4.0}

    def __init__(self):
        super().__init__()
        self.calls = []

    frames, centre = FixedStrip.frames, FixedStrip.centre

    def forward(self, x):
        self.calls.append(len(x))
        top = (x > x.amin()).flatten(2).any(1).reshape(len(x), 32, -1).any(2).float().argmax(1)
        scores = torch.full((len(x), 11, 21), -5.0)
        scores[:, 10] = 5.0
        for b, row in enumerate(top.tolist()):
            scores[b, 7, 4], scores[b, 10, 4] = self.sure[row], 0.0
        return scores


def test_a_line_read_unsure_is_read_again_a_pixel_up_and_down_and_averaged():
    images = torch.zeros(2, 32, 80, dtype=torch.uint8)
    images[0, 6:26, 10:18] = 200  # top row 6: unsure
    images[1, 2:22, 10:18] = 200  # top row 2: sure, read once
    model = RowProbe()
    once = read_strips(model, PRE, images, options=DecodeOptions(shifts=(), verifier=None))
    assert model.calls == [2]
    model.calls.clear()
    twice = read_strips(model, PRE, images, options=DecodeOptions(verifier=None))  # under 0.9
    assert model.calls == [2, 2]  # the unsure line alone, shifted up and down (one batch)
    assert [r.text for r in once] == [r.text for r in twice] == ["7", "7"]
    assert once[0].confidence < DecodeOptions.recheck <= once[1].confidence
    p7 = [float(torch.softmax(torch.tensor([model.sure[row], 0.0] + [-5.0] * 9), 0)[0])
          for row in (6, 5, 7)]  # the three output strips' 7 at frame 4
    assert once[0].digits[0].probability == pytest.approx(p7[0], rel=1e-5)
    assert twice[0].digits[0].probability == pytest.approx(sum(p7) / 3, rel=1e-5)
    assert twice[0].confidence > once[0].confidence and twice[1] == once[1]


def test_output_strip_gives_each_outputs_classes_and_column():
    scores = torch.zeros(11, 21)
    scores[4, 5] = 9.0
    probs, centres = output_strip(FixedStrip(scores), PRE, torch.zeros(32, 80, dtype=torch.uint8))
    assert probs.shape == (21, 11) and torch.allclose(probs.sum(1), torch.ones(21))
    assert int(probs[5].argmax()) == 4 and centres[5] == 20 and centres[0] == 0


def test_text_probability_sums_every_path_that_reads_the_text():
    torch.manual_seed(0)
    logp = torch.log_softmax(torch.randn(1, 3, 4), 2)  # 3 frames, classes 0-2, blank 3
    for text in ([], [1], [2, 2], [0, 1]):
        brute = 0.0
        for path in itertools.product(range(4), repeat=3):
            collapsed = [k for i, k in enumerate(path) if k != 3 and (i == 0 or path[i - 1] != k)]
            if collapsed == text:
                brute += math.exp(sum(float(logp[0, t, k]) for t, k in enumerate(path)))
        got = text_probability(logp, torch.tensor([3]), [text], blank=3)
        assert float(got[0]) == pytest.approx(brute, rel=1e-5)


@pytest.fixture(scope="module")
def strings():
    digits = Dataset(name="fake", train=fake_digits(200, 1, 0), test=fake_digits(60, 2, 500),
                     classes=tuple("0123456789"), file_sha256={"f": "0" * 64})
    return StringDataset("fake-strings", digits, test_options=StringOptions(length=(1, 4)),
                         test_size=12)


def test_ctc_objective_batch_and_loss_train(strings):
    torch.manual_seed(0)
    model = create_model("lenet5-ctc")
    obj = get_objective(model.objective)
    batch = obj.batch(strings.train, 8, torch.Generator().manual_seed(0), PRE)
    assert batch.x.shape[:3] == (8, 1, 32) and batch.x.dtype == torch.float32
    assert len(batch.targets) == int(batch.target_lengths.sum())
    assert (batch.input_widths <= batch.x.shape[-1]).all()
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    losses = []
    for _ in range(15):  # one batch learnt by heart: the loss must fall
        loss = obj.loss(model(batch.x), batch, model)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


def test_sdnn_objective_batch_and_loss(strings):
    model = create_model("lenet5-sdnn")
    obj = get_objective(model.objective)
    batch = obj.batch(strings.train, 16, torch.Generator().manual_seed(0), PRE)
    assert batch.x.shape == (16, 1, 32, 32) and batch.targets.max() <= 10
    loss = obj.loss(model(batch.x), batch, model)
    assert loss.ndim == 0 and math.isfinite(loss.item())
    assert obj.epoch_size(strings.train) == 400  # each training digit centred once


@pytest.mark.parametrize("name, methods", [("lenet5-sdnn", ["viterbi", "greedy"]),
                                           ("lenet5-ctc", ["greedy", "beam"])])
def test_evaluate_reader_counts_what_it_reads(strings, name, methods):
    model = create_model(name)
    for method in methods:
        metrics, readings = evaluate_reader(model, PRE, strings.test, DecodeOptions(method=method))
        assert metrics.strings == len(readings) == 12
        assert metrics.exact == sum(r.text == t for r, t in zip(readings, strings.test.texts()))
        assert all(0 <= r.confidence <= 1 for r in readings)
    with pytest.raises(ValueError, match="not 'beam'" if name == "lenet5-sdnn" else "not 'viterbi'"):
        evaluate_reader(model, PRE, strings.test,
                        DecodeOptions(method="beam" if name == "lenet5-sdnn" else "viterbi"))
