"""What one client can cost ``lenet5 serve``, bounded: bodies, decodes, connections, time.

:class:`Limits` holds the knobs (``lenet5 serve --help`` sets them); :class:`BodyLimit`
refuses bodies over the limit with a JSON 413 that the client gets to read;
:class:`DecodePool` runs image decodes a few at a time, off the event loop. The
connection-level bounds (read deadlines, the connection cap) are in :mod:`.protocol`.
docs/serve.md states the promises these make.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

log = logging.getLogger("lenet5.serve")
T = TypeVar("T")


def _decoders() -> int:
    """One decode per core beyond the one the event loop needs; at least 1, at most 4."""
    return max(1, min(4, (os.cpu_count() or 2) - 1))


@dataclass
class Limits:
    max_body_bytes: int = 2 * 2**20  # a request body over this gets a 413
    discard_bytes: int = 64 * 2**20  # an oversize body up to this is read and dropped, so
    #                                  the client sees the 413; beyond, the connection is closed
    max_header_bytes: int = 64 * 2**10  # request line + headers
    header_timeout: float = 10.0  # seconds from connecting (or the first byte of the next
    #                               request) to the end of the headers
    body_timeout: float = 30.0  # seconds from the end of the headers to the end of the body
    keep_alive: int = 5  # seconds an idle keep-alive connection stays open
    max_connections: int = 128  # open connections; the next ones get a 503 and are closed
    decode_workers: int = field(default_factory=_decoders)  # large image decodes at a time
    light_pixels: int = 1024 * 1024  # decodes up to this many pixels have a thread of their own
    decode_queue: int = 64  # uploads waiting for a decode, per lane; the next ones get a 503
    shutdown_timeout: float = 5.0  # seconds Ctrl+C waits for requests in flight


class Busy(Exception):
    """Too many requests already waiting: a 503."""


def json_response_bytes(status: int, detail: str, close: bool = True) -> bytes:
    """A whole HTTP/1.1 response with a JSON ``{"detail": ...}`` body, for the protocol layer."""
    from http import HTTPStatus

    body = json.dumps({"detail": detail}).encode()
    head = (f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n" + ("connection: close\r\n" if close else "") + "\r\n")
    return head.encode() + body


async def send_json(send, status: int, detail: str, close: bool = False) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodyTooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware: bodies over ``max_bytes`` get a JSON 413, and the client reads it.

    Answering and closing while the client is still sending makes the kernel reset the
    connection, and most clients then report the reset, not the 413. So the rest of an
    oversize body (up to ``discard_bytes``) is read and dropped first, keeping the
    connection usable; a client that sent ``Expect: 100-continue`` gets the 413 before it
    sends anything. Not FastAPI's own ``max_body_size``: as of FastAPI 0.165 it answers a
    Content-Length over the limit with a plain-text 413, and this API answers JSON.
    """

    def __init__(self, app, max_bytes: int, discard_bytes: int):
        self.app, self.max_bytes, self.discard_bytes = app, max_bytes, discard_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                return await send_json(send, 400, "Content-Length is not a number", close=True)
            if size > self.max_bytes:
                if headers.get(b"expect", b"").lower() == b"100-continue" or size > self.discard_bytes:
                    return await send_json(send, 413, self._too_large(), close=True)
                return await self._refuse(receive, send, 0)
        received, started, more = 0, False, True

        async def counting_receive():
            nonlocal received, more
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                more = message.get("more_body", False)
                if received > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def watching_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(receive, send, received, more)

    async def _refuse(self, receive, send, received: int, more: bool = True) -> None:
        """Read and drop the rest of the body (up to discard_bytes), then the 413."""
        while more and received <= self.discard_bytes:
            message = await receive()
            if message["type"] != "http.request":  # the client left: nobody to answer
                return
            received += len(message.get("body", b""))
            more = message.get("more_body", False)
        await send_json(send, 413, self._too_large(), close=more)  # all read: the connection lives

    def _too_large(self) -> str:
        return f"request body is larger than {self.max_bytes // 2**20} MB"


class DecodePool:
    """Runs image decodes off the event loop, a bounded number at a time, in two lanes.

    Each decode holds an image in memory and a core busy; bounding how many run at once
    bounds both, and keeps the event loop (which answers /healthz and runs the model) free.
    Decodes of more than ``light_pixels`` (known from the image header) take one of
    ``workers`` threads; smaller ones have a thread of their own, so that a photo of a
    digit does not wait behind a 4096x4096 upload. At most ``queue`` wait in each lane;
    the next get a 503. Nothing here runs on the event loop, not even the header.
    """

    def __init__(self, workers: int, queue: int, light_pixels: int):
        self.queue, self.light_pixels = queue, light_pixels
        self.threads = {"heavy": workers, "light": 1}
        self._lanes = {lane: ThreadPoolExecutor(n, thread_name_prefix=f"lenet5-decode-{lane}")
                       for lane, n in self.threads.items()}
        self._pending = {"heavy": 0, "light": 0}  # running or waiting; on the event loop only
        self._running = {"heavy": 0, "light": 0}  # changed by the pool's threads, under the lock
        self._lock = threading.Lock()
        self.busiest = {"heavy": 0, "light": 0}  # the most ever running at once (for tests)

    async def run(self, fn: Callable[..., T], *args, pixels: Callable[[], int] | None = None) -> T:
        """``fn(*args)`` on a decode thread. ``pixels()``, run first on the light lane's
        thread (reading an image header can take a while too), says which lane."""
        lane = "light"
        if pixels is not None and await self._on("light", pixels, bounded=False) > self.light_pixels:
            lane = "heavy"  # (headers are not held to the queue bound: the connection cap is theirs)
        return await self._on(lane, fn, *args)

    async def _on(self, lane: str, fn: Callable[..., T], *args, bounded: bool = True) -> T:
        if bounded and self._pending[lane] >= self.threads[lane] + self.queue:
            raise Busy(f"{self._pending[lane] - self.threads[lane]} uploads are waiting to be "
                       "decoded; try again shortly")
        self._pending[lane] += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._lanes[lane], self._counted, lane, fn, *args)
        finally:
            self._pending[lane] -= 1

    def _counted(self, lane: str, fn, *args):
        with self._lock:
            self._running[lane] += 1
            self.busiest[lane] = max(self.busiest[lane], self._running[lane])
        try:
            return fn(*args)
        finally:
            with self._lock:
                self._running[lane] -= 1

    def close(self) -> None:
        for pool in self._lanes.values():
            pool.shutdown(wait=False, cancel_futures=True)
