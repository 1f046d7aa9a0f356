"""Helpers of the workflow suite: a raw work-item stream, polling, and SDK odds and ends. The workflow-only
sidecar and the workers come from the factory (`tests.stack`), re-exported here for the suite's modules.

The engine runs on a private event loop, exactly as in the sidecar; tests talk to it only through the
real SDK (`WorkflowRuntime`, `DaprWorkflowClient`) or the SDK's generated gRPC stubs.
"""

from __future__ import annotations

import inspect
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import dapr.ext.workflow._durabletask.internal.protos as pb
import grpc
from dapr.ext.workflow import DaprWorkflowClient

from tests.stack import WorkflowSidecar, running_worker, start_worker, stop_worker

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


def close_client(client: DaprWorkflowClient) -> None:
    client.close()  # type: ignore[no-untyped-call]


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
