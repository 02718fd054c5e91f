"""A real `lenet5 serve` on loopback under load: 1,000 requests from 20 concurrent clients,
1,000 right answers (each the model's own, no answer crossed with another request's)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np

from lenet5.serve.engine import ServedModel

REQUESTS, CLIENTS = 1000, 20


def test_1000_requests_from_20_clients(server_url, checkpoint, mnist):
    images = mnist.test.images[:REQUESTS].numpy()
    local = ServedModel("local", checkpoint)
    expected = local.predict_batch(images)
    s4 = {i: p.activations["S4"] for i, p in zip(range(0, REQUESTS, 10),
                                                  local.predict_batch(images[::10], activations=True))}

    def client(k: int) -> list[tuple[int, int, dict]]:
        out = []
        with httpx.Client(base_url=server_url, timeout=30) as http:
            for i in range(k, REQUESTS, CLIENTS):
                want = i % 10 == 0  # every tenth asks for the feature maps too
                r = http.post("/api/predict", json={"pixels": images[i].tolist(), "activations": want})
                out.append((i, r.status_code, r.json()))
        return out

    with ThreadPoolExecutor(CLIENTS) as pool:
        answers = [a for f in [pool.submit(client, k) for k in range(CLIENTS)]
                   for a in f.result(timeout=240)]
    assert len(answers) == REQUESTS
    assert all(status == 200 for _, status, _ in answers)
    right = 0
    for i, _, body in answers:
        ok = body["digit"] == expected[i].digit and body["input"] == images[i].tolist()
        ok = ok and np.allclose(body["probabilities"], expected[i].probabilities, atol=2e-6)
        if i % 10 == 0:
            ok = ok and np.allclose(body["activations"][3]["maps"], s4[i], atol=6e-4)
        else:
            ok = ok and body["activations"] is None
        right += ok
    assert right == REQUESTS


def test_the_server_lives_through_bad_requests(server_url):
    with httpx.Client(base_url=server_url, timeout=30) as http:
        assert http.post("/api/predict", content=b"\0" * (3 * 2**20),
                         headers={"content-type": "application/json"}).status_code == 413
        assert http.post("/api/predict", files={"file": ("x.png", b"junk", "image/png")}).status_code == 422
        assert http.post("/api/predict", content=b"{{{", headers={"content-type": "application/json"}
                         ).status_code == 422
    with httpx.Client(base_url=server_url, timeout=30) as http:  # a fresh connection still works
        assert http.get("/healthz").json() == {"status": "ok", "models": 1}


def test_serve_refuses_a_port_in_use(checkpoint, server_url, capsys):
    from lenet5.cli import main

    port = server_url.rsplit(":", 1)[1]
    assert main(["serve", str(checkpoint), "--port", port]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"lenet5: error: cannot listen on 127.0.0.1:{port} (") and "\n" not in err


def test_serve_refuses_a_missing_checkpoint(tmp_path, capsys):
    from lenet5.cli import main

    assert main(["serve", str(tmp_path / "nope.safetensors")]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"lenet5: error: checkpoint {tmp_path / 'nope.safetensors'} does not exist"
