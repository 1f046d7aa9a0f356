"""`Http1Client`: the one HTTP/1.1 keep-alive client of both wires, the app calling its sidecar's HTTP API
and the sidecar calling the app channel; each side makes its own and injects it into its callers.

Hand-written on asyncio protocols with httptools' parser (the C parser uvicorn uses) because every list
write makes five calls on these wires and every read one: per request it costs about a third of aiohttp's
`ClientSession` (URL objects, header multidicts, tracing hooks, a timer per request) and a fifteenth of
httpx (`bench/http_clients.py`; figures in bench/README.md). A leaf of `sidecar/` (standard library and
httptools only): the app beside real daprd loads no sidecar engine.

One retry rule: a request sent on a kept-alive connection that the peer had closed before answering (no
byte of a reply came back) is sent once more on a new connection; nothing else is sent twice. One error
mapping: every failure is a `WireError` (an `OSError`): `Unreachable` and `Disconnected` are
`ConnectionError`s, `ReplyTimeout` a `TimeoutError`, `MalformedReply` neither.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Mapping

import httptools

__all__ = [
    "CLIENT_TIMEOUT",
    "Disconnected",
    "Http1Client",
    "MalformedReply",
    "ReplyTimeout",
    "Response",
    "Unreachable",
    "WireError",
]


class WireError(OSError):
    """The peer could not be reached or did not answer with a whole HTTP response."""


class Unreachable(WireError, ConnectionError):
    """No connection could be made (refused, no route, connect timeout) or the client is closed."""


class Disconnected(WireError, ConnectionError):
    """The peer closed the connection before its reply was complete."""


class ReplyTimeout(WireError, TimeoutError):
    """No whole reply within the request's timeout."""


class MalformedReply(WireError):
    """The bytes that came back are not an HTTP/1.1 response."""


class Response:
    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers  # lower-case names; a repeated header keeps its last value
        self.body = body


class _Stale(Exception):
    """The peer closed a connection before any byte of the reply: the request may be sent again."""


# Framing headers are the client's own; a caller's would contradict the body it sends.
_OWN_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
CLIENT_TIMEOUT: float = -1.0
"""`timeout=` of a request that takes the client's own."""
SWEEP_SECONDS = 0.05
"""How late past its timeout a request may end (see `_Pool`)."""


class _Connection(asyncio.Protocol):
    """One connection, one request at a time (no pipelining); reused while both sides keep it alive."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.reusable = False
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[Response] | None = None
        self._received = False
        self._status = 0
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._framed = False  # the reply says where it ends (Content-Length, chunked, or no body)

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCP transport is not an `asyncio.Transport` subclass but has its methods.
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._received = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(MalformedReply(f"not an HTTP/1.1 response: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        if not self._received:
            self._fail(_Stale())
        elif self._status and not self._framed:  # a reply that ends when the connection does
            self._finish(Response(self._status, self._headers, b"".join(self._body)))
        else:
            self._fail(Disconnected(f"the peer closed the connection mid-reply ({exc or 'EOF'})"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        if key in ("content-length", "transfer-encoding"):
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
        self._finish(Response(self._status, self._headers, b"".join(self._body)))
        if not self.reusable:
            self.close()

    # the pool's side
    def exchange(self, request: bytes) -> asyncio.Future[Response]:
        assert self.transport is not None and self._waiter is None
        self._waiter = asyncio.get_running_loop().create_future()
        self._received, self._status, self._headers, self._body = False, 0, {}, []
        self._framed = self.reusable = False
        self.transport.write(request)
        return self._waiter

    def close(self) -> None:
        self.reusable = False
        if self.transport is not None:
            self.transport.close()

    def _finish(self, response: Response) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(response)

    def _fail(self, exc: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)


class _Pool:
    """The connections of one event loop: idle ones reused newest first (least likely timed out), and the
    deadlines of the requests in flight.

    Deadlines are swept every `SWEEP_SECONDS` while any is pending, instead of one timer per request
    (`asyncio.timeout` cost each request about as much as parsing its reply): a request times out at most
    that much after its bound.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, max_connections: int) -> None:
        self.loop = weakref.ref(loop)  # weak: the client's WeakKeyDictionary holds pools by loop
        self.idle: list[_Connection] = []
        self.slots = asyncio.Semaphore(max_connections)
        self.closed = False
        self.deadlines: dict[asyncio.Task[object], float] = {}
        self.expired: set[asyncio.Task[object]] = set()
        self._sweep: asyncio.TimerHandle | None = None

    def take_idle(self) -> _Connection | None:
        while self.idle:
            conn = self.idle.pop()
            if conn.reusable:  # not closed by the peer while idle
                return conn
        return None

    def watch(self, task: asyncio.Task[object], timeout: float) -> None:
        loop = asyncio.get_running_loop()
        self.deadlines[task] = loop.time() + timeout
        if self._sweep is None:
            self._sweep = loop.call_at(loop.time() + SWEEP_SECONDS, self._expire)

    def _expire(self) -> None:
        """Cancel the requests past their deadline (`request` turns that into `ReplyTimeout`)."""
        self._sweep = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        for task, deadline in self.deadlines.items():
            if deadline <= now and task not in self.expired:
                self.expired.add(task)
                task.cancel()
        if self.deadlines and not self.closed:
            self._sweep = loop.call_at(now + SWEEP_SECONDS, self._expire)

    def close(self) -> None:
        self.closed = True
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        idle, self.idle = self.idle, []
        for conn in idle:
            conn.close()


def _reject_split(method: str, target: str, headers: Mapping[str, str] | None) -> None:
    """A CR or LF where it would end a line early (or the request) is refused, never sent."""
    for name, value in (headers or {}).items():
        if "\r" in f"{name}{value}" or "\n" in f"{name}{value}":
            raise ValueError(f"invalid header {name!r}: CR or LF in it")
    raise ValueError(f"invalid request line {method} {target!r}: CR or LF in it")


class Http1Client:
    """Requests to `host:port` over at most `max_connections` kept-alive connections per event loop.

    A connection belongs to the loop that made it, and one process may call from several loops (the
    durabletask worker's, test servers on threads), so each loop gets its own pool. `timeout` bounds a
    whole request (waiting for a connection included; None: no bound; it ends within `SWEEP_SECONDS`
    after), `connect_timeout` a new connection.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        timeout: float | None = 60.0,
        connect_timeout: float = 10.0,
        max_connections: int = 256,
    ) -> None:
        self.host, self.port = host, port
        self.timeout = timeout
        self._connect_timeout = connect_timeout
        self._max_connections = max_connections
        self._host_header = f"Host: {host}:{port}\r\n"
        self._pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Pool] = weakref.WeakKeyDictionary()
        self._recent: _Pool | None = None  # the last pool used: most clients are called from one loop

    async def request(
        self,
        method: str,
        target: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        *,
        timeout: float | None = CLIENT_TIMEOUT,
    ) -> Response:
        """Send one request (`target`: path and query, already encoded) and read the whole reply, whatever
        its status. Raises `WireError`; `ValueError` for a header that would split the request."""
        lines = [f"{method} {target} HTTP/1.1\r\n", self._host_header]
        if headers:
            lines += [f"{n}: {v}\r\n" for n, v in headers.items() if n.lower() not in _OWN_HEADERS]
        lines.append(f"Content-Length: {len(body) if body else 0}\r\n\r\n")
        head = "".join(lines)
        ends = len(lines) + 1  # one CR LF per line, one more after the last header
        if head.count("\n") != ends or head.count("\r") != ends:
            _reject_split(method, target, headers)
        data = head.encode("latin-1") + body if body else head.encode("latin-1")
        limit = self.timeout if timeout == CLIENT_TIMEOUT else timeout
        pool = self._pool()
        if limit is None:
            async with pool.slots:
                return await self._send(pool, data)
        task: asyncio.Task[object] = asyncio.current_task()  # type: ignore[assignment]
        cancelling = task.cancelling()
        pool.watch(task, limit)
        try:
            async with pool.slots:
                return await self._send(pool, data)
        except asyncio.CancelledError:
            # Ours (the sweep's) unless the task was cancelled from elsewhere too, as `asyncio.timeout` rules.
            if task in pool.expired and task.uncancel() <= cancelling:
                raise ReplyTimeout(f"no reply from {self.host}:{self.port} within {limit:g} s") from None
            raise
        finally:
            del pool.deadlines[task]
            pool.expired.discard(task)

    def _pool(self) -> _Pool:
        recent = self._recent
        loop = asyncio.get_running_loop()
        if recent is not None and recent.loop() is loop and not recent.closed:
            return recent
        pool = self._pools.get(loop)
        if pool is None or pool.closed:
            pool = self._pools[loop] = _Pool(loop, self._max_connections)
        self._recent = pool
        return pool

    async def _send(self, pool: _Pool, data: bytes) -> Response:
        conn = pool.take_idle()
        if conn is not None:
            try:
                return await self._exchange(pool, conn, data)
            except _Stale:
                pass  # closed by the peer while idle (its keep-alive timeout): nothing was processed
        conn = await self._connect(pool)
        try:
            return await self._exchange(pool, conn, data)
        except _Stale:
            raise Disconnected(f"{self.host}:{self.port} closed the connection before replying") from None

    async def _exchange(self, pool: _Pool, conn: _Connection, data: bytes) -> Response:
        try:
            response = await conn.exchange(data)
        except BaseException:
            conn.close()  # failed, cancelled or timed out mid-exchange: the connection's state is unknown
            raise
        if conn.reusable and not pool.closed:
            pool.idle.append(conn)
        return response

    async def _connect(self, pool: _Pool) -> _Connection:
        where = f"{self.host}:{self.port}"
        if pool.closed:
            raise Unreachable(f"the client to {where} is closed")
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, conn = await loop.create_connection(_Connection, self.host, self.port)
        except TimeoutError:
            raise Unreachable(f"cannot connect to {where} within {self._connect_timeout:g} s") from None
        except OSError as exc:
            raise Unreachable(f"cannot connect to {where}: {exc}") from exc
        return conn

    async def close(self) -> None:
        """Close the pool of the running loop; pools of loops that are closed are dropped (their sockets
        went with them). A pool of another live loop is left to that loop."""
        loop = asyncio.get_running_loop()
        for owner, pool in list(self._pools.items()):
            if owner is loop:
                pool.close()
                del self._pools[owner]
            elif owner.is_closed():
                del self._pools[owner]
        if self._recent is not None and self._recent.closed:
            self._recent = None
