"""Load on `lenet5 serve`: requests per second and p50/p99 latency at N concurrent clients.

    python -m benchmarks.load_serve CHECKPOINT [--clients 20] [--requests 4000] [--activations]
    python -m benchmarks.load_serve CHECKPOINT --mixed [--requests 2000]   # good and bad requests
    python -m benchmarks.load_serve CHECKPOINT --floors     # the bounds of docs/serve.md, measured
    python -m benchmarks.load_serve --url http://127.0.0.1:8000      # a server already running

Without --url it starts ``lenet5 serve CHECKPOINT --port 0`` on 127.0.0.1 and stops it at
the end. Each client is one keep-alive connection that posts MNIST-sized digits as JSON
(``{"pixels": 28x28}``), one request after another; the first 10% of the requests warm up
and are not counted. Loopback only.

``--mixed`` sends good requests mixed with every kind of bad one (benchmarks/serve_mixed.py)
and reports the answers by kind, the p99 of the good ones, /healthz latency all along and
the server's memory before and after; it fails (exit 1) on any 5xx, reset or non-JSON
answer. The server it starts gets ``--header-timeout`` and ``--body-timeout`` of
``--timeouts`` seconds (2), so that stalled requests end quickly. ``--floors`` measures,
on a server with the default limits: 16 concurrent uploads of a 4096x4096 image (peak
memory, /healthz latency), 20 oversize uploads in a row, and how long half-sent requests
are held.

The clients are asyncio coroutines speaking a minimal HTTP/1.1 (a few lines here) rather
than 20 threads of http.client or httpx: with threads the load generator's own GIL
contention showed up as server latency (p99 several times higher in back-to-back runs on
the same machine).

On a shared machine latency depends on the neighbours; the server's CPU time per request
(from /proc, when this script started the server) does much less.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import queue
import shlex
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from urllib.parse import urlsplit

import numpy as np


def start_server(checkpoint: str, *flags: str) -> tuple[subprocess.Popen, str]:
    """``lenet5 serve CHECKPOINT --port 0 FLAGS``; the process and its URL. What it writes to
    stderr after the line that gives its address is passed on, marked ``server:``."""
    proc = subprocess.Popen([sys.executable, "-m", "lenet5", "serve", checkpoint, "--port", "0", *flags],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str | None] = queue.Queue()

    def read():
        for line in proc.stderr:
            lines.put(line)
        lines.put(None)
    threading.Thread(target=read, daemon=True).start()
    said = []
    deadline = time.monotonic() + 120
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            proc.kill()
            sys.exit("lenet5 serve did not start within 120 s")
        if line is None:
            sys.exit(f"lenet5 serve failed: {''.join(said).strip()}")
        said.append(line)
        if line.startswith("lenet5: serving ") and " at http://" in line:
            break

    def relay():
        while (line := lines.get()) is not None:
            sys.stderr.write("server: " + line)
    threading.Thread(target=relay, daemon=True).start()
    return proc, line.split(" at ")[1].split()[0]


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time of a process (Linux /proc), or None elsewhere."""
    if pid is None:
        return None
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def strokes(n: int, seed: int = 0) -> np.ndarray:
    """(n, 28, 28) uint8 digit-like images: a thick random stroke on black, as the page draws."""
    rng = np.random.default_rng(seed)
    out = np.zeros((n, 28, 28), dtype=np.uint8)
    for img in out:
        y, x = rng.integers(6, 22, size=2)
        for _ in range(60):
            y = int(np.clip(y + rng.integers(-1, 2), 4, 23))
            x = int(np.clip(x + rng.integers(-1, 2), 4, 23))
            img[y - 1:y + 2, x - 1:x + 2] = 255
    return out


def bodies(n: int, activations: bool, seed: int = 0) -> list[bytes]:
    """JSON payloads of :func:`strokes`."""
    return [json.dumps({"pixels": img.tolist(), "activations": activations}).encode()
            for img in strokes(n, seed)]


async def _client(host: str, port: int, jobs, payloads: list[bytes], warmup: int, marks: dict,
                  latencies: list[float], errors: list[str]) -> None:
    """One keep-alive connection posting one request after another (a minimal HTTP/1.1)."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for i in jobs:
            if i == warmup:
                marks["t0"], marks["cpu0"] = time.perf_counter(), cpu_seconds(marks["pid"])
            body = payloads[i % len(payloads)]
            started = time.perf_counter()
            writer.write(b"POST /api/predict HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (host.encode(), len(body), body))
            head = await reader.readuntil(b"\r\n\r\n")
            fields = dict(line.split(b":", 1) for line in head.split(b"\r\n")[1:] if b":" in line)
            length = int({k.strip().lower(): v for k, v in fields.items()}[b"content-length"])
            answer = await reader.readexactly(length)
            elapsed = time.perf_counter() - started
            if not head.startswith(b"HTTP/1.1 200") or b'"digit"' not in answer:
                errors.append((head.split(b"\r\n")[0] + b" " + answer[:200]).decode(errors="replace"))
            elif i >= warmup:
                latencies.append(elapsed)
    finally:
        writer.close()


def run(url: str, clients: int, requests: int, activations: bool, pid: int | None = None) -> dict:
    parts = urlsplit(url)
    payloads = bodies(64, activations)
    warmup = requests // 10
    latencies: list[float] = []
    errors: list[str] = []
    marks: dict = {"pid": pid}
    jobs = iter(range(requests))  # shared: each client takes the next request number

    async def all_clients():
        await asyncio.gather(*[_client(parts.hostname, parts.port, jobs, payloads, warmup, marks,
                                       latencies, errors) for _ in range(clients)])

    asyncio.run(all_clients())
    elapsed = time.perf_counter() - marks["t0"]
    cpu1 = cpu_seconds(pid)
    cpu = cpu1 - marks["cpu0"] if cpu1 is not None and marks["cpu0"] is not None else None
    ms = np.array(latencies) * 1000
    return {"clients": clients, "requests": len(latencies), "errors": len(errors),
            "rps": len(latencies) / elapsed, "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99)), "mean_ms": statistics.fmean(ms),
            "server_cpu_ms": 1000 * cpu / len(latencies) if cpu is not None else None,
            "first_error": errors[0] if errors else None}


def mixed(url: str, requests: int, clients: int, pid: int | None) -> bool:
    from .serve_mixed import Payloads, memory, report, run_mixed

    parts = urlsplit(url)
    payloads = Payloads(strokes(256))
    before = memory(pid) if pid else None
    r = asyncio.run(run_mixed(parts.hostname, parts.port, payloads, requests, clients))
    print(report(r))
    if pid:
        after = memory(pid)
        print(f"server memory: {before['vmrss'] / 2**20:.0f} MB before, {after['vmrss'] / 2**20:.0f} MB "
              f"after, peak {after['vmhwm'] / 2**20:.0f} MB")
    return r.server_errors == 0 and r.resets == 0 and r.not_json == 0 and not r.wrong


def floors(url: str, pid: int | None) -> bool:
    """The floors of docs/serve.md on a server with the default limits."""
    from .serve_mixed import Conn, Payloads, Result, _prober, memory, post

    parts = urlsplit(url)
    host, port = parts.hostname, parts.port
    payloads = Payloads(strokes(4))

    async def uploads(n: int):
        result, stop = Result(), asyncio.Event()
        probe = asyncio.ensure_future(_prober(host, port, result, stop))
        await asyncio.sleep(0.3)
        t0 = time.perf_counter()
        answers = await asyncio.gather(*[Conn(host, port).exchange(payloads.big) for _ in range(n)])
        took = time.perf_counter() - t0
        stop.set()
        await probe
        return answers, took, result

    async def oversize(n: int):
        conn, out = Conn(host, port), []
        for _ in range(n):
            out.append(await conn.exchange(post(b"\0" * (8 * 2**20), b"application/json")))
        await conn.close()
        return out

    async def held(raw: bytes) -> float:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(raw)
        t0 = time.perf_counter()
        try:
            while await asyncio.wait_for(reader.read(65536), 120):
                pass
        except (ConnectionError, asyncio.TimeoutError):
            pass
        writer.close()
        return time.perf_counter() - t0

    before = memory(pid) if pid else None
    answers, took, r = asyncio.run(uploads(16))
    statuses = Counter(a.status or a.error for a in answers)
    print(f"16 concurrent 4096x4096 uploads in {took:.1f} s: {dict(statuses)}; /healthz "
          f"{len(r.health)} probes, {r.health_failures} failed, max {max(r.health) * 1000:.0f} ms")
    ok = statuses == Counter({200: 16}) and not r.health_failures and max(r.health) < 2
    if pid:
        after = memory(pid)
        print(f"server memory: {before['vmrss'] / 2**20:.0f} MB before, "
              f"peak {after['vmhwm'] / 2**20:.0f} MB, {after['vmrss'] / 2**20:.0f} MB after")
        ok = ok and after["vmhwm"] < 1.5 * 2**30
    refused = asyncio.run(oversize(20))
    n413 = sum(a.status == 413 and a.json_ok for a in refused)
    print(f"20 uploads of 8 MB in a row: {n413} JSON 413s, "
          f"{sum(a.error is not None for a in refused)} resets or lost")
    ok = ok and n413 == 20

    async def both():
        return await asyncio.gather(held(b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Ty"),
                                    held(post(b"{" * 1000, b"application/json")[:-500]))
    head, body = asyncio.run(both())
    print(f"half-sent headers dropped after {head:.1f} s, half-sent body after {body:.1f} s")
    return ok and head < 60 and body < 60


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", nargs="?", help="checkpoint to serve (unless --url)")
    p.add_argument("--url", help="a server already running, e.g. http://127.0.0.1:8000")
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--requests", type=int, default=4000)
    p.add_argument("--activations", action="store_true", help="ask for the feature maps too")
    p.add_argument("--mixed", action="store_true", help="good and bad requests mixed (default: "
                   "2,000 requests)")
    p.add_argument("--timeouts", type=float, default=2.0, metavar="S",
                   help="--mixed: the server's header and body timeouts (default: 2)")
    p.add_argument("--floors", action="store_true", help="measure the floors of docs/serve.md")
    p.add_argument("--server-args", default="", metavar="ARGS",
                   help='more flags for the server started, e.g. "--decode-workers 4"')
    args = p.parse_args()
    if not args.url and not args.checkpoint:
        p.error("give a CHECKPOINT to serve or the --url of a running server")
    if args.url and not args.url.startswith(("http://127.", "http://localhost", "http://[::1]")):
        p.error("loopback only: --url must be http://127.x.x.x, localhost or [::1]")
    t = str(args.timeouts)
    flags = ("--header-timeout", t, "--body-timeout", t) if args.mixed else ()
    flags += tuple(shlex.split(args.server_args))
    proc, url = (None, args.url) if args.url else start_server(args.checkpoint, *flags)
    pid = proc.pid if proc else None
    if args.mixed or args.floors:
        try:
            ok = (mixed(url, args.requests if args.requests != 4000 else 2000, args.clients, pid)
                  if args.mixed else floors(url, pid))
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=30)
        sys.exit(0 if ok else 1)
    try:
        r = run(url, args.clients, args.requests, args.activations, proc.pid if proc else None)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=10)
    what = "JSON pixels + feature maps" if args.activations else "JSON pixels"
    print(f"{r['clients']} clients, {r['requests']} requests ({what}), {r['errors']} errors: "
          f"{r['rps']:.0f} requests/s, p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms"
          + (f", server CPU {r['server_cpu_ms']:.2f} ms/request" if r["server_cpu_ms"] else ""))
    if r["first_error"]:
        print(f"first error: {r['first_error']}")
    if r["errors"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
