"""`HttpPool`: HTTP/1.1 keep-alive connections to one host, on asyncio protocols with httptools' parser.

Every list write makes five calls to the sidecar (the actor call, the state transaction, the publish and
the feed's two), every read one. Through aiohttp's `ClientSession` each cost ~100 µs of the app's CPU
before any bytes moved (URL objects, header multidicts, tracing hooks, timers): a quarter of the app's
CPU on writes, profiled. Requests here are one formatted header block and one write; responses are
parsed by the same C parser uvicorn uses. Errors are aiohttp's (`ClientConnectionError`,
`ServerDisconnectedError`), which the callers already map.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping
from typing import cast

import aiohttp
import httptools

__all__ = ["HttpPool", "HttpResponse"]


class HttpResponse:
    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers  # lower-case names; a repeated header keeps its last value
        self.body = body


class _Connection(asyncio.Protocol):
    """One connection; at most one request in flight (no pipelining)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.used = False  # has carried a request before: the server may have closed it since
        self._waiter: asyncio.Future[HttpResponse] | None = None
        self._headers: dict[str, str] = {}
        self._chunks: list[bytes] = []
        self._got_bytes = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A TCP transport (uvloop's is not an `asyncio.Transport` subclass, but has the same methods).
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._got_bytes = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(aiohttp.ClientPayloadError(f"malformed response from the server: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(aiohttp.ServerDisconnectedError(f"the server closed the connection ({exc or 'EOF'})"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)

    def on_message_complete(self) -> None:
        waiter, self._waiter = self._waiter, None
        response = HttpResponse(self.parser.get_status_code(), self._headers, b"".join(self._chunks))
        if not self.parser.should_keep_alive():
            self.close()
        if waiter is not None and not waiter.done():
            waiter.set_result(response)

    # the pool's side
    def send(self, data: bytes) -> asyncio.Future[HttpResponse]:
        assert self.transport is not None and self._waiter is None
        self._headers, self._chunks, self._got_bytes = {}, [], False
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self._waiter

    @property
    def answered_nothing(self) -> bool:
        return not self._got_bytes

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _fail(self, exc: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)


class HttpPool:
    """Requests to `host:port` over up to `max_connections` kept-alive connections, on the running loop
    (make one pool per event loop)."""

    def __init__(self, host: str, port: int, *, max_connections: int = 256, timeout_seconds: float = 60.0):
        self._host, self._port = host, port
        self._host_header = f"Host: {host}:{port}\r\n".encode("latin-1")
        self._idle: deque[_Connection] = deque()
        self._slots = asyncio.Semaphore(max_connections)
        self._timeout = timeout_seconds
        self.closed = False

    async def request(
        self, method: str, target: str, body: bytes | None, headers: Mapping[str, str]
    ) -> HttpResponse:
        """Send one request (`target`: path and query, already encoded) and read the whole response."""
        head = [f"{method} {target} HTTP/1.1\r\n".encode("latin-1"), self._host_header]
        head.extend(f"{k}: {v}\r\n".encode("latin-1") for k, v in headers.items())
        head.append(f"Content-Length: {len(body) if body else 0}\r\n\r\n".encode("latin-1"))
        data = b"".join(head) + (body or b"")
        async with self._slots:
            try:
                async with asyncio.timeout(self._timeout):
                    return await self._exchange(data)
            except TimeoutError:
                raise aiohttp.ServerTimeoutError(f"no response within {self._timeout:g} s") from None

    async def _exchange(self, data: bytes) -> HttpResponse:
        while True:
            conn = await self._connection()
            reused = conn.used
            conn.used = True
            try:
                response = await conn.send(data)
            except aiohttp.ServerDisconnectedError:
                conn.close()
                if reused and conn.answered_nothing:
                    # The server closed a kept-alive connection before reading this request (an idle
                    # timeout): nothing was processed, so it is safe to send it again on a new one.
                    continue
                raise
            except BaseException:
                conn.close()  # cancelled or timed out mid-exchange: the connection's state is unknown
                raise
            if not conn.closed:
                self._idle.append(conn)
            return response

    async def _connection(self) -> _Connection:
        while self._idle:
            conn = self._idle.pop()  # the most recently used: least likely to have been timed out
            if not conn.closed and conn.transport is not None and not conn.transport.is_closing():
                return conn
        if self.closed:
            raise aiohttp.ClientConnectionError("the connection pool is closed")
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(_Connection, self._host, self._port)
        except OSError as exc:
            where = f"{self._host}:{self._port}"
            raise aiohttp.ClientConnectionError(f"cannot connect to {where}: {exc}") from exc
        return conn

    async def close(self) -> None:
        self.closed = True
        while self._idle:
            self._idle.pop().close()
