"""Connection limits of the served apps: request headers over a size are refused with 431, headers that do
not arrive within a time and request bodies that stop arriving close the connection.

uvicorn has none of these with httptools (its h11 option only bounds header size, with a bare 400), so
they live here, in a subclass of its httptools protocol: the narrowest place that sees the bytes before
any ASGI code runs. `uvicorn_options(limits)` is what `api.process.serve` passes to each `uvicorn.Config`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from pydantic_core import to_json
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from api.process.settings import Settings

__all__ = ["ServerLimits", "server_limits", "uvicorn_options"]

log = logging.getLogger("api.limits")

# How long a refused connection's further bytes are read and dropped before it closes.
_LINGER_SECONDS = 2.0


@dataclass(frozen=True)
class ServerLimits:
    max_header_bytes: int
    header_timeout: float
    body_idle_timeout: float


def server_limits(settings: Settings) -> ServerLimits:
    return ServerLimits(
        max_header_bytes=settings.max_header_bytes,
        header_timeout=settings.header_timeout_seconds,
        body_idle_timeout=settings.body_idle_timeout_seconds,
    )


def uvicorn_options(limits: ServerLimits) -> dict[str, Any]:
    """`uvicorn.Config` keyword arguments enforcing `limits` (the httptools protocol, limits bound)."""

    class Protocol(_GuardedProtocol):
        pass

    Protocol.limits = limits
    Protocol.watch = _Watch(limits)
    return {"http": Protocol, "h11_max_incomplete_event_size": limits.max_header_bytes}


class _HeadersTooLarge(Exception):
    pass


class _Watch:
    """The deadlines of one server's connections, checked by one sweep every `interval` while any is open.

    A request costs no timer of its own: a connection only stamps a deadline when its headers or body stay
    incomplete after a chunk (rare), and the sweep closes what is past due, at most `interval` late.
    """

    def __init__(self, limits: ServerLimits) -> None:
        self.interval = min(max(min(limits.header_timeout, limits.body_idle_timeout) / 4, 0.05), 1.0)
        self.connections: set[_GuardedProtocol] = set()
        self._sweep: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def add(self, conn: _GuardedProtocol) -> None:
        self.connections.add(conn)
        # A server served again on a new loop (a restart) must not wait on the old loop's sweep.
        if self._sweep is None or self._loop is not conn.loop:
            self._loop = conn.loop
            self._sweep = conn.loop.call_later(self.interval, self._run, conn.loop)

    def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        if loop is not self._loop:
            return  # superseded by a sweep on the loop now serving
        now = loop.time()
        for conn in list(self.connections):
            if conn.loop is loop:
                conn.check_deadlines(now)
        self._sweep = loop.call_later(self.interval, self._run, loop) if self.connections else None


class _GuardedProtocol(HttpToolsProtocol):
    limits: ServerLimits
    watch: _Watch

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._awaiting_headers = True  # until the current request's headers are complete
        self._unparsed_bytes = 0  # received while its headers were incomplete
        self._too_large = False
        self._completed = False  # a message completed in the chunk being parsed
        self._body_pending = False
        self._header_deadline: float | None = None  # loop time by which the headers must be complete
        self._body_deadline: float | None = None  # loop time by which more body must have arrived

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # A connection that never sends a byte is held by nothing else (keep-alive starts after a response).
        self._header_deadline = self.loop.time() + self.limits.header_timeout
        self.watch.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.watch.connections.discard(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._too_large:
            return  # refused: dropped while lingering
        self._completed = False
        super().data_received(data)
        if self._awaiting_headers:
            if self._too_large or self.parser is None:
                return
            # llhttp holds an incomplete header block in memory: bound what it may hold. A chunk that
            # ended a message (its body included) says nothing about the next request's headers.
            self._unparsed_bytes = 0 if self._completed else self._unparsed_bytes + len(data)
            if self._unparsed_bytes > self.limits.max_header_bytes:
                self._refuse_headers()
            elif self._unparsed_bytes and self._header_deadline is None:
                # Timed from the first byte of headers still incomplete after this chunk.
                self._header_deadline = self.loop.time() + self.limits.header_timeout
        elif self._body_pending:
            self._body_deadline = self.loop.time() + self.limits.body_idle_timeout

    def on_headers_complete(self) -> None:
        # The request line and header fields as parsed, counted once they are all in.
        size = len(self.url)
        for name, value in self.headers:
            size += len(name) + len(value) + 4
        if size > self.limits.max_header_bytes:
            self._too_large = True
            raise _HeadersTooLarge  # the parser stops; `send_400_response` answers 431
        self._awaiting_headers = False
        self._header_deadline = None
        self._body_pending = True  # until on_message_complete (a body-less request: in this same chunk)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._completed = True
        self._body_pending = False
        self._awaiting_headers = True  # the next request's, timed from its first byte
        self._unparsed_bytes = 0
        self._body_deadline = None
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        if self._too_large:  # the parser stopped on our callback's exception
            self._send_431()
        else:
            super().send_400_response(msg)

    def check_deadlines(self, now: float) -> None:
        """Close the connection if its headers are late or its body stopped arriving (`_Watch`'s sweep)."""
        if self._too_large or self.transport.is_closing():
            return
        header_deadline, body_deadline = self._header_deadline, self._body_deadline
        if header_deadline is not None and now >= header_deadline:
            self._header_deadline = None
            busy = self.cycle is not None and not self.cycle.response_complete
            if self._awaiting_headers and not busy:
                log.info(
                    "closing %s: headers not complete within %.1f s", self.client, self.limits.header_timeout
                )
                self.transport.close()
        elif body_deadline is not None and now >= body_deadline and self._body_pending:
            if self.flow.read_paused:  # the app is not reading: the wait is ours, not the client's
                self._body_deadline = now + self.limits.body_idle_timeout
                return
            idle = self.limits.body_idle_timeout
            log.info("closing %s: no request body bytes for %.1f s", self.client, idle)
            self.transport.close()

    def _refuse_headers(self) -> None:
        self._too_large = True
        self._send_431()

    def _send_431(self) -> None:
        self._header_deadline = self._body_deadline = None
        log.warning("request headers from %s over %d bytes: 431", self.client, self.limits.max_header_bytes)
        if self.cycle is not None and not self.cycle.response_complete:
            self.transport.close()  # a response is under way on this connection: no room for another
            return
        body = to_json(
            {
                "type": "/problems/header-fields-too-large",
                "title": "Request header fields too large",
                "status": 431,
                "detail": f"the request line and headers exceed {self.limits.max_header_bytes} bytes",
            }
        )
        head = (
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: application/problem+json\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n"
        )
        self.transport.write(head + body)
        # Lingering close: stop sending, drop what the client still sends for a moment, then close. Closing
        # with unread bytes would reset the connection, and a client could lose the 431 before reading it.
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.loop.call_later(_LINGER_SECONDS, self.transport.close)
        else:
            self.transport.close()
