"""`Http1Client`, the one client of both wires, against a real TCP server that answers as scripted, on
asyncio and on uvloop (the app serves on uvloop, whose transports are not `asyncio.Transport`s):
keep-alive reuse, chunked and close-delimited bodies, a kept-alive connection the server closed (sent
again once), `Connection: close`, a reply cut short or never given (not sent again), refused, timed out,
malformed, the connection bound, and one pool per event loop; each failure in its `WireError` class."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvloop

from sidecar.wire.http1 import (
    SWEEP_SECONDS,
    Disconnected,
    Http1Client,
    MalformedReply,
    ReplyTimeout,
    Unreachable,
    WireError,
)

Script = Callable[[int, bytes], bytes | None]
"""(request number, raw request) -> raw reply to write, or None to close without answering."""

Run = Callable[[Coroutine[Any, Any, Any]], Any]


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Run:
    factory = uvloop.new_event_loop if request.param == "uvloop" else asyncio.new_event_loop

    def run(main: Coroutine[Any, Any, Any]) -> Any:
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(main)

    return run


@dataclass
class Scripted:
    script: Script
    requests: list[bytes] = field(default_factory=list)
    connections: int = 0
    open_now: int = 0
    peak: int = 0
    close_after_reply: bool = False
    server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open_now += 1
        self.peak = max(self.peak, self.open_now)
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
                if answer == b"hang":
                    await asyncio.sleep(30)
                writer.write(answer)
                await writer.drain()
                if self.close_after_reply:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open_now -= 1
            writer.close()

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def __aenter__(self) -> Scripted:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()


def ok(body: bytes = b"{}", extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


def test_reuses_one_connection_reads_chunked_bodies_and_owns_the_framing(run: Run) -> None:
    chunked = b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\nETag: 7\r\n\r\n"
    chunked += b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"

    async def main() -> None:
        async with Scripted(lambda n, raw: chunked if n % 2 else ok(b'{"n":%d}' % n)) as s:
            client = Http1Client("127.0.0.1", s.port)
            sent = {"X-Test": "yes", "Content-Length": "1", "Host": "elsewhere"}
            first = await client.request("POST", "/v1.0/x?a=1", b'{"k":1}', sent)
            assert (first.status, first.body, first.headers["etag"]) == (201, b"abcde", "7")
            second = await client.request("GET", "/v1.0/y")
            assert (second.status, second.body) == (200, b'{"n":2}')
            with pytest.raises(ValueError, match="CR or LF"):
                await client.request("GET", "/", None, {"X-Evil": "a\r\nInjected: 1"})
            with pytest.raises(ValueError, match="CR or LF"):
                await client.request("GET", "/a HTTP/1.1\r\nInjected: 1\r\nX: /")
            await client.close()
            assert s.connections == 1
            assert s.requests[0].startswith(b"POST /v1.0/x?a=1 HTTP/1.1\r\n")
            assert b"X-Test: yes\r\n" in s.requests[0] and s.requests[0].endswith(b'\r\n\r\n{"k":1}')
            assert b"Content-Length: 7\r\n" in s.requests[0] and b"Content-Length: 1" not in s.requests[0]
            assert b"Host: elsewhere" not in s.requests[0]
            assert b"Content-Length: 0\r\n" in s.requests[1] and len(s.requests) == 2

    run(main())


def test_replies_without_framing_end_with_the_connection(run: Run) -> None:
    async def main() -> None:
        async with Scripted(lambda n, raw: b"HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\nto the end") as s:
            s.close_after_reply = True
            client = Http1Client("127.0.0.1", s.port)
            reply = await client.request("GET", "/")
            assert (reply.status, reply.body, reply.headers) == (200, b"to the end", {"x-a": "1"})
            await client.close()

    run(main())


def test_a_kept_alive_connection_closed_by_the_server_is_replaced_and_sent_once_more(run: Run) -> None:
    async def main() -> None:
        async with Scripted(lambda n, raw: ok()) as s:
            s.close_after_reply = True  # like an idle timeout right after each answer
            client = Http1Client("127.0.0.1", s.port)
            for _ in range(3):
                assert (await client.request("POST", "/p", b"{}")).status == 200
                await asyncio.sleep(0)  # the close may arrive before or after the next send
            assert len(s.requests) == 3 and s.connections == 3
            await client.close()

    run(main())


def test_a_stale_connection_is_retried_once_only(run: Run) -> None:
    async def main() -> None:
        async with Scripted(lambda n, raw: ok() if n == 1 else None) as s:
            client = Http1Client("127.0.0.1", s.port)
            assert (await client.request("GET", "/warm")).status == 200
            with pytest.raises(Disconnected):  # the new connection closes without a reply too
                await client.request("POST", "/p", b"{}")
            assert len(s.requests) == 3 and s.connections == 2
            await client.close()

    run(main())


def test_connection_close_is_honoured(run: Run) -> None:
    async def main() -> None:
        async with Scripted(lambda n, raw: ok(extra=b"Connection: close\r\n")) as s:
            client = Http1Client("127.0.0.1", s.port)
            for _ in range(2):
                assert (await client.request("GET", "/p")).status == 200
            assert s.connections == 2
            await client.close()

    run(main())


def test_a_reply_cut_short_is_an_error_and_not_sent_again(run: Run) -> None:
    async def main() -> None:
        cut = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"
        async with Scripted(lambda n, raw: cut if n > 1 else ok()) as s:
            client = Http1Client("127.0.0.1", s.port)
            await client.request("GET", "/warm")
            s.close_after_reply = True
            with pytest.raises(Disconnected) as caught:
                await client.request("POST", "/once", b"{}")
            assert isinstance(caught.value, ConnectionError)
            assert [r.split(b" ")[1] for r in s.requests] == [b"/warm", b"/once"]
            await client.close()

    run(main())


def test_no_reply_on_a_new_connection_is_not_retried(run: Run) -> None:
    async def main() -> None:
        async with Scripted(lambda n, raw: None) as s:
            client = Http1Client("127.0.0.1", s.port)
            with pytest.raises(Disconnected):
                await client.request("POST", "/p", b"{}")
            assert len(s.requests) == 1
            await client.close()

    run(main())


def test_refused_timed_out_and_malformed(run: Run) -> None:
    async def main() -> None:
        async with Scripted(lambda n, raw: ok()) as s:
            port = s.port
        with pytest.raises(Unreachable) as refused:
            await Http1Client("127.0.0.1", port).request("GET", "/")
        assert isinstance(refused.value, ConnectionError)
        async with Scripted(lambda n, raw: b"hang" if n == 1 else ok()) as s:
            client = Http1Client("127.0.0.1", s.port, timeout=5)
            with pytest.raises(ReplyTimeout) as slow:
                await client.request("PUT", "/a", timeout=0.2)
            assert isinstance(slow.value, TimeoutError)  # callers that only know TimeoutError see it too
            assert (await client.request("PUT", "/a")).body == b"{}"  # on a new connection
            assert s.connections == 2
            await client.close()
        async with Scripted(lambda n, raw: b"SMTP ready\r\n\r\n") as s:
            client = Http1Client("127.0.0.1", s.port)
            with pytest.raises(MalformedReply) as bad:
                await client.request("GET", "/")
            assert isinstance(bad.value, WireError) and not isinstance(bad.value, ConnectionError)
            await client.close()

    run(main())


def test_a_timeout_ends_only_its_own_request(run: Run) -> None:
    """Deadlines are swept, not timed one by one: a request ends within the sweep interval after its bound,
    a request cancelled from outside (or by an outer timeout) sees that cancellation, not `ReplyTimeout`,
    and nothing stays watched."""

    async def main() -> None:
        async with Scripted(lambda n, raw: b"hang") as s:
            client = Http1Client("127.0.0.1", s.port, timeout=30)
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(ReplyTimeout):
                await client.request("GET", "/slow", timeout=0.3)
            assert 0.3 <= loop.time() - started < 0.3 + SWEEP_SECONDS + 0.2
            waiting = asyncio.create_task(client.request("GET", "/cancelled"))
            await asyncio.sleep(0.1)
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            with pytest.raises(TimeoutError) as outer:
                async with asyncio.timeout(0.1):
                    await client.request("GET", "/outer", timeout=5)
            assert not isinstance(outer.value, ReplyTimeout)
            assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
            assert all(not pool.deadlines and not pool.expired for pool in client._pools.values())
            await client.close()

    run(main())


def test_at_most_max_connections_are_open(run: Run) -> None:
    async def main() -> None:
        async with Scripted(lambda n, raw: ok()) as s:
            client = Http1Client("127.0.0.1", s.port, max_connections=3)
            replies = await asyncio.gather(*(client.request("PUT", "/a") for _ in range(20)))
            assert [r.body for r in replies] == [b"{}"] * 20
            assert s.peak <= 3 and len(s.requests) == 20
            await client.close()

    run(main())


def test_each_event_loop_gets_its_own_pool(run: Run) -> None:
    async def main() -> None:
        async with Scripted(lambda n, raw: ok()) as s:
            client = Http1Client("127.0.0.1", s.port)
            assert (await client.request("GET", "/")).status == 200
            done: list[int] = []

            def other_loop() -> None:
                async def call() -> None:
                    done.append((await client.request("GET", "/")).status)
                    await client.close()

                for _ in range(2):  # a loop that is gone leaves nothing a new one would reuse
                    asyncio.run(call())

            thread = threading.Thread(target=other_loop)
            thread.start()
            await asyncio.to_thread(thread.join)
            assert done == [200, 200]
            assert (await client.request("GET", "/")).status == 200  # this loop's pool survived
            assert s.connections == 3
            await client.close()

    run(main())
