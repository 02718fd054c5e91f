"""Good and bad requests mixed, on loopback: what ``lenet5 serve`` answers, and what it costs.

The request kinds a careless or hostile client sends (oversize, slow, stalled, decompression
bombs, malformed JSON, multipart and HTTP, clients that leave mid-body) mixed with good ones
(JSON pixels, small photos, a few 4096x4096 uploads), sent by N concurrent clients. Every
request that can be answered must be answered in JSON, none with a 5xx, none with a reset;
a prober asks /healthz all along. ``benchmarks/load_serve.py --mixed`` runs it against a
server it starts; ``tests/serve/test_limits.py`` runs a shorter version in CI.

Each client speaks a minimal HTTP/1.1 over asyncio streams (as load_serve.py does), keeps its
connection alive where the server does, and opens a fresh one where a kind needs it.
"""

from __future__ import annotations

import asyncio
import io
import json
import random
import struct
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

ANSWER_TIMEOUT = 120.0  # seconds a client waits for any answer before counting it lost
BOUNDARY = b"lenet5-mixed-boundary"

# kind: (share of the requests, the statuses that are right for it)
KINDS: dict[str, tuple[float, tuple[int, ...]]] = {
    "good_json": (0.0, (200,)),  # gets what the others leave
    "good_png": (0.10, (200,)),
    "slow_good": (0.01, (200,)),  # sent in 5 pieces, 50 ms apart
    "big_image": (0.004, (200,)),  # a 4096x4096 RGBA PNG of a digit, ~70 KB
    "oversize": (0.05, (413,)),  # 3 MB with a Content-Length
    "oversize_chunked": (0.02, (413,)),  # 3 MB streamed, no Content-Length
    "oversize_expect": (0.01, (413,)),  # Expect: 100-continue, the body never sent
    "bomb": (0.02, (422,)),  # a PNG claiming 30000x30000 pixels
    "bomb_budget": (0.01, (422,)),  # a PNG claiming 5000x5000: over the pixel budget
    "bad_json": (0.06, (422,)),
    "bad_multipart": (0.03, (400, 422)),
    "bad_http": (0.02, (400,)),
    "wrong_type": (0.02, (415,)),
    "stalled": (0.003, (408,)),  # half the body, then nothing: the server times it out
    "disconnect": (0.01, ()),  # half the body, then the client leaves: nobody to answer
}
GOOD = ("good_json", "good_png")


@dataclass
class Answer:
    status: int | None = None
    json_ok: bool = False
    close: bool = False
    error: str | None = None  # "reset", "no answer", "timeout"
    body: bytes = b""


@dataclass
class Result:
    by_kind: dict[str, Counter] = field(default_factory=dict)  # kind -> Counter of status/error
    wrong: list[str] = field(default_factory=list)  # first few unexpected answers
    latencies: list[float] = field(default_factory=list)  # seconds, good requests
    big_latencies: list[float] = field(default_factory=list)
    health: list[float] = field(default_factory=list)  # seconds per /healthz
    health_failures: int = 0
    elapsed: float = 0.0

    def count(self, pred) -> int:
        return sum(n for c in self.by_kind.values() for k, n in c.items() if pred(k))

    @property
    def answered(self) -> int:
        return self.count(lambda k: isinstance(k, int))

    @property
    def server_errors(self) -> int:
        return self.count(lambda k: isinstance(k, int) and k >= 500)

    @property
    def resets(self) -> int:
        return self.count(lambda k: k in ("reset", "no answer", "timeout"))

    @property
    def not_json(self) -> int:
        return sum(c["not json"] for c in self.by_kind.values())

    def percentile(self, q: float, which: str = "good") -> float:
        data = self.latencies if which == "good" else self.big_latencies if which == "big" else self.health
        return float(np.percentile(np.array(data) * 1000, q)) if data else float("nan")


# -- payloads ----------------------------------------------------------------------------
def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def png_claiming(side: int) -> bytes:
    """A valid PNG header claiming side x side grey pixels, then a little zlib data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    raw = zlib.compress(b"\0" * (side + 1) * 16, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def big_digit_png(side: int = 4096) -> bytes:
    """A transparent side x side RGBA PNG with a thick "7" drawn in black: ~70 KB."""
    img = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    s = side / 28
    ImageDraw.Draw(img).line([(7 * s, 7 * s), (21 * s, 7 * s), (12 * s, 22 * s)],
                             fill=(0, 0, 0, 255), width=int(2.5 * s))
    return _png(img)


def digit_photo(digit: np.ndarray, rng: random.Random) -> bytes:
    """A 28x28 MNIST digit as a small grey photo: dark ink on light paper, scaled up."""
    side = rng.choice((84, 140, 200))
    paper = Image.fromarray(255 - digit).resize((side, side), Image.Resampling.BILINEAR)
    return _png(paper)


def multipart(data: bytes, name: str = "digit.png") -> bytes:
    return (b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="file"; filename="'
            + name.encode() + b'"\r\nContent-Type: image/png\r\n\r\n' + data
            + b"\r\n--" + BOUNDARY + b"--\r\n")


def post(body: bytes, ctype: bytes, extra: bytes = b"") -> bytes:
    return (b"POST /api/predict HTTP/1.1\r\nHost: lenet5\r\nContent-Type: " + ctype
            + b"\r\nContent-Length: %d\r\n" % len(body) + extra + b"\r\n" + body)


MULTIPART = b"multipart/form-data; boundary=" + BOUNDARY


class Payloads:
    """The bytes of every kind, made once; good digits from ``digits`` (N, 28, 28) uint8."""

    def __init__(self, digits: np.ndarray, seed: int = 0):
        rng = random.Random(seed)
        self.json = [post(json.dumps({"pixels": d.tolist()}).encode(), b"application/json")
                     for d in digits]
        self.png = [post(multipart(digit_photo(d, rng)), MULTIPART) for d in digits[:64]]
        self.big = post(multipart(big_digit_png(), "big.png"), MULTIPART)
        big_body = b"\0" * (3 * 2**20)
        self.oversize = post(big_body, b"application/json")
        self.oversize_chunked = (b"POST /api/predict HTTP/1.1\r\nHost: lenet5\r\nContent-Type: "
                                 b"application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                                 + b"".join(b"%x\r\n" % 2**16 + b"\0" * 2**16 + b"\r\n" for _ in range(48))
                                 + b"0\r\n\r\n")
        self.oversize_expect = (b"POST /api/predict HTTP/1.1\r\nHost: lenet5\r\nContent-Type: "
                                b"application/json\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n"
                                % len(big_body))
        self.bomb = post(multipart(png_claiming(30000), "bomb.png"), MULTIPART)
        self.bomb_budget = post(multipart(png_claiming(5000), "budget.png"), MULTIPART)
        self.bad_json = [post(b, b"application/json") for b in (
            b'{"pixels": [[0, 1', b"{}", b'{"pixels": "ink"}', b"[" * 3000, b'{"pixels": [[300]]}')]
        self.bad_multipart = [post(b"--" + BOUNDARY + b"\r\nnonsense", MULTIPART),
                              post(multipart(b"not an image at all"), MULTIPART)]
        self.bad_http = [b"BREW /pot HTTP/1.1\r\n\r\n",
                         b"POST /api/predict HTTP/1.1\r\nContent-Length: x\r\n\r\n",
                         b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"]  # TLS, not HTTP
        self.wrong_type = post(b"seven", b"text/plain")

    def pick(self, kind: str, i: int) -> bytes:
        """The bytes for request ``i`` of ``kind`` (stalled and leaving clients send half)."""
        attr = {"good_json": "json", "slow_good": "json", "stalled": "json", "disconnect": "json",
                "good_png": "png", "big_image": "big"}.get(kind, kind)
        value = getattr(self, attr)
        return value[i % len(value)] if isinstance(value, list) else value


# -- the client --------------------------------------------------------------------------
class Conn:
    """One HTTP/1.1 connection, reopened when the server closes it."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass
        self.reader = self.writer = None

    async def exchange(self, raw: bytes, fresh: bool = False, pieces: int = 1, pause: float = 0.0,
                       send: int | None = None, leave: bool = False) -> Answer:
        """Send ``raw`` (its first ``send`` bytes only, in ``pieces``), read one answer."""
        if fresh or self.writer is None:
            await self.close()
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        data = raw if send is None else raw[:send]
        try:
            step = -(-len(data) // pieces)
            for k in range(0, len(data), step):
                self.writer.write(data[k:k + step])
                await self.writer.drain()
                if pause and k + step < len(data):
                    await asyncio.sleep(pause)
            if leave:
                await self.close()
                return Answer()
            answer = await asyncio.wait_for(self._read(), ANSWER_TIMEOUT)
        except (ConnectionResetError, BrokenPipeError):
            answer = Answer(error="reset")
        except asyncio.IncompleteReadError:
            answer = Answer(error="no answer")
        except asyncio.TimeoutError:
            answer = Answer(error="timeout")
        if answer.error or answer.close:
            await self.close()
        return answer

    async def _read(self) -> Answer:
        while True:
            head = await self.reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            if status != 100:
                break
        fields = {}
        for line in head.split(b"\r\n")[1:]:
            if b":" in line:
                k, v = line.split(b":", 1)
                fields[k.strip().lower()] = v.strip().lower()
        if fields.get(b"transfer-encoding") == b"chunked":
            body = b""
            while size := int((await self.reader.readuntil(b"\r\n")).strip(), 16):
                body += (await self.reader.readexactly(size + 2))[:-2]
            await self.reader.readuntil(b"\r\n")
        else:
            body = await self.reader.readexactly(int(fields.get(b"content-length", b"0")))
        try:
            json_ok = fields.get(b"content-type", b"").startswith(b"application/json") and \
                isinstance(json.loads(body), dict)
        except ValueError:
            json_ok = False
        return Answer(status, json_ok, fields.get(b"connection") == b"close", body=body)


async def _one(conn: Conn, kind: str, raw: bytes) -> Answer:
    if kind == "slow_good":
        return await conn.exchange(raw, pieces=5, pause=0.05)
    if kind in ("stalled", "disconnect"):
        return await conn.exchange(raw, fresh=True, send=len(raw) // 2, leave=kind == "disconnect")
    return await conn.exchange(raw, fresh=kind == "bad_http")


def schedule(requests: int, seed: int = 0) -> list[str]:
    """The kinds of ``requests`` requests: each kind's share, the rest good JSON, shuffled."""
    kinds = [k for k, (share, _) in KINDS.items() for _ in range(round(share * requests))]
    kinds += ["good_json"] * (requests - len(kinds))
    random.Random(seed).shuffle(kinds)
    return kinds


async def _prober(host: str, port: int, result: Result, stop: asyncio.Event) -> None:
    conn = Conn(host, port)
    while not stop.is_set():
        t0 = time.perf_counter()
        a = await conn.exchange(b"GET /healthz HTTP/1.1\r\nHost: lenet5\r\n\r\n")
        if a.status == 200:
            result.health.append(time.perf_counter() - t0)
        else:
            result.health_failures += 1
        try:
            await asyncio.wait_for(stop.wait(), 0.1)
        except asyncio.TimeoutError:
            pass
    await conn.close()


async def run_mixed(host: str, port: int, payloads: Payloads, requests: int = 2000, clients: int = 20,
                    seed: int = 0) -> Result:
    """``requests`` requests of every kind from ``clients`` concurrent clients, and a prober."""
    kinds = schedule(requests, seed)
    jobs = iter(enumerate(kinds))
    result = Result(by_kind={k: Counter() for k in KINDS})
    stop = asyncio.Event()

    async def client() -> None:
        conn = Conn(host, port)
        for i, kind in jobs:
            t0 = time.perf_counter()
            a = await _one(conn, kind, payloads.pick(kind, i))
            took = time.perf_counter() - t0
            if kind == "disconnect":
                result.by_kind[kind]["left"] += 1
                continue
            result.by_kind[kind][a.error or a.status] += 1
            if a.status is not None and not a.json_ok:
                result.by_kind[kind]["not json"] += 1
            if a.error or a.status not in KINDS[kind][1] or not a.json_ok:
                if len(result.wrong) < 10:
                    result.wrong.append(f"{kind}: {a.error or a.status} {a.body[:120]!r}")
            elif kind in GOOD:
                result.latencies.append(took)
            elif kind == "big_image":
                result.big_latencies.append(took)
        await conn.close()

    t0 = time.perf_counter()
    probe = asyncio.ensure_future(_prober(host, port, result, stop))
    await asyncio.gather(*[client() for _ in range(clients)])
    result.elapsed = time.perf_counter() - t0
    stop.set()
    await probe
    return result


def memory(pid: int) -> dict[str, int]:
    """Resident set size now and at its peak (bytes), from /proc (Linux)."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line[:5].lower()] = int(line.split()[1]) * 1024
    return out


def report(r: Result) -> str:
    lines = [f"{sum(sum(c.values()) for c in r.by_kind.values())} requests in {r.elapsed:.1f} s: "
             f"{r.answered} answered, {r.server_errors} 5xx, {r.resets} resets or lost, "
             f"{r.not_json} not JSON, {len(r.wrong)} unexpected"]
    for kind, c in r.by_kind.items():
        lines.append(f"  {kind:17s} " + ", ".join(f"{k}: {n}" for k, n in sorted(c.items(), key=str)))
    lines.append(f"good requests ({len(r.latencies)}): p50 {r.percentile(50):.1f} ms, "
                 f"p99 {r.percentile(99):.1f} ms; 4096x4096 uploads: p50 {r.percentile(50, 'big'):.0f} ms")
    lines.append(f"/healthz ({len(r.health)} probes, {r.health_failures} failed): "
                 f"max {max(r.health, default=float('nan')) * 1000:.1f} ms")
    lines += [f"unexpected: {w}" for w in r.wrong]
    return "\n".join(lines)

