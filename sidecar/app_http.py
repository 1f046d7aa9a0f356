"""The HTTP/1.1 keep-alive connections behind `AppChannel`: asyncio protocols with httptools' parser.

Every actor call, reminder, timer and pub/sub delivery is one request from the sidecar to the app, and
aiohttp's client spent more CPU on each (URL objects, header multidicts, a payload writer, a response
object and its reader) than the rest of the sidecar's work on an actor call: ~12% of the sidecar's loop
under load, profiled. Here a request is one formatted write and a parser callback per piece of the reply.
Errors keep aiohttp's classes (`ClientConnectionError`, `ServerDisconnectedError`), which every caller
already handles, and `TimeoutError`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

import aiohttp
import httptools

__all__ = ["AppHttp", "RawResponse"]

log = logging.getLogger("sidecar.app_http")

RawResponse = tuple[int, dict[str, str], bytes]

_OWN_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})  # set here


class _Stale(Exception):
    """A kept-alive connection the app had closed: the request never reached it, so it can be sent again."""


class _Connection(asyncio.Protocol):
    """One connection, one request at a time; reused while both sides keep it alive."""

    def __init__(self) -> None:
        self.transport: asyncio.BaseTransport | None = None
        self.reusable = False
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[RawResponse] | None = None
        self._received = False
        self._status = 0
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._framed = False  # the reply says where it ends (Content-Length or chunked)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._received = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(aiohttp.ClientPayloadError(f"invalid HTTP response from the app: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if not self._received:
            waiter.set_exception(_Stale())
        elif self._status and not self._framed:
            waiter.set_result((self._status, self._headers, b"".join(self._body)))  # ended by close
        else:
            waiter.set_exception(aiohttp.ServerDisconnectedError("the app closed the connection mid-reply"))

    def exchange(self, request: bytes) -> asyncio.Future[RawResponse]:
        assert self.transport is not None
        self._waiter = asyncio.get_running_loop().create_future()
        self._received, self._status, self._headers, self._body = False, 0, {}, []
        self._framed = False
        self.reusable = False
        self.transport.write(request)  # type: ignore[attr-defined]
        return self._waiter

    def close(self) -> None:
        self.reusable = False
        if self.transport is not None:
            self.transport.close()

    def _fail(self, exc: Exception) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc)
        self.close()

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1")
        if key.lower() in ("content-length", "transfer-encoding"):
            self._framed = True
        self._headers[key] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()
        if self._status in (204, 304) or 100 <= self._status < 200:
            self._framed = True

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        self.reusable = self._parser.should_keep_alive()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result((self._status, self._headers, b"".join(self._body)))
        if not self.reusable:
            self.close()


class AppHttp:
    """Keep-alive connections to `host:port`: idle ones reused newest first, at most `max_connections`."""

    def __init__(self, host: str, port: int, *, max_connections: int = 256) -> None:
        self.host = host
        self.port = port
        self._host_header = f"Host: {host}:{port}\r\n".encode("latin-1")
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(max_connections)
        self._closed = False

    async def request(
        self, method: str, path: str, body: bytes, headers: Mapping[str, str], timeout: float
    ) -> RawResponse:
        head = [f"{method} {path} HTTP/1.1\r\n".encode("latin-1"), self._host_header]
        for name, value in headers.items():
            if name.lower() in _OWN_HEADERS:
                continue
            if "\r" in name or "\n" in name or "\r" in value or "\n" in value:
                raise ValueError(f"invalid header {name!r}")
            head.append(f"{name}: {value}\r\n".encode("latin-1"))
        head.append(f"Content-Length: {len(body)}\r\n\r\n".encode("latin-1"))
        request = b"".join(head) + body
        async with self._slots, asyncio.timeout(timeout):
            conn = self._take_idle()
            if conn is not None:
                try:
                    return await self._exchange(conn, request)
                except _Stale:
                    log.debug("a kept-alive connection to the app was closed; sending again")
            conn = await self._connect()
            try:
                return await self._exchange(conn, request)
            except _Stale:
                raise aiohttp.ServerDisconnectedError(
                    "the app closed the connection before replying"
                ) from None

    def _take_idle(self) -> _Connection | None:
        while self._idle:
            conn = self._idle.pop()
            if conn.reusable:  # not closed by the app while idle
                return conn
        return None

    async def _exchange(self, conn: _Connection, request: bytes) -> RawResponse:
        try:
            reply = await conn.exchange(request)
        except BaseException:
            conn.close()
            raise
        if conn.reusable and not self._closed:
            self._idle.append(conn)
        else:
            conn.close()
        return reply

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(_Connection, self.host, self.port)
        except OSError as exc:
            where = f"{self.host}:{self.port}"
            raise aiohttp.ClientConnectionError(f"cannot connect to the app at {where}: {exc}") from exc
        return conn

    def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
