"""Fixtures for the serve tests: a small trained checkpoint and a real server on loopback."""

from __future__ import annotations

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


class Server:
    """A `lenet5 serve` subprocess: its URL, its pid and every line it writes to stderr."""

    def __init__(self, *args: str):
        self.proc = subprocess.Popen([sys.executable, "-m", "lenet5", "serve", *args, "--port", "0"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.log: list[str] = []
        self.started: str | None = None  # the line that says where it serves
        ready = threading.Event()

        def read():
            for line in self.proc.stderr:
                self.log.append(line)
                if self.started is None and line.startswith("lenet5: serving "):
                    self.started = line
                    ready.set()
            ready.set()  # it ended
        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(STARTUP_TIMEOUT) or self.started is None:
            self.stop()
            pytest.fail(f"lenet5 serve did not start: {''.join(self.log)[:500]}")
        self.url = self.started.split(" at ")[1].split()[0].rstrip("/")
        self.host, self.port = "127.0.0.1", int(self.url.rsplit(":", 1)[1])

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# Short deadlines, so that the tests of stalled requests take seconds; --max-connections
# low enough for a test to reach it.
HEADER_TIMEOUT, BODY_TIMEOUT, MAX_CONNECTIONS = 1.5, 2.0, 48


@pytest.fixture(scope="session")
def server(checkpoint):
    """`lenet5 serve CHECKPOINT --port 0` in a subprocess, as a user runs it (short deadlines)."""
    s = Server(str(checkpoint), "--header-timeout", str(HEADER_TIMEOUT),
               "--body-timeout", str(BODY_TIMEOUT), "--max-connections", str(MAX_CONNECTIONS))
    assert s.started.startswith("lenet5: serving classic at http://127.0.0.1:"), s.started
    yield s
    s.stop()
    assert s.proc.returncode is not None


@pytest.fixture(scope="session")
def server_url(server):
    return server.url
