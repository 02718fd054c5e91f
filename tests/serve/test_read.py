"""POST /api/read through FastAPI's test client: a number composed in the test, as a photo
file and as JSON pixels, read as the reader reads it in process; the output strip; a JSON
4xx for every bad request."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from lenet5.checkpoint import load_checkpoint
from lenet5.data.strings import StringOptions, compose
from lenet5.reading.image import read_image
from lenet5.reading.read import output_strip
from tests.serve.test_app import assert_error, bomb_png

pytest.importorskip("fastapi")

PAGE = (150, 400)  # the photo's size
AT = (37, 61)  # where the number's top left corner lies on it


@pytest.fixture(scope="module")
def client(checkpoint, tiny_reader):
    from fastapi.testclient import TestClient

    from lenet5.serve import create_app

    with TestClient(create_app([checkpoint, tiny_reader])) as c:
        yield c


@pytest.fixture(scope="module")
def number(mnist):
    """A 4-digit number from MNIST test digits, 3x larger, bright ink at AT on a dark page."""
    s = compose(mnist.test, 1, StringOptions(length=(4, 4)), torch.Generator().manual_seed(5))
    line = s.images[0, :, :int(s.widths[0])].numpy()
    big = np.kron(line, np.ones((3, 3), dtype=np.uint8))
    page = np.zeros(PAGE, dtype=np.uint8)
    page[AT[0]:AT[0] + big.shape[0], AT[1]:AT[1] + big.shape[1]] = big
    return page, s.text(0)


def png(array: np.ndarray, mode: str = "L") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).convert(mode).save(buf, "PNG")
    return buf.getvalue()


def read(client, body: bytes, name: str = "number.png", **form):
    return client.post("/api/read", files={"file": (name, body, "image/png")}, data=form)


def test_models_say_their_task(client):
    models = client.get("/api/models").json()
    assert [(m["id"], m["task"]) for m in models["models"]] == [("classic", "classify"),
                                                                ("sdnn", "read")]
    assert models["default"] == "classic"
    assert models["defaults"] == {"classify": "classic", "read": "sdnn"}
    assert models["models"][1]["class_names"] == [*"0123456789", "none"]


def test_openapi_documents_read(client):
    spec = client.get("/openapi.json").json()
    post = spec["paths"]["/api/read"]["post"]
    assert set(post["requestBody"]["content"]) == {"application/json", "multipart/form-data"}
    assert "ReadResponse" in json.dumps(post["responses"]["200"])
    assert {"413", "415", "422"} <= set(post["responses"])
    props = spec["components"]["schemas"]["ReadResponse"]["properties"]
    assert {"text", "confidence", "digits", "strip"} <= set(props)


def test_a_photo_of_a_number_is_read_as_in_process(client, tiny_reader, number):
    page, _truth = number
    r = read(client, png(255 - page, "RGB"))  # dark ink on light paper, in colour
    assert r.status_code == 200, r.text
    got = r.json()
    ckpt = load_checkpoint(tiny_reader)  # read as `lenet5 read` reads the same picture
    want = read_image(ckpt.build_model(), ckpt.preprocess, Image.fromarray(255 - page).convert("RGB"))
    assert got["model"] == "sdnn"
    assert got["text"] == want.text and got["confidence"] == pytest.approx(want.confidence, abs=1e-5)
    assert [(d["digit"], tuple(d["box"])) for d in got["digits"]] == \
        [(d.digit, d.box) for d in want.digits]
    ink_rows, ink_cols = np.nonzero(page)
    for d in got["digits"]:  # boxes in the photo's pixels, on the ink
        x0, y0, x1, y1 = d["box"]
        assert ink_cols.min() - 3 <= x0 < x1 <= ink_cols.max() + 4
        assert ink_rows.min() - 3 <= y0 < y1 <= ink_rows.max() + 4
        assert 0 < d["probability"] <= 1
    # the output strip: one entry per window, left to right, over the whole line
    strip = got["strip"]
    assert len(strip) >= 4 and {c["class"] for c in strip} <= {*"0123456789", "none"}
    assert all(0 < c["probability"] <= 1 for c in strip)
    xs = [c["x"] for c in strip]
    assert xs == sorted(xs) and xs[0] < ink_cols.min() + 20 and xs[-1] > ink_cols.max() - 20
    assert len(got["input"]) == 32 and max(map(max, got["input"])) == 255
    # the strip says what the reading says: each digit read is a digit's best somewhere
    assert set(got["text"]) <= {c["class"] for c in strip}
    # ... and is the reading's own: the line at the height whose reading won, its outputs
    assert np.array_equal(np.array(got["input"], dtype=np.uint8), want.strip.numpy())
    # (a line read unsure is read again a pixel up and down: its strip is the three's mean)
    probs, centres = want.outputs
    assert [c["probability"] for c in strip] == pytest.approx(probs.max(1).tolist(), abs=1e-4)
    assert [c["column"] for c in strip] == pytest.approx(centres.tolist())
    once, _ = output_strip(ckpt.build_model(), ckpt.preprocess, want.strip)
    assert len(once) == len(probs)


def test_light_on_dark_reads_the_same_and_so_do_json_pixels(client, number):
    page, _ = number
    dark_on_light = read(client, png(255 - page)).json()
    light_on_dark = read(client, png(page)).json()
    as_json = client.post("/api/read", json={"pixels": page.tolist(), "model": "sdnn"}).json()
    # the paper is estimated anew for each polarity: the ink differs a little, and where
    # two of the three heights a line is read at come close, the other may win (boxes 5%
    # taller or shorter)
    for other in (light_on_dark, as_json):
        assert other["text"] == dark_on_light["text"]
        for a, b in zip(other["digits"], dark_on_light["digits"]):
            assert a["digit"] == b["digit"]
            assert np.abs(np.subtract(a["box"], b["box"])).max() <= 4, (a, b)
            assert a["probability"] == pytest.approx(b["probability"], abs=0.06)


def test_boxes_are_in_the_uploads_own_pixels(client, number):
    """A photo larger than what is decoded (1024 a side): the boxes and the strip's x
    still in its own pixels, the reading the same as of the small one."""
    page, _ = number
    small = read(client, png(255 - page)).json()
    big = read(client, png(255 - np.kron(page, np.ones((8, 8), dtype=np.uint8)))).json()
    assert big["text"] == small["text"]
    for a, b in zip(big["digits"], small["digits"]):  # (the reduced photo's ink differs a little)
        (x0, y0, x1, y1), (u0, v0, u1, v1) = a["box"], b["box"]
        assert u0 <= (x0 + x1) / 16 <= u1 and v0 <= (y0 + y1) / 16 <= v1, (a, b)
    assert abs(len(big["strip"]) - len(small["strip"])) <= 1
    for end in (0, -1):  # (within what reading the line at another of its heights moves)
        assert abs(big["strip"][end]["x"] / 8 - small["strip"][end]["x"]) <= 8


@pytest.mark.parametrize("body, pattern", [
    ({"pixels": [[0, 1], [2]]}, r"every row must be as long as the first"),
    ({"pixels": []}, r"pixels"),
    ({"pixels": [[0, 300]]}, r"pixels\.0\.1"),
    ({"pixels": [[0] * 10] * 10}, r"no ink"),
    ({"pixels": [[0, 255]], "model": "nope"}, r"unknown model 'nope'; served: classic, sdnn"),
    ({"pixels": [[0, 255]], "model": "classic"}, r"'classic' does one digit at a time: POST /api/predict"),
])
def test_bad_json_is_a_422(client, body, pattern):
    assert_error(client.post("/api/read", json=body), 422, pattern)


def test_bad_requests_are_json_4xx(client, number):
    page, _ = number
    assert_error(read(client, b"not an image", "x.png"), 422, r"x.png: not an image")
    assert_error(read(client, png(np.full((50, 200), 255, np.uint8)), "blank.png"), 422,
                 r"blank.png: no ink")
    assert_error(read(client, bomb_png(5000), "huge.png"), 422, r"huge.png: image is 5000x5000")
    assert_error(client.post("/api/read", content=b"x", headers={"content-type": "text/plain"}),
                 415, r"application/json or multipart/form-data")
    assert_error(client.post("/api/read", content=b"\0" * (2 * 2**20 + 1),
                             headers={"content-type": "application/json"}), 413, r"larger than 2 MB")
    assert_error(client.post("/api/read", data={"model": "sdnn"}, files={"other": ("a", b"b")}),
                 422, r"file field named 'file'")
    # a reader on /api/predict, a classifier on /api/read
    assert_error(client.post("/api/predict", files={"file": ("n.png", png(page), "image/png")},
                             data={"model": "sdnn"}), 422, r"'sdnn' does whole numbers: POST /api/read")
    assert_error(read(client, png(page), model="classic"), 422, r"POST /api/predict")
    assert client.get("/healthz").json() == {"status": "ok", "models": 2}


def test_no_reader_served(checkpoint):
    from fastapi.testclient import TestClient

    from lenet5.serve import create_app

    with TestClient(create_app([checkpoint])) as c:
        assert_error(c.post("/api/read", json={"pixels": [[0, 255]]}), 422,
                     r"no model served here does whole numbers; served: classic")
        assert c.get("/api/models").json()["defaults"] == {"classify": "classic"}
