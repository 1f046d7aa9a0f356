"""`HttpPool` against a real TCP server that answers as scripted: keep-alive reuse, chunked bodies, a
kept-alive connection the server closed (sent again once), `Connection: close`, a response cut short
(not sent again), a refused connection and a timeout, each with the error its callers map."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import aiohttp
import pytest

from todo_actors.http_pool import HttpPool

Script = Callable[[int, bytes], bytes | None]
"""(request number, raw request) -> raw response to write, or None to close without answering."""


@dataclass
class ScriptedServer:
    script: Script
    requests: list[bytes] = field(default_factory=list)
    connections: int = 0
    port: int = 0
    close_after_response: bool = False
    server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":", 1)[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                raw = head + await reader.readexactly(length)
                self.requests.append(raw)
                answer = self.script(len(self.requests), raw)
                if answer is None:
                    break
                writer.write(answer)
                await writer.drain()
                if self.close_after_response:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def ok(body: bytes = b"{}", extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Script], ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def start(script: Script) -> ScriptedServer:
        s = ScriptedServer(script)
        servers.append(s)
        return s

    yield start
    for s in servers:
        if s.server is not None:
            s.server.close()
            await s.server.wait_closed()


async def listen(s: ScriptedServer) -> ScriptedServer:
    s.server = await asyncio.start_server(s.handle, "127.0.0.1", 0)
    s.port = s.server.sockets[0].getsockname()[1]
    return s


async def test_reuses_one_connection_and_reads_chunked_bodies(
    serve: Callable[[Script], ScriptedServer],
) -> None:
    chunked = (
        b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\nETag: 7\r\n\r\n"
        b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    )
    s = await listen(serve(lambda n, raw: chunked if n % 2 else ok(b'{"n":%d}' % n)))
    pool = HttpPool("127.0.0.1", s.port)
    first = await pool.request("POST", "/v1.0/x?a=1", b'{"k":1}', {"X-Test": "yes"})
    assert (first.status, first.body, first.headers["etag"]) == (201, b"abcde", "7")
    second = await pool.request("GET", "/v1.0/y", None, {})
    assert (second.status, second.body) == (200, b'{"n":2}')
    assert s.connections == 1
    assert s.requests[0].startswith(b"POST /v1.0/x?a=1 HTTP/1.1\r\n")
    assert b"X-Test: yes\r\n" in s.requests[0] and s.requests[0].endswith(b'\r\n\r\n{"k":1}')
    assert b"Content-Length: 0\r\n" in s.requests[1]
    await pool.close()


async def test_a_kept_alive_connection_closed_by_the_server_is_replaced(
    serve: Callable[[Script], ScriptedServer],
) -> None:
    s = await listen(serve(lambda n, raw: ok()))
    s.close_after_response = True  # like an idle timeout right after each answer
    pool = HttpPool("127.0.0.1", s.port)
    for _ in range(3):
        assert (await pool.request("POST", "/p", b"{}", {})).status == 200
    assert len(s.requests) == 3 and s.connections == 3


async def test_connection_close_is_honoured(serve: Callable[[Script], ScriptedServer]) -> None:
    s = await listen(serve(lambda n, raw: ok(extra=b"Connection: close\r\n")))
    pool = HttpPool("127.0.0.1", s.port)
    for _ in range(2):
        assert (await pool.request("GET", "/p", None, {})).status == 200
    assert s.connections == 2


async def test_a_response_cut_short_is_an_error_and_not_sent_again(
    serve: Callable[[Script], ScriptedServer],
) -> None:
    s = await listen(
        serve(lambda n, raw: b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc" if n > 1 else ok())
    )
    s.close_after_response = True
    pool = HttpPool("127.0.0.1", s.port)
    await pool.request("GET", "/warm", None, {})
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await pool.request("POST", "/once", b"{}", {})
    assert [r.split(b" ")[1] for r in s.requests] == [b"/warm", b"/once"]


async def test_no_answer_on_a_new_connection_is_not_retried(
    serve: Callable[[Script], ScriptedServer],
) -> None:
    s = await listen(serve(lambda n, raw: None))
    pool = HttpPool("127.0.0.1", s.port)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await pool.request("POST", "/p", b"{}", {})
    assert len(s.requests) == 1


async def test_refused_and_timed_out(serve: Callable[[Script], ScriptedServer]) -> None:
    s = await listen(serve(lambda n, raw: ok()))
    port = s.port
    assert s.server is not None
    s.server.close()
    await s.server.wait_closed()
    with pytest.raises(aiohttp.ClientConnectionError):
        await HttpPool("127.0.0.1", port).request("GET", "/", None, {})

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    quiet = await asyncio.start_server(silent, "127.0.0.1", 0)
    try:
        pool = HttpPool("127.0.0.1", quiet.sockets[0].getsockname()[1], timeout_seconds=0.2)
        with pytest.raises(aiohttp.ServerTimeoutError):
            await pool.request("GET", "/", None, {})
        with pytest.raises(TimeoutError):  # callers that only know TimeoutError see it too
            await pool.request("GET", "/", None, {})
    finally:
        quiet.close()
        await pool.close()


def test_on_uvloop_too() -> None:
    """The app serves on uvloop, whose transports are not `asyncio.Transport` subclasses."""
    import uvloop

    async def main() -> tuple[int, int]:
        s = await listen(ScriptedServer(lambda n, raw: ok(b"[%d]" % n)))
        pool = HttpPool("127.0.0.1", s.port)
        try:
            bodies = [(await pool.request("GET", "/", None, {})).body for _ in range(3)]
            assert bodies == [b"[1]", b"[2]", b"[3]"]
            return len(s.requests), s.connections
        finally:
            await pool.close()
            assert s.server is not None
            s.server.close()

    assert uvloop.run(main()) == (3, 1)
