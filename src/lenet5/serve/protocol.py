"""The HTTP connection of ``lenet5 serve``: uvicorn's httptools protocol with the bounds
uvicorn lacks.

uvicorn (0.54) times out only idle keep-alive connections, and any byte received resets
that timer: a client trickling a request, or holding half of one, keeps its connection
forever (uvicorn's own issue #157 lists the missing ``--timeout-request-start`` and
``--timeout-request-complete``). An ASGI middleware cannot help, since the app is only
called once the headers are in. So this subclass adds, per connection:

- a deadline for the request line and headers (``header_timeout``, counted from the
  connection or the first byte of the next request) and a byte cap on them
  (``max_header_bytes``; httptools has none);
- a deadline for the body (``body_timeout``, from the end of the headers);
- a cap on open connections (``max_connections``): the next one gets a 503 and is closed.

A request that misses its deadline gets a JSON 408 and the connection is closed; an idle
connection is closed without a word, as a keep-alive timeout would. uvicorn's own
plain-text 400 for unparsable requests is answered in JSON too.
"""

from __future__ import annotations

import asyncio
import logging

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .limits import Limits, json_response_bytes

log = logging.getLogger("lenet5.serve")


class _Quieter(logging.Filter):
    """uvicorn logs a WARNING for every unparsable request: a line per junk request, which a
    client can send by the thousand. The 400 is logged at INFO here instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != "Invalid HTTP request received."


def guarded_protocol(limits: Limits) -> type[HttpToolsProtocol]:
    """The protocol class to give uvicorn (``Config(http=...)``), bound to ``limits``."""
    uvicorn_log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _Quieter) for f in uvicorn_log.filters):
        uvicorn_log.addFilter(_Quieter())
    return type("GuardedHttpToolsProtocol", (GuardedProtocol,), {"limits": limits, "refused": 0})


class GuardedProtocol(HttpToolsProtocol):
    limits: Limits
    refused, warned = 0, float("-inf")  # connections refused at the cap; last warning (loop time)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._due: float | None = None  # loop time the current phase must end by
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._grace = False  # the deadline has passed once; it expires on the next look
        self._phase = "idle"  # "idle" between requests, then "headers", then "body"
        self._header_bytes, self._tail = 0, b""  # of the headers being received
        self._refused = False

    # -- connection ------------------------------------------------------------------
    def connection_made(self, transport) -> None:
        if len(self.connections) >= self.limits.max_connections:
            self._refused = True
            cls = type(self)
            cls.refused += 1
            if self.loop.time() - cls.warned > 60:  # one line a minute, not one per connection
                log.warning("at --max-connections (%d): %d connections refused since start",
                            self.limits.max_connections, cls.refused)
                cls.warned = self.loop.time()
            transport.write(json_response_bytes(
                503, f"the server has {len(self.connections)} connections open, the most it "
                     "takes; try again shortly"))
            transport.close()
            return
        super().connection_made(transport)
        self._arm(self.limits.header_timeout)

    def connection_lost(self, exc) -> None:
        self._disarm()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._refused:
            super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused or self.parser is None:
            return
        if self._phase == "idle" and self._due is None and (
                self.cycle is None or self.cycle.response_complete):
            self._arm(self.limits.header_timeout)  # the first bytes of the next request
        if self._phase != "body":  # refuse headers over the cap before parsing them
            room = self.limits.max_header_bytes - self._header_bytes
            if len(data) > room and b"\r\n\r\n" not in self._tail + data[:max(room, 0)]:
                self._answer_and_close(431, f"request line and headers are larger than "
                                            f"{self.limits.max_header_bytes // 1024} KB")
                return
            self._header_bytes += len(data)
            self._tail = data[-3:]  # the end of the headers may straddle two reads
        super().data_received(data)

    # -- parser callbacks --------------------------------------------------------------
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._phase = "headers"

    def on_headers_complete(self) -> None:
        self._phase, self._header_bytes, self._tail = "body", 0, b""
        self._arm(self.limits.body_timeout)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._phase = "idle"
        self._disarm()

    def send_400_response(self, msg: str) -> None:
        log.info("%s: not a valid HTTP request; connection closed", self._peer())
        self._answer_and_close(400, "not a valid HTTP request")

    # -- deadlines ---------------------------------------------------------------------
    def _arm(self, seconds: float) -> None:
        """Set the deadline. One timer per connection, moved only when the deadline comes
        sooner: most requests then cost no timer call at all."""
        self._due, self._grace = self.loop.time() + seconds, False
        if self._timer is not None and self._timer_at <= self._due:
            return  # it fires first, sees the later deadline, and waits again
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._timer_at = self.loop.call_at(self._due, self._tick), self._due

    def _disarm(self) -> None:
        self._due = None  # a pending timer will find nothing due

    def _tick(self) -> None:
        self._timer = None
        if self._due is None:
            return
        if self.loop.time() < self._due:
            self._timer, self._timer_at = self.loop.call_at(self._due, self._tick), self._due
            return
        if not self._grace:  # libuv runs due timers before it reads: after a stall, let one
            self._grace = True  # read come first (a timer, to pass a poll), not to time out
            self._timer = self.loop.call_later(0.01, self._tick)  # bytes that are already here
            self._timer_at = self.loop.time() + 0.01
            return
        self._due = None
        self._expired()

    def _expired(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        if self._phase == "idle":  # nothing asked: close as a keep-alive timeout does
            self.transport.close()
            return
        what = "headers" if self._phase == "headers" else "body"
        seconds = self.limits.header_timeout if what == "headers" else self.limits.body_timeout
        log.info("%s: request %s not received within %g s; connection closed",
                 self._peer(), what, seconds)
        self._answer_and_close(408, f"the request's {what} did not arrive within {seconds:g} s")

    def _answer_and_close(self, status: int, detail: str) -> None:
        """Answer the request being received (unless its answer has begun), then close."""
        self._disarm()
        if self.transport.is_closing():
            return
        cycle = self.cycle  # in the body phase, this request's; before, an earlier one's
        active = cycle is not None and not cycle.response_complete
        if self._phase == "body":
            answer = not cycle.response_started  # not twice, not into an answer under way
        else:
            answer = not active  # an earlier request is still being answered: just close
        if active:
            cycle.disconnected = True  # the app's own answer, if it ever comes, is dropped
            cycle.message_event.set()  # and its receive() returns http.disconnect
        if answer:
            self.transport.write(json_response_bytes(status, detail))
        self._phase = "idle"
        self.transport.close()

    def _peer(self) -> str:
        return f"{self.client[0]}:{self.client[1]}" if self.client else "client"
