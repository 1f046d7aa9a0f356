"""The sidecar's engines without the sidecar, for the unit suites that test one of them below the HTTP API:
the scheduler on its SQLite file and the workflow engine behind its gRPC service, each opened as
`sidecar.server.Sidecar` wires it. Light on imports: the kill -9 workflow process starts from here."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc

from sidecar.clock import Clock, ManualClock
from sidecar.db import Database
from sidecar.scheduler import Scheduler
from sidecar.workflows import GRPC_SERVER_OPTIONS, WorkflowEngine, add_workflow_service

__all__ = ["ServedWorkflows", "WorkflowSidecar", "close_scheduler", "open_scheduler", "serve_workflow_engine"]

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
