"""Fixtures for the serve tests: a small trained checkpoint and a real server on loopback."""

from __future__ import annotations

import queue
import subprocess
import sys
import threading

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

STARTUP_TIMEOUT = 90  # seconds for `lenet5 serve` to print its address (imports torch)


@pytest.fixture(scope="session")
def checkpoint(mnist, tmp_path_factory):
    """classic after 100 Adam steps on 6,400 images (about 89% right): enough to read digits.

    A bare loop rather than ``lenet5.training.train``, whose per-epoch evaluations would
    cost more than the training itself here; one torch thread, as the server runs.
    """
    import torch
    import torch.nn.functional as F

    import lenet5
    from lenet5.checkpoint import Checkpoint, save_checkpoint
    from lenet5.data import to_input
    from lenet5.models import get_model_entry

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        model = lenet5.create_model("classic")
        pre = get_model_entry("classic").preprocess
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        x, y = to_input(mnist.train.images[:6400], pre), mnist.train.labels[:6400]
        for i in range(0, 6400, 64):
            loss = F.cross_entropy(model(x[i:i + 64]), y[i:i + 64])
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    out = tmp_path_factory.mktemp("serve") / "classic.safetensors"
    save_checkpoint(out, Checkpoint("classic", {"num_classes": 10, "in_channels": 1}, pre,
                                    model.state_dict()))
    return out


@pytest.fixture(scope="session")
def server_url(checkpoint):
    """`lenet5 serve CHECKPOINT --port 0` in a subprocess, as a user runs it; its URL."""
    proc = subprocess.Popen([sys.executable, "-m", "lenet5", "serve", str(checkpoint), "--port", "0"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stderr], daemon=True).start()
    try:
        line = lines.get(timeout=STARTUP_TIMEOUT)
    except queue.Empty:
        proc.kill()
        pytest.fail("lenet5 serve did not start")
    assert "serving classic at http://127.0.0.1:" in line, line
    url = line.split(" at ")[1].split()[0].rstrip("/")
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    assert proc.returncode is not None
