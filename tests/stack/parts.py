"""The sidecar's engines without the sidecar, for the unit suites that test one of them below the full HTTP
API: each is opened here as `sidecar.server.Sidecar` wires it (the scheduler on its SQLite file, the workflow
engine behind the gRPC service, the pub/sub engine with its app channel and publish routes), and served
routes answer errors with the sidecar's own mapping, so the parts under test are the ones daprd's
replacement runs."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc
import httpx
import pytest
import uvicorn
from starlette.routing import BaseRoute, Router
from starlette.types import ASGIApp

from sidecar.appchannel import AppChannel
from sidecar.clock import Clock, ManualClock
from sidecar.db import Database
from sidecar.http import publish_routes
from sidecar.http.app import DaprErrors
from sidecar.pubsub import BrokerSpec, DeclarativeSubscription, PubSubEngine, RetryPolicy
from sidecar.scheduler import Scheduler
from sidecar.workflows import GRPC_SERVER_OPTIONS, WorkflowEngine, add_workflow_service
from tests.harness import ServedApp, bound_socket

__all__ = [
    "PubSubSidecar",
    "WorkflowSidecar",
    "close_scheduler",
    "open_pubsub",
    "open_scheduler",
    "routes_app",
    "routes_fixture",
    "serve_routes",
    "serve_workflow_engine",
]

T = TypeVar("T")


# scheduler ---------------------------------------------------------------------------------------------


async def open_scheduler(
    db_path: Path, clock: Clock, *, start: bool = True, **options: Any
) -> tuple[Scheduler, Database]:
    """The scheduler on the SQLite file `db_path` (started unless `start` is false); `options` are further
    `Scheduler` arguments. Undo with `close_scheduler`."""
    db = Database(db_path)
    scheduler = Scheduler(db, clock, **options)
    if start:
        await scheduler.start()
    return scheduler, db


async def close_scheduler(scheduler: Scheduler, db: Database) -> None:
    await scheduler.stop()
    db.close()


# workflows ---------------------------------------------------------------------------------------------

GRPC_OPTIONS: list[tuple[str, Any]] = [*GRPC_SERVER_OPTIONS, ("grpc.so_reuseport", 0)]


@dataclass
class ServedWorkflows:
    server: grpc.aio.Server
    engine: WorkflowEngine
    scheduler: Scheduler
    db: Database
    port: int

    async def stop(self) -> None:
        await self.engine.stop()
        await self.server.stop(grace=0.2)
        await close_scheduler(self.scheduler, self.db)


async def serve_workflow_engine(
    db_path: Path, clock: Clock, port: int = 0, **engine_options: Any
) -> ServedWorkflows:
    """Scheduler + `WorkflowEngine` on `db_path`, behind the workflow gRPC service on 127.0.0.1:`port` (0: a
    free one), on the running loop; `engine_options` are further `WorkflowEngine` arguments."""
    scheduler, db = await open_scheduler(db_path, clock, start=False)
    engine = WorkflowEngine(db, scheduler, clock, **engine_options)
    await scheduler.start()
    await engine.start()
    server = grpc.aio.server(options=GRPC_OPTIONS)
    add_workflow_service(server, engine)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    return ServedWorkflows(server, engine, scheduler, db, bound)


class WorkflowSidecar:
    """A workflow-only sidecar (`serve_workflow_engine`) on a private loop of its own thread, as in the
    sidecar; tests reach it through the real SDK or its generated gRPC stubs. Restart it on the same
    database (and `port`) to see what survives."""

    def __init__(self, db_path: Path, clock: ManualClock, port: int = 0, **engine_options: Any) -> None:
        self.db_path = db_path
        self.clock = clock
        self.port = port
        self._engine_options = engine_options
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._stop: asyncio.Event | None = None
        self.engine: WorkflowEngine | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> WorkflowSidecar:
        self._thread = threading.Thread(target=self._main, name="wf-sidecar", daemon=True)
        self._thread.start()
        self._started.result(30)
        return self

    def stop(self) -> None:
        if self._loop is None or self._thread is None or self._stop is None:
            return
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        self._thread = None

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._stop = asyncio.Event()
            served = loop.run_until_complete(
                serve_workflow_engine(self.db_path, self.clock, self.port, **self._engine_options)
            )
        except BaseException as exc:
            self._started.set_exception(exc)
            loop.close()
            return
        self.port, self.engine = served.port, served.engine
        self._started.set_result(None)
        try:
            loop.run_until_complete(self._stop.wait())
            loop.run_until_complete(served.stop())
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()


# routes and pub/sub ------------------------------------------------------------------------------------


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
