"""Fixtures for the pub/sub tests: subscriber apps on their own threads (shared per session), and per
test the factory's `open_pubsub`: a real `PubSubEngine` with a real `AppChannel`, its HTTP publish routes
served by uvicorn on the test's loop, and an httpx client to publish through them. The streaming tests
share a whole sidecar thread per module and an SDK client on it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from dapr.clients import DaprClient

from sidecar.pubsub import BrokerSpec, DeclarativeSubscription, RetryPolicy
from sidecar.thread import SidecarThread
from tests.harness import ServedApp, bound_socket, use_sidecar
from tests.sidecar.pubsub.apps import (
    PUBSUB,
    ROUTED_SUBSCRIPTIONS,
    RawApp,
    Recorder,
    build_sdk_app,
)
from tests.sidecar.pubsub.streams import start_sidecar
from tests.stack import PubSubSidecar, open_pubsub

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


# The factory's pub/sub engine with its publish routes (the name the suite's modules know it by).
Sidecar = PubSubSidecar


MakeSidecar = Callable[..., Awaitable[Sidecar]]


@pytest.fixture
def broker_type() -> str:
    """The default component's type; a module overrides this fixture to run its tests on both types."""
    return "pubsub.in-memory"


BOTH_TYPES = ("pubsub.in-memory", "pubsub.embedded.sqlite")


@pytest.fixture
async def make_sidecar(broker_type: str, tmp_path: Path) -> AsyncIterator[MakeSidecar]:
    async with contextlib.AsyncExitStack() as opened:

        async def make(
            app: ServedApp | int | None,
            *,
            brokers: Sequence[BrokerSpec] | None = None,
            declarative: Sequence[DeclarativeSubscription] = (),
            retry: RetryPolicy = FAST_RETRY,
            load: bool = True,
            **engine_kwargs: Any,
        ) -> Sidecar:
            pubsub = open_pubsub(
                app.port if isinstance(app, ServedApp) else app,
                list(brokers if brokers is not None else [BrokerSpec(PUBSUB, broker_type)]),
                app_id=APP_ID,
                declarative=declarative,
                retry=retry,
                load=load,
                **{"data_dir": tmp_path, **engine_kwargs},  # one data dir per test: a restart finds it
            )
            return await opened.enter_async_context(pubsub)

        yield make


@pytest.fixture(scope="module")
def sidecar(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SidecarThread]:
    thread = start_sidecar(tmp_path_factory.mktemp("streaming"))
    try:
        yield thread
    finally:
        thread.stop()


@pytest.fixture
def client(sidecar: SidecarThread) -> Iterator[DaprClient]:
    use_sidecar(sidecar.http_port, sidecar.grpc_port)
    with DaprClient(f"127.0.0.1:{sidecar.grpc_port}") as dapr:
        yield dapr
