"""Routes of one sidecar feature served on loopback with the sidecar's own error mapping (`DaprErrors`), for
the unit suites that test a feature below the full HTTP API: plain routes (`serve_routes`), or the pub/sub
engine with its app channel and publish routes (`open_pubsub`), wired as `sidecar.server.Sidecar` does."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.routing import BaseRoute, Router
from starlette.types import ASGIApp

from sidecar.appchannel import AppChannel
from sidecar.clock import ManualClock
from sidecar.http import publish_routes
from sidecar.http.app import DaprErrors
from sidecar.pubsub import BrokerSpec, DeclarativeSubscription, PubSubEngine, RetryPolicy
from tests.harness import ServedApp, bound_socket

__all__ = ["PubSubSidecar", "open_pubsub", "routes_app", "routes_fixture", "serve_routes"]


def routes_app(routes: list[BaseRoute]) -> ASGIApp:
    """Routes of one sidecar feature as an ASGI app, their errors answered by the sidecar's mapping."""
    return DaprErrors(Router(routes=routes))


def serve_routes(routes: list[BaseRoute]) -> ServedApp:
    """`routes_app` served on loopback by uvicorn on its own thread (stop it when done)."""
    return ServedApp(routes_app(routes), lifespan="off").start()


def routes_fixture() -> Any:
    """A `serve` fixture for a conftest: `serve(routes)` serves them (`serve_routes`) and gives their base
    URL; all are stopped after the test."""

    @pytest.fixture
    def serve() -> Iterator[Callable[[list[BaseRoute]], str]]:
        running: list[ServedApp] = []

        def start(routes: list[BaseRoute]) -> str:
            running.append(served := serve_routes(routes))
            return served.url

        yield start
        for served in running:
            served.stop()

    return serve


@contextlib.asynccontextmanager
async def _served_here(app: ASGIApp) -> AsyncIterator[str]:
    """`app` served by uvicorn on the running loop (beside an engine that lives there); yields its URL."""
    sock = bound_socket()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    server.capture_signals = contextlib.nullcontext  # type: ignore[assignment,method-assign]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.005)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task


@dataclass
class PubSubSidecar:
    """A `PubSubEngine` with its publish routes served, and a client to publish through them."""

    engine: PubSubEngine
    client: httpx.AsyncClient
    clock: ManualClock

    async def publish(
        self,
        topic: str,
        body: bytes | str = b"",
        *,
        content_type: str | None = None,
        pubsub: str = "pubsub",
        metadata: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        hdrs = dict(headers or {})
        if content_type is not None:
            hdrs["Content-Type"] = content_type
        params = {f"metadata.{k}": v for k, v in (metadata or {}).items()}
        return await self.client.post(
            f"/v1.0/publish/{pubsub}/{topic}", content=body, headers=hdrs, params=params
        )


@contextlib.asynccontextmanager
async def open_pubsub(
    app_port: int | None,
    brokers: Sequence[BrokerSpec],
    *,
    app_id: str,
    data_dir: Path,
    declarative: Sequence[DeclarativeSubscription] = (),
    retry: RetryPolicy | None = None,
    load: bool = True,
    **engine_options: Any,
) -> AsyncIterator[PubSubSidecar]:
    """A started `PubSubEngine` (manual clock) delivering over an `AppChannel` to `app_port`, its publish
    routes served on the running loop, and its subscriptions loaded from the app unless `load` is false;
    `engine_options` are further `PubSubEngine` arguments."""
    clock = ManualClock()
    channel = AppChannel("127.0.0.1", app_port)
    options: dict[str, Any] = {"data_dir": data_dir, **engine_options}
    if retry is not None:
        options["retry"] = retry
    engine = PubSubEngine(list(brokers), app_id, channel, clock, declarative=declarative, **options)
    await engine.start()
    try:
        async with (
            _served_here(routes_app(publish_routes.routes(engine))) as url,
            httpx.AsyncClient(base_url=url) as client,
        ):
            if load:
                await engine.load_subscriptions()
            yield PubSubSidecar(engine, client, clock)
    finally:
        await engine.stop()
        await channel.close()
