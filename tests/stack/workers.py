"""Workflow workers as the suites run them: the SDK's own `WorkflowRuntime` on a sidecar's gRPC port, started
and shut down here so every suite connects (and reconnects after a restart) the same way."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from dapr.ext.workflow import WorkflowRuntime

__all__ = ["running_worker", "start_worker", "stop_worker"]


class HasPort(Protocol):
    @property
    def port(self) -> int: ...


def start_worker(
    sidecar: HasPort | int, register: Callable[[WorkflowRuntime], None], **options: Any
) -> WorkflowRuntime:
    """A started `WorkflowRuntime` on 127.0.0.1 at the sidecar's (or that) gRPC port, with `register`'s
    workflows and activities; `options` are further `WorkflowRuntime` arguments. The caller shuts it down
    (`stop_worker`)."""
    port = sidecar if isinstance(sidecar, int) else sidecar.port
    runtime = WorkflowRuntime(host="127.0.0.1", port=str(port), **options)
    register(runtime)
    runtime.start()  # type: ignore[no-untyped-call]
    return runtime


def stop_worker(runtime: WorkflowRuntime) -> None:
    runtime.shutdown()  # type: ignore[no-untyped-call]


@contextlib.contextmanager
def running_worker(
    sidecar: HasPort | int, register: Callable[[WorkflowRuntime], None], **options: Any
) -> Iterator[WorkflowRuntime]:
    """A started `WorkflowRuntime` (`start_worker`), shut down on exit."""
    runtime = start_worker(sidecar, register, **options)
    try:
        yield runtime
    finally:
        stop_worker(runtime)
