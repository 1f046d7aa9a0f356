"""The sidecar's channel to the app (`AppChannel` over `sidecar.wire.http1`, whose own cases are in
`test_http1`) against a real ASGI app: replies as the app sent them, daprd's `dapr-api-token`, the dev
clock's extra headers, one kept-alive connection, the `in_flight` count, and an app that is not there."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
import uvloop
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from sidecar.appchannel import AppChannel
from sidecar.wire.http1 import Unreachable
from tests.harness import ServedApp

peers: list[tuple[str, int]] = []


async def echo(request: Request) -> Response:
    assert request.client is not None
    peers.append((request.client.host, request.client.port))
    body = await request.body()
    headers = {"X-Method": request.method, "X-Token": request.headers.get("dapr-api-token", "")}
    headers["X-Custom"] = request.headers.get("x-custom", "")
    headers["X-Clock"] = request.headers.get("x-dev-clock-offset", "")
    return Response(body, status_code=int(request.query_params.get("status", "200")), headers=headers)


async def stream(request: Request) -> StreamingResponse:
    async def chunks() -> AsyncIterator[bytes]:
        for n in range(3):
            yield f"part{n};".encode()

    return StreamingResponse(chunks(), media_type="text/plain")


async def empty(request: Request) -> Response:
    return Response(status_code=204)


serving = {"now": 0, "peak": 0}


async def slow(request: Request) -> Response:
    serving["now"] += 1
    serving["peak"] = max(serving["peak"], serving["now"])
    try:
        await asyncio.sleep(0.2)
    finally:
        serving["now"] -= 1
    return Response(status_code=204)


@pytest.fixture(scope="module")
def app_url() -> Iterator[tuple[str, int]]:
    routes = [
        Route("/echo", echo, methods=["GET", "PUT", "POST"]),
        Route("/stream", stream),
        Route("/empty", empty),
        Route("/slow", slow),
    ]
    served = ServedApp(Starlette(routes=routes), lifespan="off").start()
    host, port = served.url.removeprefix("http://").split(":")
    yield host, int(port)
    served.stop()


async def _round_trips(host: str, port: int) -> None:
    channel = AppChannel(host, port, app_token="secret-token")
    channel.extra_headers = lambda: {"x-dev-clock-offset": "42"}
    try:
        peers.clear()
        big = bytes(range(256)) * 4096  # 1 MiB
        reply = await channel.request(
            "PUT", "/echo", body=big, headers={"X-Custom": "v", "Content-Length": "1"}
        )
        assert reply.status == 200 and reply.body == big
        assert reply.headers["x-token"] == "secret-token" and reply.headers["x-custom"] == "v"
        assert reply.headers["x-clock"] == "42" and channel.in_flight == 0
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


async def test_an_app_that_is_not_there_is_unreachable() -> None:
    refused = AppChannel("127.0.0.1", 1)
    with pytest.raises(Unreachable) as caught:
        await refused.request("GET", "/")
    assert isinstance(caught.value, ConnectionError) and refused.in_flight == 0
    with pytest.raises(ConnectionError, match="no app port"):
        await AppChannel("127.0.0.1", None).request("GET", "/")


async def test_max_concurrency_bounds_calls_and_in_flight_counts_the_waiting(
    app_url: tuple[str, int],
) -> None:
    """`--app-max-concurrency 2`: five calls at once reach the app two at a time; `in_flight` counts the
    waiting ones too (the dev clock waits for them), and a waiter cancelled before its turn leaves it."""
    channel = AppChannel(*app_url, max_concurrency=2)
    serving["peak"] = 0
    try:
        calls = [asyncio.create_task(channel.request("GET", "/slow")) for _ in range(5)]
        await asyncio.sleep(0.05)
        assert channel.in_flight == 5
        calls[4].cancel()
        await asyncio.sleep(0)
        assert channel.in_flight == 4
        done = await asyncio.gather(*calls[:4])
        assert [r.status for r in done] == [204] * 4
        assert serving["peak"] == 2 and channel.in_flight == 0
        assert calls[4].cancelled()
    finally:
        await channel.close()
