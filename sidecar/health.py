"""App health checks (`--enable-app-health-check`), as daprd's `pkg/apphealth`: the app is probed every
interval over its channel (HTTP `GET <path>` or gRPC `AppCallbackHealthCheck/HealthCheck`), and counts as
unhealthy from the start and after `threshold` failed probes in a row, healthy again after one success.
While it is unhealthy, pub/sub deliveries and input binding events pause and invocations are refused.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from sidecar.appchannel import ChannelBase

__all__ = ["AppHealth", "HealthSettings"]

log = logging.getLogger("sidecar.apphealth")


@dataclass(frozen=True)
class HealthSettings:
    """daprd's defaults: probe every 5 s, 500 ms timeout, 3 failures in a row make the app unhealthy."""

    path: str = "/healthz"
    interval: float = 5.0
    timeout: float = 0.5
    threshold: int = 3

    def validate(self) -> None:
        if self.interval <= 0:
            raise ValueError("app health probe interval must be larger than 0")
        if self.timeout > self.interval:
            raise ValueError("app health checks probe timeouts must be smaller than probe intervals")
        if self.threshold < 1:
            raise ValueError("app health threshold must be at least 1")

    def describe(self) -> dict[str, object]:
        """`appConnectionProperties.health` of the metadata API (Go durations, as daprd prints them)."""
        return {
            "healthCheckPath": self.path,
            "healthProbeInterval": _go_duration(self.interval),
            "healthProbeTimeout": _go_duration(self.timeout),
            "healthThreshold": self.threshold,
        }


def _go_duration(seconds: float) -> str:
    if seconds >= 1 and float(seconds).is_integer():
        return f"{int(seconds)}s"
    ms = seconds * 1000
    return f"{int(ms)}ms" if float(ms).is_integer() else f"{seconds:g}s"


class AppHealth:
    """Probes the app; tells who waits (`wait_healthy`) or listens (`on_change`) when its health changes."""

    def __init__(self, channel: ChannelBase, settings: HealthSettings) -> None:
        settings.validate()
        self._channel = channel
        self.settings = settings
        self._failures = settings.threshold  # unhealthy until the first successful probe, as daprd
        self._healthy = asyncio.Event()
        self._listeners: list[Callable[[bool], None]] = []
        self._task: asyncio.Task[None] | None = None
        self.reason = "no probe yet"
        self.probes = 0
        channel.healthy = self.is_healthy

    def is_healthy(self) -> bool:
        return self._healthy.is_set()

    async def wait_healthy(self) -> None:
        await self._healthy.wait()

    def on_change(self, listener: Callable[[bool], None]) -> None:
        self._listeners.append(listener)

    def start(self) -> None:
        log.info("App health probes starting")
        self._task = asyncio.create_task(self._probe_forever(), name="app-health")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            log.info("App health probes stopping")

    async def _probe_forever(self) -> None:
        while True:
            await self.probe_once()
            await asyncio.sleep(self.settings.interval)  # daprd's ticker is wall time too

    async def probe_once(self) -> None:
        try:
            failure = await asyncio.wait_for(
                self._channel.probe_health(self.settings.timeout), self.settings.timeout
            )
        except TimeoutError:
            failure = f"health probe timed out after {self.settings.timeout:g} s"
        self.probes += 1
        self._report(failure)

    def _report(self, failure: str | None) -> None:
        if failure is None:
            self._failures = 0
            self.reason = ""
            if not self._healthy.is_set():
                log.info("App entered healthy status")
                self._healthy.set()
                self._notify(True)
            return
        self._failures += 1
        self.reason = failure
        log.debug("app health probe failed (%d in a row): %s", self._failures, failure)
        if self._failures >= self.settings.threshold and self._healthy.is_set():
            log.warning("App entered un-healthy status: %s", failure)
            self._healthy.clear()
            self._notify(False)

    def _notify(self, healthy: bool) -> None:
        for listener in self._listeners:
            try:
                listener(healthy)
            except Exception:
                log.exception("app health listener failed")
