"""The downloader against an HTTP server the test starts on 127.0.0.1: good, slow, stalling,
dropping, wrong, missing and failing mirrors; servers that honour or ignore Range; two
processes downloading the same file at once; mirrors that send too much, for too long, or
a gzip bomb."""

import gzip
import hashlib
import io
import multiprocessing
import sys
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from benchmarks.bounded_memory import gzip_bomb, refuse_in_child
from lenet5.data.download import download_archive, download_file
from lenet5.data.idx import IdxFormat
from lenet5.data.registry import Archive
from lenet5.errors import Lenet5Error
from tests.conftest import idx_bytes, run_cli

CONTENT = idx_bytes(np.random.default_rng(0).integers(0, 256, (40, 28, 28), dtype=np.uint8))
GOOD = gzip.compress(CONTENT, mtime=0)
SHA = hashlib.sha256(CONTENT).hexdigest()
MD5 = hashlib.md5(GOOD).hexdigest()
FAST = dict(backoff=0.01, timeout=5.0)  # no long pauses between tries in the tests
IMAGES = IdxFormat((None, 28, 28), max_count=40)  # what CONTENT is


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _send(self, body: bytes, honour_range: bool = True, stop_after: int | None = None,
              pause: float = 0.0, chunks: int = 1):
        """Send ``body`` (the part a Range asks for, if honoured); hang up after
        ``stop_after`` bytes; send it in ``chunks`` with ``pause`` seconds between them."""
        start = 0
        rng = self.headers.get("Range")
        if rng and honour_range:
            start = int(rng.split("=")[1].rstrip("-"))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        payload = body[start:]
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if stop_after is not None:
            payload = payload[:stop_after]
        step = max(1, -(-len(payload) // chunks))
        try:
            for i in range(0, len(payload), step):
                self.wfile.write(payload[i:i + step])
                self.wfile.flush()
                time.sleep(pause)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up
            self.close_connection = True
        if stop_after is not None:
            self.close_connection = True

    def _send_unbounded(self, length: str | None):
        """20 MB of junk, announced as ``length`` (or with no length at all)."""
        self.send_response(200)
        if length is not None:
            self.send_header("Content-Length", length)
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        try:
            for _ in range(320):
                self.wfile.write(b"\xff" * 65536)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_GET(self):
        kind = self.path.strip("/").split("/")[0]
        srv = self.server
        with srv.lock:
            srv.hits.append((kind, self.headers.get("Range")))
            n = srv.count[kind] = srv.count.get(kind, 0) + 1
        half = len(GOOD) // 2
        if kind == "good":
            self._send(GOOD)
        elif kind == "norange":  # ignores Range: always the whole file, 200
            self._send(GOOD, honour_range=False, stop_after=half if n == 1 else None)
        elif kind == "drop":  # first answer hangs up halfway; Range resumes
            self._send(GOOD, stop_after=half if n == 1 else None)
        elif kind == "alwaysdrop":  # never gets further than half
            self._send(GOOD, honour_range=False, stop_after=half)
        elif kind == "slow":  # the whole file, in 20 pieces over about a second
            self._send(GOOD, pause=0.05, chunks=20)
        elif kind == "stall":  # first answer stops sending for longer than the timeout
            if n == 1:
                self._send(GOOD, stop_after=half, pause=2.0)
            else:
                self._send(GOOD)
        elif kind == "flaky":  # 503 once, then good
            if n == 1:
                self.send_error(503)
            else:
                self._send(GOOD)
        elif kind == "corrupt":
            self._send(gzip.compress(CONTENT[:-1] + b"\x07"))
        elif kind == "zip":
            self._send(srv.zip_bytes)
        elif kind == "junk":  # no Content-Length: sends until the client hangs up
            self._send_unbounded(None)
        elif kind == "huge":  # announces 10 GB
            self._send_unbounded(str(10**10))
        elif kind == "trickle":  # a byte every 20 ms: the file would take ten minutes
            self._send(GOOD, pause=0.02, chunks=len(GOOD))
        elif kind == "bomb":
            self._send(srv.bomb)
        else:
            self.send_error(404)


@pytest.fixture()
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    srv.hits, srv.count, srv.lock = [], {}, threading.Lock()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv, f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def files(d):
    return sorted(p.name for p in d.iterdir() if not p.name.endswith(".lock"))


def test_good_file(server, tmp_path):
    srv, url = server
    path = download_file("f-idx3-ubyte", [url + "/good/"], tmp_path, SHA, IMAGES, **FAST)
    assert path.read_bytes() == GOOD
    assert files(tmp_path) == ["f-idx3-ubyte.gz"]


@pytest.mark.parametrize("bad", ["corrupt", "missing", "alwaysdrop"])
def test_bad_first_mirror_falls_through_to_the_next(server, tmp_path, bad):
    srv, url = server
    path = download_file("f-idx3-ubyte", [f"{url}/{bad}/", f"{url}/good/"], tmp_path, SHA, IMAGES,
                         retries=2, **FAST)
    kinds = [k for k, _ in srv.hits]
    assert kinds == [bad] * (3 if bad == "alwaysdrop" else 1) + ["good"]
    assert srv.hits[-1] == ("good", None)  # a new mirror starts from zero
    assert path.read_bytes() == GOOD


@pytest.mark.parametrize("bad", ["corrupt", "alwaysdrop", "missing"])
def test_no_good_mirror_leaves_nothing_behind(server, tmp_path, bad):
    srv, url = server
    with pytest.raises(Lenet5Error, match="could not download f-idx3-ubyte.*--data-dir"):
        download_file("f-idx3-ubyte", [f"{url}/{bad}/"], tmp_path, SHA, IMAGES, retries=1, **FAST)
    assert files(tmp_path) == []


def test_dropped_connection_resumes_with_range(server, tmp_path):
    srv, url = server
    path = download_file("f-idx3-ubyte", [f"{url}/drop/"], tmp_path, SHA, IMAGES, **FAST)
    assert path.read_bytes() == GOOD
    assert srv.hits == [("drop", None), ("drop", f"bytes={len(GOOD) // 2}-")]


def test_server_that_ignores_range_starts_over(server, tmp_path):
    srv, url = server
    path = download_file("f-idx3-ubyte", [f"{url}/norange/"], tmp_path, SHA, IMAGES, **FAST)
    assert path.read_bytes() == GOOD  # not the first half twice
    assert [k for k, _ in srv.hits] == ["norange", "norange"]


def test_stalled_server_times_out_and_resumes(server, tmp_path):
    srv, url = server
    path = download_file("f-idx3-ubyte", [f"{url}/stall/"], tmp_path, SHA, IMAGES,
                         backoff=0.01, timeout=0.5)
    assert path.read_bytes() == GOOD
    assert len(srv.hits) == 2 and srv.hits[1][1] is not None  # the second asked for the rest


def test_slow_server_and_server_error_are_retried(server, tmp_path):
    srv, url = server
    assert download_file("a-idx3-ubyte", [f"{url}/slow/"], tmp_path, SHA, IMAGES,
                         **FAST).read_bytes() == GOOD
    assert download_file("b-idx3-ubyte", [f"{url}/flaky/"], tmp_path, SHA, IMAGES,
                         **FAST).read_bytes() == GOOD
    assert [k for k, _ in srv.hits] == ["slow", "flaky", "flaky"]


def test_partial_file_from_an_interrupted_run_is_resumed(server, tmp_path):
    srv, url = server
    (tmp_path / "f-idx3-ubyte.gz.part").write_bytes(GOOD[:1000])
    path = download_file("f-idx3-ubyte", [f"{url}/good/"], tmp_path, SHA, IMAGES, **FAST)
    assert path.read_bytes() == GOOD
    assert srv.hits == [("good", "bytes=1000-")]


def test_stale_partial_file_is_discarded_once_the_hash_fails(server, tmp_path):
    srv, url = server
    (tmp_path / "f-idx3-ubyte.gz.part").write_bytes(b"\x1f\x8bnot the same file at all")
    path = download_file("f-idx3-ubyte", [f"{url}/good/"], tmp_path, SHA, IMAGES, **FAST)
    assert path.read_bytes() == GOOD
    assert srv.hits[-1] == ("good", None)


def test_md5_of_the_download_is_checked(server, tmp_path):
    srv, url = server
    assert download_file("f-idx3-ubyte", [f"{url}/good/"], tmp_path, md5=MD5, **FAST).is_file()
    with pytest.raises(Lenet5Error, match="MD5"):
        download_file("g-idx3-ubyte", [f"{url}/good/"], tmp_path, md5="0" * 32, **FAST)


def test_archive_is_verified_and_its_members_extracted(server, tmp_path):
    srv, url = server
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("gzip/x-images-idx3-ubyte.gz", GOOD)
        z.writestr("gzip/other.gz", b"not needed")
    srv.zip_bytes = buf.getvalue()
    archive = Archive("gzip.zip", hashlib.md5(srv.zip_bytes).hexdigest(),
                      {"x-images-idx3-ubyte": "gzip/x-images-idx3-ubyte.gz"}, len(srv.zip_bytes))
    got = download_archive(archive, [f"{url}/zip/"], tmp_path)
    assert got["x-images-idx3-ubyte"].read_bytes() == GOOD
    assert files(tmp_path) == ["x-images-idx3-ubyte.gz"]  # the zip is gone
    bad = Archive("gzip.zip", "0" * 32, archive.members, archive.size)
    with pytest.raises(Lenet5Error, match="MD5"):
        download_archive(bad, [f"{url}/zip/"], tmp_path / "other")


def _download_in_child(url, dest_dir, start):
    start.wait(30)
    path = download_file("f-idx3-ubyte", [url], dest_dir, SHA, IMAGES)
    sys.exit(0 if path.read_bytes() == GOOD else 3)


def test_two_processes_download_the_same_file_once(server, tmp_path):
    """Two processes (forked, so they need not import torch again) start together on a slow
    mirror; the lock makes the second wait and then find the verified file: the server sends
    it once and neither sees half a file."""
    srv, url = server
    ctx = multiprocessing.get_context("fork")
    start = ctx.Event()
    procs = [ctx.Process(target=_download_in_child, args=(f"{url}/slow/", tmp_path, start))
             for _ in range(2)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    assert srv.hits == [("slow", None)]
    assert files(tmp_path) == ["f-idx3-ubyte.gz"]


def test_prepare_without_network_says_how_to_use_local_files(tmp_path):
    # Port 9 on loopback: nothing listens, so the connection is refused at once.
    r = run_cli("prepare", "--mirror", "http://127.0.0.1:9/",
                env={"LENET5_CACHE_DIR": str(tmp_path), "LENET5_SYSTEM_DATA_DIRS": ""})
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert "--data-dir DIR or the LENET5_DATA_DIR" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("bad,match", [
    ("junk", r"sent more than the 35,503 bytes the file can be \(size bound\)"),
    ("huge", r"announces 10,000,000,000 bytes, more than the 35,503 the file can be \(size bound\)"),
])
def test_a_mirror_that_sends_too_much_is_cut_off(server, tmp_path, bad, match):
    """The size bound of 40 images of 28x28 as .gz (their content and gzip's most overhead):
    a server that sends more, announced or not, is cut off there and the .part deleted."""
    srv, url = server
    with pytest.raises(Lenet5Error, match=match):
        download_file("f-idx3-ubyte", [f"{url}/{bad}/"], tmp_path, SHA, IMAGES, **FAST)
    assert files(tmp_path) == []
    assert [k for k, _ in srv.hits] == [bad]  # not retried: a bound is not a hiccup
    path = download_file("f-idx3-ubyte", [f"{url}/{bad}/", f"{url}/good/"], tmp_path, SHA,
                         IMAGES, **FAST)
    assert path.read_bytes() == GOOD


def test_a_trickling_mirror_is_abandoned_at_the_deadline(server, tmp_path):
    srv, url = server
    start = time.monotonic()
    with pytest.raises(Lenet5Error, match=r"trickle/f-idx3-ubyte.gz: not done within the 1 s "
                                          r"deadline \([0-9,]+ bytes received\)"):
        download_file("f-idx3-ubyte", [f"{url}/trickle/"], tmp_path, SHA, IMAGES, deadline=1.0,
                      **FAST)
    assert time.monotonic() - start < 10
    assert files(tmp_path) == []
    path = download_file("f-idx3-ubyte", [f"{url}/trickle/", f"{url}/good/"], tmp_path, SHA,
                         IMAGES, deadline=1.0, **FAST)
    assert path.read_bytes() == GOOD


def test_every_dataset_file_has_a_size_bound():
    from lenet5.data import get_dataset_spec, list_datasets
    from lenet5.data.download import gz_bound

    for name in list_datasets():
        spec = get_dataset_spec(name)
        for f in spec.file_names:
            assert spec.idx_format(f).max_count == spec.sizes["train" if f in spec.files["train"]
                                                              else "test"]
        if spec.archive is not None:
            assert spec.archive.size > 0
    mnist = get_dataset_spec("mnist")
    assert gz_bound(mnist.idx_format("train-images-idx3-ubyte").max_bytes()) == 47_091_152


def test_a_gzip_bomb_from_a_mirror_is_refused_in_bounded_memory(server, tmp_path):
    """1.6 MB of .gz (within the 47 MB bound of MNIST's training images) that expand to
    1.5 GB: the check reads one byte past what the header announces and stops (peak memory
    measured in a child process, where the imports alone take some 300 MB)."""
    srv, url = server
    srv.bomb = gzip_bomb((60000, 28, 28), 1.5)
    (error,), peak_kib = refuse_in_child("mirror", f"{url}/bomb/", str(tmp_path))
    assert peak_kib < 1024 * 1024, f"peak RSS {peak_kib // 1024} MiB"
    assert "could not download train-images-idx3-ubyte" in error
    assert "is longer than its header says (47,040,016 bytes" in error
    assert files(tmp_path) == []
