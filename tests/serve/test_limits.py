"""What a careless or hostile client can cost `lenet5 serve`, and that it is bounded
(docs/serve.md): deadlines, the connection cap, oversize bodies, bad HTTP, clients that
leave, decodes at a time; then everything at once, 2,000 requests from 20 clients."""

from __future__ import annotations

import asyncio
import io
import json
import socket
import threading
import time

import httpx
import numpy as np
import pytest
from PIL import Image

from .conftest import MAX_CONNECTIONS


def connect(server, timeout: float = 30) -> socket.socket:
    s = socket.create_connection((server.host, server.port))
    s.settimeout(timeout)
    return s


def read_all(s: socket.socket) -> bytes:
    """Everything the server sends until it closes (socket.timeout if it never does)."""
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    return data


def json_answer(data: bytes) -> tuple[int, dict]:
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"content-type: application/json" in head.lower(), data[:300]
    return int(head.split(b" ", 2)[1]), json.loads(body)


def post(body: bytes, ctype: bytes = b"application/json", extra: bytes = b"") -> bytes:
    return (b"POST /api/predict HTTP/1.1\r\nHost: t\r\nContent-Type: " + ctype
            + b"\r\nContent-Length: %d\r\n" % len(body) + extra + b"\r\n" + body)


def test_half_sent_headers_get_a_json_408_and_are_dropped(server):
    with connect(server) as s:
        s.sendall(b"POST /api/predict HTTP/1.1\r\nHost: t\r\nContent-Ty")
        status, body = json_answer(read_all(s))
    assert status == 408 and "headers did not arrive within 1.5 s" in body["detail"]


def test_half_sent_body_gets_a_json_408_and_is_dropped(server):
    with connect(server) as s:
        s.sendall(post(b'{"pixels": ' + b"[0, " * 500)[:-200])
        status, body = json_answer(read_all(s))
    assert status == 408 and "body did not arrive within 2 s" in body["detail"]


def test_a_trickle_cannot_hold_a_connection(server):
    """A byte every 0.1 s keeps arriving, yet the headers are due at the deadline."""
    request = post(json.dumps({"pixels": [[0] * 28] * 28}).encode())
    with connect(server) as s:
        s.settimeout(0.1)
        answer = b""
        for byte in request[:200]:  # 20 s of trickle at most: far past the deadline
            try:
                s.send(bytes([byte]))
                answer += s.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if answer:
                break
        s.settimeout(30)
        answer += read_all(s)
    assert json_answer(answer)[0] == 408


def test_a_silent_connection_is_closed_without_a_word(server):
    with connect(server) as s:
        assert read_all(s) == b""


def test_a_slow_client_within_the_deadlines_is_answered(server):
    request = post(json.dumps({"pixels": [[0] * 28] * 28}).encode())
    with connect(server) as s:
        for k in range(0, len(request), len(request) // 5 + 1):
            s.sendall(request[k:k + len(request) // 5 + 1])
            time.sleep(0.1)
        head = s.recv(65536)
    assert head.startswith(b"HTTP/1.1 200 ")


def test_20_oversize_uploads_in_a_row_get_20_json_413s(server):
    """8 MB bodies sent whole, as most clients do: each is read and dropped, the 413 read."""
    from benchmarks.serve_mixed import Conn

    async def twenty():
        conn, answers = Conn(server.host, server.port), []
        for _ in range(20):
            answers.append(await conn.exchange(post(b"\0" * (8 * 2**20))))
        await conn.close()
        return answers

    answers = asyncio.run(twenty())
    assert [(a.status, a.json_ok, a.error) for a in answers] == [(413, True, None)] * 20
    assert not any(a.close for a in answers)  # the body was read: the connection lives on


def test_oversize_streamed_or_announced_gets_a_json_413(server):
    chunked = (b"POST /api/predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n"
               + b"".join(b"10000\r\n" + b"\0" * 2**16 + b"\r\n" for _ in range(64)) + b"0\r\n\r\n")
    with connect(server) as s:
        s.sendall(chunked + b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        data = read_all(s)
    first, _, rest = data.partition(b"}")
    assert json_answer(first + b"}")[0] == 413
    assert rest.startswith(b"HTTP/1.1 200 ")  # the next request on the same connection
    with connect(server) as s:  # Expect: 100-continue: the 413 comes before the body is sent
        s.sendall(b"POST /api/predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 9000000\r\nExpect: 100-continue\r\n\r\n")
        assert json_answer(read_all(s))[0] == 413


def test_huge_headers_get_a_json_431(server):
    with connect(server) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n" + b"X-Junk: " + b"j" * 100_000 + b"\r\n\r\n")
        status, body = json_answer(read_all(s))
    assert status == 431 and "larger than 64 KB" in body["detail"]


@pytest.mark.parametrize("junk", [b"BREW /pot HTTP/1.1\r\n\r\n",
                                  b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # TLS
                                  b"GET /healthz HTTP/1.1\r\nContent-Length: x\r\n\r\n"])
def test_what_is_not_http_gets_a_json_400(server, junk):
    with connect(server) as s:
        s.sendall(junk)
        status, body = json_answer(read_all(s))
    assert status == 400 and body == {"detail": "not a valid HTTP request"}


def test_connections_over_the_cap_get_a_json_503(server):
    extra = 5
    socks = [connect(server) for _ in range(MAX_CONNECTIONS + extra)]
    try:
        answers = []
        for s in socks:
            try:
                answers.append(read_all(s))  # the refused at once, the others at the deadline
            except ConnectionResetError:
                answers.append(b"reset")
    finally:
        for s in socks:
            s.close()
    refused = [a for a in answers if a]
    assert len(refused) >= extra
    assert all(json_answer(a)[0] == 503 for a in refused)
    assert "connections open, the most it takes" in json_answer(refused[0])[1]["detail"]
    with httpx.Client(base_url=server.url, timeout=30) as http:  # and then it serves again
        assert http.get("/healthz").status_code == 200


def test_clients_leaving_mid_body_or_not_speaking_http_are_not_logged_as_errors(server):
    """Each was a 60-line ERROR traceback (a client leaving) or a WARNING line (junk): a log
    anyone could flood. Now one INFO line each, which the default log level hides."""
    mark = len(server.log)
    for _ in range(20):
        with connect(server) as s:
            s.sendall(post(b'{"pixels": ' + b"[0, " * 20000)[:40000])
            time.sleep(0.01)
        with connect(server) as s:
            s.sendall(b"BREW /pot HTTP/1.1\r\n\r\n")
            read_all(s)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.get("/healthz").status_code == 200
    time.sleep(0.5)
    assert server.log[mark:] == []


def test_decodes_are_bounded_and_healthz_answers_while_they_run(checkpoint, monkeypatch):
    """50 large uploads at once, every decode held up: 2 decode at a time, 8 wait, 40 get a
    503; meanwhile /healthz answers, and so does a small photo (it has a lane of its own)."""
    import lenet5.serve.app as app_module
    from lenet5.serve import create_app
    from lenet5.serve.limits import Limits

    def png(side: int) -> bytes:
        photo = np.zeros((side, side), np.uint8)
        photo[side // 6:-side // 6, side // 2 - side // 20:side // 2 + side // 20] = 255
        buf = io.BytesIO()
        Image.fromarray(photo).save(buf, "PNG")
        return buf.getvalue()

    large, small = png(1200), png(60)  # 1.44 megapixels: over the 1 of the light lane
    gate, real = threading.Event(), app_module.load_digit

    def held(data, name):
        if data == large:
            gate.wait(60)
        return real(data, name)

    monkeypatch.setattr(app_module, "load_digit", held)
    app = create_app([checkpoint], Limits(decode_workers=2, decode_queue=8))

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t", timeout=60) as c:
            uploads = [asyncio.ensure_future(c.post("/api/predict", files={"file": ("l.png", large)}))
                       for _ in range(50)]
            while sum(u.done() for u in uploads) < 40:  # the 503s come at once
                await asyncio.sleep(0.05)
            health = await asyncio.wait_for(c.get("/healthz"), 30)
            photo = await asyncio.wait_for(c.post("/api/predict", files={"file": ("s.png", small)}), 30)
            gate.set()
            return health, photo, await asyncio.gather(*uploads)

    try:
        health, photo, answers = asyncio.run(main())
    finally:
        gate.set()
    assert health.status_code == 200 and photo.status_code == 200 and photo.json()["digit"] in range(10)
    assert sorted(a.status_code for a in answers) == [200] * 10 + [503] * 40
    assert all("waiting to be decoded" in a.json()["detail"] for a in answers if a.status_code == 503)
    assert app.state.decoder.busiest == {"heavy": 2, "light": 1}


def test_mixed_load_2000_requests_from_20_clients(server, mnist):
    """Good and bad requests of every kind at once: every answer JSON, no 5xx, no reset."""
    from benchmarks.serve_mixed import Payloads, memory, report, run_mixed

    payloads = Payloads(mnist.test.images[:256].numpy())
    before = memory(server.proc.pid)
    r = asyncio.run(run_mixed(server.host, server.port, payloads, requests=2000, clients=20))
    after = memory(server.proc.pid)
    print(report(r))
    print(f"server memory: {before['vmrss'] >> 20} MB before, {after['vmrss'] >> 20} MB after, "
          f"peak {after['vmhwm'] >> 20} MB")
    assert sum(sum(c.values()) for c in r.by_kind.values()) == 2000
    assert r.server_errors == 0 and r.resets == 0 and r.not_json == 0, report(r)
    assert not r.wrong, report(r)
    assert r.by_kind["good_json"][200] > 1000 and r.by_kind["stalled"][408] > 0
    assert r.health and not r.health_failures
