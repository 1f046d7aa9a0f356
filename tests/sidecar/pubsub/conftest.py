"""Fixtures for the pub/sub tests: subscriber apps on their own threads (shared per session), and per
test a real `PubSubEngine` with a real `AppChannel`, its HTTP publish routes served by uvicorn on the
test's loop, and an httpx client to publish through them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sidecar.appchannel import AppChannel
from sidecar.clock import ManualClock
from sidecar.errors import DaprError
from sidecar.http.publish_routes import routes
from sidecar.pubsub import BrokerSpec, DeclarativeSubscription, PubSubEngine, RetryPolicy
from tests.harness import ServedApp, bound_socket
from tests.sidecar.pubsub.apps import (
    PUBSUB,
    ROUTED_SUBSCRIPTIONS,
    RawApp,
    Recorder,
    build_sdk_app,
)

FAST_RETRY = RetryPolicy(attempts=3, initial=0.01, maximum=0.02)
APP_ID = "publisher-app"


def serve(app: Any) -> ServedApp:
    return ServedApp(app, bound_socket()).start()


@dataclass
class Apps:
    sdk: ServedApp
    sdk_recorder: Recorder
    raw: ServedApp
    raw_app: RawApp
    raw_recorder: Recorder


@pytest.fixture(scope="session")
def served_apps() -> Iterator[Apps]:
    sdk_recorder, raw_recorder = Recorder(), Recorder()
    raw_app = RawApp(raw_recorder)
    sdk = serve(build_sdk_app(sdk_recorder))
    raw = serve(raw_app.build())
    try:
        yield Apps(sdk, sdk_recorder, raw, raw_app, raw_recorder)
    finally:
        sdk.stop()
        raw.stop()


@pytest.fixture
def apps(served_apps: Apps) -> Apps:
    served_apps.sdk_recorder.reset()
    served_apps.raw_recorder.reset()
    served_apps.raw_app.subscribe_status = 200
    served_apps.raw_app.subscribe_body = ROUTED_SUBSCRIPTIONS
    return served_apps


@dataclass
class Sidecar:
    engine: PubSubEngine
    client: httpx.AsyncClient
    clock: ManualClock

    async def publish(
        self,
        topic: str,
        body: bytes | str = b"",
        *,
        content_type: str | None = None,
        pubsub: str = PUBSUB,
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


async def _dapr_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DaprError)
    return JSONResponse(exc.body(), status_code=exc.http_status)


MakeSidecar = Callable[..., Awaitable[Sidecar]]


@pytest.fixture
def broker_type() -> str:
    """The default component's type; a module overrides this fixture to run its tests on both types."""
    return "pubsub.in-memory"


BOTH_TYPES = ("pubsub.in-memory", "pubsub.embedded.sqlite")


@pytest.fixture
async def make_sidecar(broker_type: str, tmp_path: Path) -> AsyncIterator[MakeSidecar]:
    cleanups: list[Callable[[], Awaitable[None]]] = []

    async def make(
        app: ServedApp | int | None,
        *,
        brokers: Sequence[BrokerSpec] | None = None,
        declarative: Sequence[DeclarativeSubscription] = (),
        retry: RetryPolicy = FAST_RETRY,
        load: bool = True,
        **engine_kwargs: Any,
    ) -> Sidecar:
        clock = ManualClock()
        port = app.port if isinstance(app, ServedApp) else app
        channel = AppChannel("127.0.0.1", port)
        engine = PubSubEngine(
            list(brokers if brokers is not None else [BrokerSpec(PUBSUB, broker_type)]),
            APP_ID,
            channel,
            clock,
            declarative=declarative,
            retry=retry,
            **{"data_dir": tmp_path, **engine_kwargs},  # one data dir per test: a restart finds it
        )
        await engine.start()
        sock = bound_socket()
        http_app = Starlette(routes=routes(engine), exception_handlers={DaprError: _dapr_error})
        server = uvicorn.Server(uvicorn.Config(http_app, log_level="warning", lifespan="off"))
        server.capture_signals = contextlib.nullcontext  # type: ignore[assignment,method-assign]
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.005)
        client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{sock.getsockname()[1]}")

        async def cleanup() -> None:
            await client.aclose()
            server.should_exit = True
            await task
            await engine.stop()
            await channel.close()

        cleanups.append(cleanup)
        if load:
            await engine.load_subscriptions()
        return Sidecar(engine, client, clock)

    yield make
    for cleanup in reversed(cleanups):
        await cleanup()
