"""Load on `lenet5 serve`: requests per second and p50/p99 latency at N concurrent clients.

    python -m benchmarks.load_serve CHECKPOINT [--clients 20] [--requests 4000] [--activations]
    python -m benchmarks.load_serve --url http://127.0.0.1:8000      # a server already running

Without --url it starts ``lenet5 serve CHECKPOINT --port 0`` on 127.0.0.1 and stops it at
the end. Each client is a thread with one keep-alive connection (the standard library's
http.client: the lightest client, so the figures are the server's, not the client's) that
posts MNIST-sized digits as JSON (``{"pixels": 28x28}``), one request after another. The
first 10% of the requests warm up and are not counted. Loopback only.

On a shared machine latency depends on the neighbours; the server's CPU time per request
(from /proc, when this script started the server) does much less.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import queue
import statistics
import subprocess
import sys
import threading
import time
from urllib.parse import urlsplit

import numpy as np


def start_server(checkpoint: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "lenet5", "serve", checkpoint, "--port", "0"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stderr], daemon=True).start()
    try:
        line = lines.get(timeout=120)
    except queue.Empty:
        proc.kill()
        sys.exit("lenet5 serve did not start within 120 s")
    if " at http://" not in line:
        proc.kill()
        sys.exit(f"lenet5 serve failed: {line.strip()}")
    return proc, line.split(" at ")[1].split()[0]


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (Linux /proc), or None elsewhere."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def bodies(n: int, activations: bool, seed: int = 0) -> list[bytes]:
    """Digit-like payloads: a thick random stroke on black, as the page would send."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        img = np.zeros((28, 28), dtype=np.uint8)
        y, x = rng.integers(6, 22, size=2)
        for _ in range(60):
            y = int(np.clip(y + rng.integers(-1, 2), 4, 23))
            x = int(np.clip(x + rng.integers(-1, 2), 4, 23))
            img[y - 1:y + 2, x - 1:x + 2] = 255
        out.append(json.dumps({"pixels": img.tolist(), "activations": activations}).encode())
    return out


def run(url: str, clients: int, requests: int, activations: bool, pid: int | None = None) -> dict:
    parts = urlsplit(url)
    payloads = bodies(64, activations)
    warmup = requests // 10
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    counter = iter(range(requests))
    start = threading.Barrier(clients + 1)
    marks: dict[str, float] = {}

    def client() -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        start.wait()
        while True:
            with lock:
                i = next(counter, None)
                if i == warmup:
                    marks["t0"] = time.perf_counter()
                    marks["cpu0"] = cpu_seconds(pid) if pid else None
            if i is None:
                break
            t = time.perf_counter()
            try:
                conn.request("POST", "/api/predict", payloads[i % len(payloads)],
                             {"content-type": "application/json"})
                r = conn.getresponse()
                body = r.read()
                ok = r.status == 200 and b'"digit"' in body
            except (OSError, http.client.HTTPException) as e:
                ok, body = False, str(e).encode()
                conn.close()
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
            dt = time.perf_counter() - t
            with lock:
                if not ok:
                    errors.append(body[:200].decode(errors="replace"))
                elif i >= warmup:
                    latencies.append(dt)
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    start.wait()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - marks["t0"]
    cpu1 = cpu_seconds(pid) if pid else None
    cpu = (cpu1 - marks["cpu0"]) if cpu1 is not None and marks["cpu0"] is not None else None
    ms = np.array(latencies) * 1000
    return {"clients": clients, "requests": len(latencies), "errors": len(errors),
            "rps": len(latencies) / elapsed, "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99)), "mean_ms": statistics.fmean(ms),
            "server_cpu_ms": 1000 * cpu / len(latencies) if cpu is not None else None,
            "first_error": errors[0] if errors else None}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", nargs="?", help="checkpoint to serve (unless --url)")
    p.add_argument("--url", help="a server already running, e.g. http://127.0.0.1:8000")
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--requests", type=int, default=4000)
    p.add_argument("--activations", action="store_true", help="ask for the feature maps too")
    args = p.parse_args()
    if not args.url and not args.checkpoint:
        p.error("give a CHECKPOINT to serve or the --url of a running server")
    if args.url and not args.url.startswith(("http://127.", "http://localhost", "http://[::1]")):
        p.error("loopback only: --url must be http://127.x.x.x, localhost or [::1]")
    proc, url = (None, args.url) if args.url else start_server(args.checkpoint)
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
