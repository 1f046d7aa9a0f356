"""Run a `Sidecar` on its own thread and event loop, for tests and embedding.

The SDK's health probe is synchronous and blocks its caller's loop, so an in-process sidecar must never share
a loop with the app or the test: this thread owns one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from sidecar.clock import Clock
from sidecar.config import SidecarConfig
from sidecar.server import Sidecar

__all__ = ["SidecarThread"]

T = TypeVar("T")


class SidecarThread:
    def __init__(self, config: SidecarConfig, *, clock: Clock | None = None) -> None:
        self.sidecar = Sidecar(config, clock=clock)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started = concurrent.futures.Future[None]()

    @property
    def http_port(self) -> int:
        return self.sidecar.http_port

    @property
    def grpc_port(self) -> int:
        return self.sidecar.grpc_port

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None
        return self._loop

    def start(self, timeout: float = 30.0) -> SidecarThread:
        self._thread = threading.Thread(target=self._main, name="sidecar", daemon=True)
        self._thread.start()
        self._started.result(timeout)
        return self

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self.sidecar.start())
        except BaseException as exc:
            self._started.set_exception(exc)
            loop.close()
            return
        self._started.set_result(None)
        try:
            loop.run_until_complete(self.sidecar.stopped.wait())
            loop.run_until_complete(self.sidecar.stop())
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run a coroutine on the sidecar's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def wait_ready(self, timeout: float = 30.0) -> None:
        self.call(asyncio.wait_for(self.sidecar.ready.wait(), timeout), timeout + 1)

    def stop(self, timeout: float = 30.0) -> None:
        if self._thread is None or self._loop is None:
            return
        with contextlib.suppress(RuntimeError):  # its loop already closed: it stopped itself (shutdown API)
            self._loop.call_soon_threadsafe(self.sidecar.request_stop)
        self._thread.join(timeout)
        self._thread = None

    def __enter__(self) -> SidecarThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
