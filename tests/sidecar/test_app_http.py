"""The sidecar's client to the app (`AppChannel` over `sidecar.app_http`): replies as the app sent them,
kept-alive connections reused, a connection the app closed while idle replaced, nothing else sent twice,
and errors in the classes the callers handle."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
import uvloop
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from sidecar.appchannel import AppChannel
from tests.harness import ServedApp

peers: list[tuple[str, int]] = []


async def echo(request: Request) -> Response:
    assert request.client is not None
    peers.append((request.client.host, request.client.port))
    body = await request.body()
    headers = {"X-Method": request.method, "X-Token": request.headers.get("dapr-api-token", "")}
    headers["X-Custom"] = request.headers.get("x-custom", "")
    return Response(body, status_code=int(request.query_params.get("status", "200")), headers=headers)


async def stream(request: Request) -> StreamingResponse:
    async def chunks() -> AsyncIterator[bytes]:
        for n in range(3):
            yield f"part{n};".encode()

    return StreamingResponse(chunks(), media_type="text/plain")


async def empty(request: Request) -> Response:
    return Response(status_code=204)


@pytest.fixture(scope="module")
def app_url() -> Iterator[tuple[str, int]]:
    routes = [
        Route("/echo", echo, methods=["GET", "PUT", "POST"]),
        Route("/stream", stream),
        Route("/empty", empty),
    ]
    served = ServedApp(Starlette(routes=routes), lifespan="off").start()
    host, port = served.url.removeprefix("http://").split(":")
    yield host, int(port)
    served.stop()


async def _round_trips(host: str, port: int) -> None:
    channel = AppChannel(host, port, app_token="secret-token")
    try:
        peers.clear()
        big = bytes(range(256)) * 4096  # 1 MiB
        reply = await channel.request(
            "PUT", "/echo", body=big, headers={"X-Custom": "v", "Content-Length": "1"}
        )
        assert reply.status == 200 and reply.body == big
        assert reply.headers["x-token"] == "secret-token" and reply.headers["x-custom"] == "v"
        assert (await channel.request("POST", "/echo?status=500", body=b"x")).status == 500
        streamed = await channel.request("GET", "/stream")
        assert streamed.body == b"part0;part1;part2;" and streamed.content_type.startswith("text/plain")
        nothing = await channel.request("GET", "/empty")
        assert (nothing.status, nothing.body) == (204, b"")
        for _ in range(3):
            assert (await channel.request("GET", "/echo")).status == 200
        assert len(set(peers)) == 1  # one kept-alive connection for every sequential call
    finally:
        await channel.close()


async def test_replies_and_keep_alive(app_url: tuple[str, int]) -> None:
    await _round_trips(*app_url)


def test_replies_and_keep_alive_on_uvloop(app_url: tuple[str, int]) -> None:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_round_trips(*app_url))


class Scripted:
    """A raw TCP server answering each request per `script`: "ok", "ok-close-later" (answer, then close
    the idle connection), "cut" (half a reply, then close), "hang"."""

    def __init__(self, script: list[str]) -> None:
        self.script = script
        self.requests = 0
        self.connections = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (
                        int(h.split(b":")[1])
                        for h in head.split(b"\r\n")
                        if h.lower().startswith(b"content-length")
                    ),
                    0,
                )
                await reader.readexactly(length)
                step = self.script[min(self.requests, len(self.script) - 1)]
                self.requests += 1
                if step == "hang":
                    await asyncio.sleep(30)
                if step == "cut":
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf")
                    await writer.drain()
                    break
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
                if step == "ok-close-later":
                    await asyncio.sleep(0.05)
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def _scripted(script: list[str]) -> tuple[Scripted, asyncio.Server, AppChannel]:
    scripted = Scripted(script)
    server = await asyncio.start_server(scripted.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return scripted, server, AppChannel("127.0.0.1", port, timeout=5)


async def test_a_connection_closed_while_idle_is_replaced() -> None:
    scripted, server, channel = await _scripted(["ok-close-later"])
    try:
        assert (await channel.request("PUT", "/a")).body == b"ok"
        await asyncio.sleep(0.2)  # the app closes the idle connection
        assert (await channel.request("PUT", "/a")).body == b"ok"
        assert scripted.requests == 2 and scripted.connections == 2
    finally:
        await channel.close()
        server.close()


async def test_a_reply_cut_short_is_an_error_and_not_sent_again() -> None:
    scripted, server, channel = await _scripted(["cut"])
    try:
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await channel.request("PUT", "/a", body=b"once")
        assert scripted.requests == 1
    finally:
        await channel.close()
        server.close()


async def test_timeouts_and_refused_connections() -> None:
    scripted, server, channel = await _scripted(["hang", "ok"])
    try:
        with pytest.raises(TimeoutError):
            await channel.request("PUT", "/a", timeout=0.2)
        assert (await channel.request("PUT", "/a")).body == b"ok"  # on a new connection
        assert scripted.connections == 2
    finally:
        await channel.close()
        server.close()
    refused = AppChannel("127.0.0.1", 1)
    with pytest.raises(aiohttp.ClientConnectionError):
        await refused.request("GET", "/")


async def test_at_most_max_connections_are_open() -> None:
    scripted = Scripted(["ok"])
    open_now = peak = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal open_now, peak
        open_now += 1
        peak = max(peak, open_now)
        try:
            await scripted.serve(reader, writer)
        finally:
            open_now -= 1

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    channel = AppChannel("127.0.0.1", server.sockets[0].getsockname()[1], max_connections=3)
    try:
        replies = await asyncio.gather(*(channel.request("PUT", "/a") for _ in range(20)))
        assert [r.body for r in replies] == [b"ok"] * 20
        assert peak <= 3 and scripted.requests == 20
    finally:
        await channel.close()
        server.close()
