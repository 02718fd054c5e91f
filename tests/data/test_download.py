"""The downloader against an HTTP server the test starts on 127.0.0.1."""

import gzip
import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from lenet5.data.download import download_file
from lenet5.errors import Lenet5Error
from tests.conftest import idx_bytes, run_cli

CONTENT = idx_bytes(np.arange(3 * 28 * 28, dtype=np.uint8).reshape(3, 28, 28) % 251)
GOOD = gzip.compress(CONTENT)
SHA = hashlib.sha256(CONTENT).hexdigest()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        kind = self.path.strip("/").split("/")[0]
        self.server.hits.append(kind)
        if kind == "good":
            body = GOOD
        elif kind == "corrupt":
            body = gzip.compress(CONTENT[:-1] + b"\x07")
        elif kind == "drop":  # promise everything, send half, hang up
            self.send_response(200)
            self.send_header("Content-Length", str(len(GOOD)))
            self.end_headers()
            self.wfile.write(GOOD[: len(GOOD) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture()
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.hits = []
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv, f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_good_file(server, tmp_path):
    srv, url = server
    path = download_file("f-idx3-ubyte", [url + "/good/"], tmp_path, SHA, expect_ndim=3)
    assert path.read_bytes() == GOOD
    assert [p.name for p in tmp_path.iterdir()] == ["f-idx3-ubyte.gz"]


@pytest.mark.parametrize("bad", ["corrupt", "drop", "missing"])
def test_bad_first_mirror_falls_through_to_the_next(server, tmp_path, bad):
    srv, url = server
    path = download_file("f-idx3-ubyte", [f"{url}/{bad}/", f"{url}/good/"], tmp_path, SHA, 3)
    assert srv.hits == [bad, "good"]
    assert path.read_bytes() == GOOD


@pytest.mark.parametrize("bad", ["corrupt", "drop", "missing"])
def test_no_good_mirror_leaves_nothing_behind(server, tmp_path, bad):
    srv, url = server
    with pytest.raises(Lenet5Error, match="could not download f-idx3-ubyte.*--data-dir"):
        download_file("f-idx3-ubyte", [f"{url}/{bad}/"], tmp_path, SHA, 3)
    assert list(tmp_path.iterdir()) == []


def test_prepare_without_network_says_how_to_use_local_files(tmp_path):
    # Port 9 on loopback: nothing listens, so the connection is refused at once.
    r = run_cli("prepare", "--mirror", "http://127.0.0.1:9/",
                env={"LENET5_CACHE_DIR": str(tmp_path)})
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert "--data-dir DIR or the LENET5_DATA_DIR" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
