"""`lenet5 read`: a number made in the test, saved as a photo would be, read back."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from lenet5.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from lenet5.cli import main
from lenet5.data.strings import INK, StringOptions, compose
from lenet5.models import create_model, get_model_entry
from lenet5.reading.image import ink_of, read_file, read_image

UP, LEFT, TOP = 3, 90, 50  # the number 3x larger, 90 px from the left, 50 from the top


@pytest.fixture(scope="module")
def photos(mnist, tmp_path_factory):
    """A 5-digit number of MNIST test digits, dark on light paper, 3x larger, off-centre on
    a 200x400 page, as PNG and JPEG; and the ink's box on the page."""
    s = compose(mnist.test, 1, StringOptions(length=(5, 5)), torch.Generator().manual_seed(3))
    line = s.images[0, :, :int(s.widths[0])].numpy()
    big = np.kron(line, np.ones((UP, UP), np.uint8))
    page = np.zeros((200, 400), np.uint8)
    page[TOP:TOP + big.shape[0], LEFT:LEFT + big.shape[1]] = big
    ys, xs = np.nonzero(page >= INK)
    d = tmp_path_factory.mktemp("photos")
    Image.fromarray(255 - page).save(d / "number.png")
    Image.fromarray(255 - page).convert("RGB").save(d / "number.jpg", quality=90)
    return d, (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)


@pytest.fixture(scope="module")
def reads_ones(tiny_ctc, tmp_path_factory):
    """The tiny reader made to see a 1 everywhere: it reads "1", its box the whole line."""
    ckpt = load_checkpoint(tiny_ctc)
    state = dict(ckpt.state_dict)
    bias = state["classifier.output.bias"].clone()
    bias[1] += 100
    state["classifier.output.bias"] = bias
    out = tmp_path_factory.mktemp("ones") / "ones.safetensors"
    save_checkpoint(out, Checkpoint(model_name=ckpt.model_name, model_args=ckpt.model_args,
                                    preprocess=ckpt.preprocess, state_dict=state,
                                    dataset=ckpt.dataset))
    return out


def run_json(capsys, *args) -> tuple[int, list]:
    rc = main(["read", *map(str, args), "--json"])
    return rc, json.loads(capsys.readouterr().out)


def inside(box, ink, slack):
    x0, y0, x1, y1 = box
    return (ink[0] - slack <= x0 < x1 <= ink[2] + slack and ink[1] - slack <= y0 < y1 <= ink[3] + slack)


def test_read_prints_the_number_its_confidence_and_each_digit(reads_ones, photos, capsys):
    d, _ = photos
    assert main(["read", str(reads_ones), str(d / "number.png")]) == 0
    name, text, confidence, digits = capsys.readouterr().out.strip().split("  ")
    assert name.endswith("number.png") and text == "1"
    assert confidence.startswith("confidence: ") and digits.startswith("digits: 1 ")


def test_json_gives_text_confidence_and_digits_with_boxes_on_the_page(reads_ones, photos, capsys):
    d, ink = photos
    rc, out = run_json(capsys, reads_ones, d / "number.png", d / "number.jpg")
    assert rc == 0 and [o["file"] for o in out] == [str(d / "number.png"), str(d / "number.jpg")]
    for o in out:
        assert set(o) == {"file", "text", "confidence", "digits"} and 0 <= o["confidence"] <= 1
        assert o["text"] == "".join(str(g["digit"]) for g in o["digits"])
        for g in o["digits"]:
            assert set(g) == {"digit", "probability", "box"} and 0 <= g["probability"] <= 1
            assert all(isinstance(v, int) for v in g["box"])
            assert inside(g["box"], ink, 2 * UP), (g["box"], ink)  # in the page's pixels
        # one digit read over the whole line: its box is the number's ink
        assert o["text"] == "1" and all(abs(a - b) <= 2 * UP
                                        for a, b in zip(o["digits"][0]["box"], ink))


def test_boxes_are_in_the_file_s_pixels_however_large(reads_ones, photos, tmp_path):
    """A 2,400-pixel-wide photo is read reduced; its boxes are given in its own pixels."""
    ckpt = load_checkpoint(reads_ones)
    model = ckpt.build_model()
    d, ink = photos
    page = Image.open(d / "number.png")
    big = page.resize((page.width * 6, page.height * 6), Image.Resampling.NEAREST)
    big.save(tmp_path / "big.png")
    r = read_file(model, ckpt.preprocess, tmp_path / "big.png")
    assert r.strip.shape[0] == 32 and r.text == "1"
    assert all(abs(a - 6 * b) <= 6 * 2 * UP for a, b in zip(r.digits[0].box, ink)), r.digits
    same = read_image(model, ckpt.preprocess, page)  # read at its size
    assert all(abs(a - 6 * b) <= 6 * 2 * UP for a, b in zip(r.digits[0].box, same.digits[0].box))


def test_ink_is_the_same_for_dark_on_light_and_light_on_dark(photos):
    d, _ = photos
    page = Image.open(d / "number.png")
    light, _ = ink_of(page)
    dark, _ = ink_of(Image.eval(page, lambda v: 255 - v))
    assert np.array_equal(light, dark) and light.max() == 255 and light[0, 0] == 0


def test_reject_reports_readings_under_the_threshold(tiny_ctc, photos, capsys):
    d, _ = photos
    _, out = run_json(capsys, tiny_ctc, d / "number.png", "--reject", "1")
    assert out[0]["rejected"] is True and out[0]["text"] is None
    _, out = run_json(capsys, tiny_ctc, d / "number.png", "--reject", "0")
    assert "rejected" not in out[0] and isinstance(out[0]["text"], str)
    _, once = run_json(capsys, tiny_ctc, d / "number.png", "--reject", "0", "--one-look")
    assert isinstance(once[0]["text"], str)
    assert main(["read", str(tiny_ctc), str(d / "number.png"), "--reject", "1"]) == 0
    assert " rejected  confidence: " in capsys.readouterr().out
    assert main(["read", str(tiny_ctc), str(d / "number.png"), "--reject", "2"]) == 1


def test_bad_files_get_a_line_each_and_the_others_are_still_read(tiny_ctc, photos, tmp_path,
                                                                 capsys):
    d, _ = photos
    (tmp_path / "bad.png").write_text("not an image")
    blank = tmp_path / "blank.png"
    Image.new("L", (50, 30), 255).save(blank)
    rc, out = run_json(capsys, tiny_ctc, tmp_path / "bad.png", d / "number.png",
                       tmp_path / "missing.png", blank)
    assert rc == 1 and [("error" in o) for o in out] == [True, False, True, True]
    assert "not an image" in out[0]["error"] and "no such file" in out[2]["error"]
    assert "no ink" in out[3]["error"]
    rc = main(["read", str(tiny_ctc), str(tmp_path / "bad.png"), str(d / "number.png")])
    captured = capsys.readouterr()
    assert rc == 1 and "number.png" in captured.out
    errors = captured.err.strip().splitlines()
    assert errors[0].startswith("lenet5: error: ") and "bad.png" in errors[0]
    assert errors[-1] == "lenet5: 1 of 2 files failed (1 read)" and "Traceback" not in captured.err


def test_a_directory_is_read_file_by_file_and_strips_saved(tiny_ctc, photos, tmp_path, capsys):
    d, _ = photos
    rc, out = run_json(capsys, tiny_ctc, d, "--save-preprocessed", tmp_path / "seen")
    assert rc == 0 and [o["file"].rsplit("/", 1)[1] for o in out] == ["number.jpg", "number.png"]
    strip = Image.open(out[0]["preprocessed"])
    assert strip.height == 32 and strip.width > 5 * 10


def test_the_checkpoint_is_optional_and_must_be_a_reader(photos, tmp_path, capsys, monkeypatch):
    from lenet5 import weights

    d, _ = photos
    monkeypatch.setattr(weights, "DEFAULTS", {})
    assert main(["read", str(d / "number.png")]) == 1
    assert capsys.readouterr().err.strip() == ("lenet5: error: no shipped reader of whole "
                                               "numbers; pass a checkpoint (train one with "
                                               "`lenet5 train`)")
    classic = tmp_path / "classic.safetensors"
    save_checkpoint(classic, Checkpoint(model_name="classic", model_args={"num_classes": 10},
                                        preprocess=get_model_entry("classic").preprocess,
                                        state_dict=create_model("classic").state_dict()))
    assert main(["read", str(classic), str(d / "number.png")]) == 1
    assert "`lenet5 predict` reads it" in capsys.readouterr().err


def test_the_verifier_is_named_or_turned_off(tiny_ctc, photos, capsys):
    d, _ = photos
    rc, alone = run_json(capsys, tiny_ctc, d / "number.png", "--verifier", "none")
    assert rc == 0 and isinstance(alone[0]["text"], str)
    assert main(["read", str(tiny_ctc), str(d / "number.png"), "--verifier", "nothing"]) == 1
    assert capsys.readouterr().err.strip().startswith("lenet5: error: nothing does not exist")
    assert main(["read", str(tiny_ctc), str(d / "number.png"), "--verifier", str(tiny_ctc)]) == 1
    assert "not a reader of single digits" in capsys.readouterr().err
    rc, every = run_json(capsys, tiny_ctc, d / "number.png", "--trust", "1")
    assert rc == 0 and isinstance(every[0]["text"], str)
    assert main(["read", str(tiny_ctc), str(d / "number.png"), "--trust", "1.5"]) == 1
    assert capsys.readouterr().err.strip() == ("lenet5: error: --trust takes a probability "
                                               "between 0 and 1, not 1.5")
