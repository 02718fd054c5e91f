"""The JSON API through FastAPI's test client: answers, and a clear 4xx for every bad request."""

from __future__ import annotations

import io
import json
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from lenet5.serve.engine import ServedModel

pytest.importorskip("fastapi")


@pytest.fixture(scope="module")
def client(checkpoint, tmp_path_factory):
    from fastapi.testclient import TestClient

    from lenet5.serve import create_app

    second = tmp_path_factory.mktemp("second") / "classic.safetensors"
    second.write_bytes(checkpoint.read_bytes())  # same stem: served as "classic-2"
    with TestClient(create_app([checkpoint, second])) as c:
        yield c


@pytest.fixture(scope="module")
def digits(mnist):
    return mnist.test.images[:20].numpy(), mnist.test.labels[:20].numpy()


def png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "PNG")
    return buf.getvalue()


def assert_error(r, status: int, pattern: str):
    import re

    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail
    assert re.search(pattern, detail), detail


def test_health_models_and_page(client):
    assert client.get("/healthz").json() == {"status": "ok", "models": 2}
    models = client.get("/api/models").json()
    assert models["default"] == "classic"
    assert [m["id"] for m in models["models"]] == ["classic", "classic-2"]
    assert models["models"][0]["layers"] == ["C1", "S2", "C3", "S4"]
    assert models["models"][0]["parameters"] == 61706
    page = client.get("/")
    assert page.status_code == 200 and "<canvas id=\"pad\"" in page.text
    for name in ("app.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200


def test_openapi_documents_the_api(client):
    spec = client.get("/openapi.json").json()
    assert {"/api/predict", "/api/models", "/healthz"} <= set(spec["paths"])
    post = spec["paths"]["/api/predict"]["post"]
    assert set(post["requestBody"]["content"]) == {"application/json", "multipart/form-data"}
    assert "pixels" in post["requestBody"]["content"]["application/json"]["schema"]["properties"]
    assert "PredictResponse" in json.dumps(post["responses"]["200"])
    assert {"413", "415", "422"} <= set(post["responses"])


def test_pixels_give_the_models_answer(client, checkpoint, digits):
    """The answer is exactly the model's own, in process: softmax of its scores."""
    from lenet5.checkpoint import load_checkpoint
    from lenet5.data import to_input

    images, labels = digits
    ckpt = load_checkpoint(checkpoint)
    with torch.no_grad():
        probs = torch.softmax(ckpt.build_model()(to_input(torch.from_numpy(images), ckpt.preprocess)), 1)
    answers = [client.post("/api/predict", json={"pixels": img.tolist()}).json() for img in images]
    assert [a["digit"] for a in answers] == probs.argmax(1).tolist()
    np.testing.assert_allclose([a["probabilities"] for a in answers], probs.numpy(), atol=2e-6)
    assert answers[0]["input"] == images[0].tolist()
    assert answers[0]["activations"] is None and answers[0]["model"] == "classic"
    assert (probs.argmax(1).numpy() == labels).mean() >= 0.7  # the fixture's model reads digits


def test_activations_are_the_layer_outputs(client, checkpoint, digits):
    img = digits[0][0]
    r = client.post("/api/predict", json={"pixels": (img / 1.0).tolist(), "activations": True,
                                          "model": "classic-2"})
    assert r.status_code == 200 and r.json()["model"] == "classic-2"
    maps = {a["layer"]: a for a in r.json()["activations"]}
    assert {k: v["shape"] for k, v in maps.items()} == {
        "C1": [6, 28, 28], "S2": [6, 14, 14], "C3": [16, 10, 10], "S4": [16, 5, 5]}
    local = ServedModel("x", checkpoint).predict(img, activations=True).activations
    for name, a in maps.items():
        np.testing.assert_allclose(a["maps"], local[name], atol=6e-4)
        assert a["min"] == pytest.approx(float(local[name].min()))
    assert -1 <= maps["C1"]["min"] < 0 < maps["C1"]["max"] <= 1  # C1 after its tanh
    same = client.post("/api/predict?activations=true&model=classic", json={"pixels": img.tolist()})
    assert [a["layer"] for a in same.json()["activations"]] == ["C1", "S2", "C3", "S4"]


def test_an_image_file_is_preprocessed_like_predict(client, digits):
    from lenet5.data.images import load_digit

    img, label = digits[0][3], digits[1][3]
    paper = 255 - np.kron(img, np.ones((6, 6), dtype=np.uint8))  # a dark digit on white, 168x168
    data = png(paper)
    r = client.post("/api/predict", files={"file": ("three.png", data, "image/png")},
                    data={"activations": "true", "model": "classic-2"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["input"] == load_digit(data).tolist()
    assert body["digit"] == label and body["model"] == "classic-2"
    assert len(body["activations"]) == 4
    r = client.post("/api/predict?model=classic-2", files={"file": ("three.png", data, "image/png")})
    assert r.json()["activations"] is None and r.json()["model"] == "classic-2"


def test_mnistify_centres_a_raw_drawing(client, digits):
    img = np.zeros((28, 28), dtype=np.uint8)
    img[:14, :14] = np.asarray(Image.fromarray(digits[0][0]).resize((14, 14)))  # small, in a corner
    r = client.post("/api/predict", json={"pixels": img.tolist(), "mnistify": True})
    seen = np.array(r.json()["input"])
    ys, xs = np.nonzero(seen)
    assert ys.max() - ys.min() + 1 == 20 or xs.max() - xs.min() + 1 == 20  # scaled to the 20 px box
    assert abs(np.average(ys, weights=seen[ys, xs]) - 14) < 1.5


@pytest.mark.parametrize("body, pattern", [
    ({"pixels": [[0] * 28] * 27}, r"pixels: .*at least 28"),
    ({"pixels": [[0] * 28] * 27 + [[0] * 29]}, r"pixels\.27: .*at most 28"),
    ({"pixels": [[0] * 28] * 27 + [[0] * 27 + [256]]}, r"pixels\.27\.27: .*less than or equal to 255"),
    ({"pixels": [[0] * 28] * 27 + [[0] * 27 + [-1]]}, r"greater than or equal to 0"),
    ({"pixels": [[0] * 28] * 27 + [[0] * 27 + ["ink"]]}, r"pixels\.27\.27: .*number"),
    ({"pixels": 5}, r"pixels: .*array"),
    ({}, r"pixels: Field required"),
    ({"pixels": [[0] * 28] * 28, "model": "lenet6"}, r"unknown model 'lenet6'; served: classic, classic-2"),
])
def test_bad_json_is_a_422(client, body, pattern):
    assert_error(client.post("/api/predict", json=body), 422, pattern)


def test_nan_and_broken_json(client):
    row = ",".join(["0"] * 28)
    nan = "[" + ",".join([f"[{row}]"] * 27 + [f"[NaN,{row[2:]}]"]) + "]"
    r = client.post("/api/predict", content='{"pixels": ' + nan + "}",
                    headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert_error(client.post("/api/predict", content=b"{", headers={"content-type": "application/json"}),
                 422, r"Invalid JSON")
    assert_error(client.post("/api/predict", content=b"hi", headers={"content-type": "text/plain"}),
                 415, r"application/json or multipart/form-data")
    assert_error(client.post("/api/predict?activations=maybe", json={"pixels": [[0] * 28] * 28}),
                 422, r"activations: .*boolean")


def test_unknown_model_in_a_form(client, digits):
    r = client.post("/api/predict", files={"file": ("a.png", png(digits[0][0]), "image/png")},
                    data={"model": "nope"})
    assert_error(r, 422, r"unknown model 'nope'")


def test_bad_files_are_a_422(client):
    def post(data: bytes, name="x.png"):
        return client.post("/api/predict", files={"file": (name, data, "image/png")})

    assert_error(post(b"GIF89a this is not really an image"), 422, r"x.png: (not an image|cannot decode)")
    assert_error(post(b"hello", "hello.txt"), 422, r"hello.txt: not an image")
    assert_error(post(b""), 422, r"x.png: file is empty")
    assert_error(post(png(np.full((50, 50), 255, np.uint8))), 422, r"no ink found")
    wide = io.BytesIO()
    Image.new("1", (9000, 10)).save(wide, "PNG")  # tiny file, too wide an image
    assert_error(post(wide.getvalue()), 422, r"9000x10, larger than 8192x8192")
    assert_error(client.post("/api/predict", files={"other": ("x.png", b"1", "image/png")}),
                 422, r"file field named 'file'")


def bomb_png(side: int) -> bytes:
    """A valid PNG header claiming side x side pixels of one zlib stream of zeros (~KBs)."""
    import struct

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    raw = zlib.compress(b"\0" * (side + 1) * 64, 9)  # only the first rows: enough to refuse
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def test_decompression_bombs_are_refused(client):
    from PIL import Image as PILImage

    old = PILImage.MAX_IMAGE_PIXELS
    PILImage.MAX_IMAGE_PIXELS = 1_000_000  # a bomb by Pillow's rule, yet under 4096 a side
    try:
        r = client.post("/api/predict", files={"file": ("bomb.png", bomb_png(3000), "image/png")})
    finally:
        PILImage.MAX_IMAGE_PIXELS = old
    assert_error(r, 422, r"bomb.png: refused as a decompression bomb")
    r = client.post("/api/predict", files={"file": ("huge.png", bomb_png(5000), "image/png")})
    assert_error(r, 422, r"huge.png: image is 5000x5000, 25.0 megapixels: more than 16.8")


def test_bodies_over_2_mb_are_refused_unread(client):
    big = b"\0" * (2 * 2**20 + 1)
    assert_error(client.post("/api/predict", content=big, headers={"content-type": "application/json"}),
                 413, r"larger than 2 MB")
    assert_error(client.post("/api/predict", files={"file": ("big.png", big, "image/png")}),
                 413, r"larger than 2 MB")

    def chunks():  # no Content-Length: the streamed bytes are counted
        for _ in range(3):
            yield b"\0" * 2**20
    assert_error(client.post("/api/predict", content=chunks(), headers={"content-type": "application/json"}),
                 413, r"larger than 2 MB")
    assert client.get("/healthz").status_code == 200


def test_broken_multipart_is_a_4xx(client):
    r = client.post("/api/predict", content=b"--xyz\r\nnonsense",
                    headers={"content-type": "multipart/form-data; boundary=xyz"})
    assert 400 <= r.status_code < 500 and isinstance(r.json()["detail"], str)
    r = client.post("/api/predict", content=b"--",
                    headers={"content-type": "multipart/form-data"})  # no boundary
    assert 400 <= r.status_code < 500 and isinstance(r.json()["detail"], str)


def test_unknown_paths_are_json_404s(client):
    assert_error(client.get("/api/nothing"), 404, r"Not Found")
    assert client.get("/api/predict").status_code == 405


def test_an_internal_error_is_a_json_500_and_the_app_lives_on(checkpoint, monkeypatch):
    from fastapi.testclient import TestClient

    from lenet5.serve import create_app

    app = create_app([checkpoint])

    def boom(*a, **k):
        raise RuntimeError("a bug")
    monkeypatch.setattr(app.state.models["classic"], "predict_batch", boom)
    with TestClient(app, raise_server_exceptions=False) as c:
        assert_error(c.post("/api/predict", json={"pixels": [[0] * 28] * 28}), 500, r"internal error")
        assert c.get("/healthz").status_code == 200


def test_missing_extra_is_a_clear_error(monkeypatch):
    import importlib.util

    from lenet5.errors import Lenet5Error
    from lenet5.serve import require_serve_extra

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "uvicorn" else real(n, *a))
    with pytest.raises(Lenet5Error, match=r"needs uvicorn: pip install 'lenet5\[serve\]'"):
        require_serve_extra()
