"""A workflow-only sidecar (grpc.aio server + WorkflowEngine) on its own thread, and SDK helpers.

The engine runs on a private event loop, exactly as in the sidecar; tests talk to it only through the
real SDK (`WorkflowRuntime`, `DaprWorkflowClient`) or the SDK's generated gRPC stubs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import queue
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import dapr.ext.workflow._durabletask.internal.protos as pb
import grpc
from dapr.ext.workflow import DaprWorkflowClient, WorkflowRuntime

from sidecar.clock import ManualClock
from sidecar.db import Database
from sidecar.scheduler import Scheduler
from sidecar.workflows import GRPC_SERVER_OPTIONS, WorkflowEngine, add_workflow_service

__all__ = [
    "HEALTH",
    "STATEFUL",
    "RawWorker",
    "WorkflowSidecar",
    "close_client",
    "eventually",
    "fresh",
    "running_worker",
    "start_worker",
    "stop_worker",
]

T = TypeVar("T")

HEALTH = pb.WORKER_CAPABILITY_HEALTH_PING
STATEFUL = pb.WORKER_CAPABILITY_STATEFUL_HISTORY


class WorkflowSidecar:
    """Database + Scheduler + WorkflowEngine + grpc.aio server on 127.0.0.1, on a private loop."""

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
            parts = loop.run_until_complete(self._serve())
        except BaseException as exc:
            self._started.set_exception(exc)
            loop.close()
            return
        self._started.set_result(None)
        try:
            assert self._stop is not None
            loop.run_until_complete(self._stop.wait())
            loop.run_until_complete(self._shutdown(*parts))
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _serve(self) -> tuple[Any, WorkflowEngine, Scheduler, Database]:
        self._stop = asyncio.Event()
        db = Database(self.db_path)
        scheduler = Scheduler(db, self.clock)
        engine = WorkflowEngine(db, scheduler, self.clock, **self._engine_options)
        await scheduler.start()
        await engine.start()
        server = grpc.aio.server(options=[*GRPC_SERVER_OPTIONS, ("grpc.so_reuseport", 0)])
        add_workflow_service(server, engine)
        self.port = server.add_insecure_port(f"127.0.0.1:{self.port}")
        await server.start()
        self.engine = engine
        return server, engine, scheduler, db

    @staticmethod
    async def _shutdown(server: Any, engine: WorkflowEngine, scheduler: Scheduler, db: Database) -> None:
        await engine.stop()
        await server.stop(grace=0.2)
        await scheduler.stop()
        db.close()


class RawWorker:
    """A GetWorkItems stream of the SDK's generated stub, read on a thread; health pings are
    counted, not queued."""

    def __init__(self, stub: Any, capabilities: tuple[Any, ...] = (HEALTH,)) -> None:
        self.stub = stub
        self.call = stub.GetWorkItems(pb.GetWorkItemsRequest(capabilities=list(capabilities)))
        self.items: queue.Queue[Any] = queue.Queue()
        self.pings = 0
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for item in self.call:
                if item.HasField("healthPing"):
                    self.pings += 1
                else:
                    self.items.put(item)
        except grpc.RpcError:
            pass

    def next(self, timeout: float = 5.0) -> Any:
        return self.items.get(timeout=timeout)

    def close(self) -> None:
        self.call.cancel()
        self._thread.join(5)


def start_worker(
    sidecar: WorkflowSidecar | int, register: Callable[[WorkflowRuntime], None], **options: Any
) -> WorkflowRuntime:
    """A started `WorkflowRuntime` connected to the sidecar or port (the caller shuts it down)."""
    port = sidecar if isinstance(sidecar, int) else sidecar.port
    runtime = WorkflowRuntime(host="127.0.0.1", port=str(port), **options)
    register(runtime)
    runtime.start()  # type: ignore[no-untyped-call]
    return runtime


def stop_worker(runtime: WorkflowRuntime) -> None:
    runtime.shutdown()  # type: ignore[no-untyped-call]


def close_client(client: DaprWorkflowClient) -> None:
    client.close()  # type: ignore[no-untyped-call]


@contextmanager
def running_worker(
    sidecar: WorkflowSidecar | int, register: Callable[[WorkflowRuntime], None], **options: Any
) -> Iterator[WorkflowRuntime]:
    """A started `WorkflowRuntime` connected to the sidecar, shut down on exit."""
    runtime = start_worker(sidecar, register, **options)
    try:
        yield runtime
    finally:
        stop_worker(runtime)


def eventually(condition: Callable[[], T], timeout: float = 5.0, interval: float = 0.02) -> T:
    """Poll until `condition()` is truthy (for effects that happen asynchronously), else fail."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def fresh(fn: Callable[..., T]) -> Callable[..., T]:
    """A new function object calling `fn`: the SDK marks registered functions, so a second
    WorkflowRuntime (a restarted worker) cannot register the same object again."""

    def call(*args: Any) -> T:
        return fn(*args)

    call.__name__ = fn.__name__
    call.__signature__ = inspect.signature(fn)  # type: ignore[attr-defined]
    return call
