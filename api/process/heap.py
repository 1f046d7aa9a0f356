"""`HeapPolicy`: garbage collection for the app process, which holds many long-lived objects (every active
list with its items) and replaces some of them on every write.

CPython's full collections scan every tracked object. With 1,000 active lists under the S1 mix that was
44 full collections a minute at 130–190 ms each: 5.7 s of CPU, and most of the p99. Here the survivors of
a full collection that took `freeze_after_ms` or more are frozen (`gc.freeze`), so the next ones scan only
what was allocated since. Only slow ones: whatever is frozen while in use and later dies in a reference
cycle (a request in flight, an actor with its state manager once deactivated) stays until a collection of
the frozen set, and freezing after every full collection kept 0.5 KB per list touched. Every
`sweep_seconds` everything is unfrozen and collected once: one long pause per sweep instead of dozens a
minute.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from typing import Any

__all__ = ["HeapPolicy"]

log = logging.getLogger("api.heap")


class HeapPolicy:
    """Install once per process (`install()`), run `sweeps()` as a task, `uninstall()` at shutdown."""

    def __init__(self, sweep_seconds: float, freeze_after_ms: float = 10.0) -> None:
        self.sweep_seconds = sweep_seconds
        self.freeze_after = freeze_after_ms / 1000
        self.installed = False
        self._started = 0.0

    def install(self) -> None:
        if self.installed:
            return
        gc.collect()
        gc.freeze()  # what start-up made (modules, settings, the apps) stays for good
        gc.callbacks.append(self._on_collection)
        self.installed = True

    def uninstall(self) -> None:
        if not self.installed:
            return
        gc.callbacks.remove(self._on_collection)
        gc.unfreeze()
        self.installed = False

    def sweep(self) -> int:
        """Collect everything once, frozen objects included, then freeze the survivors; returns the
        number of unreachable objects found."""
        started = time.perf_counter()
        gc.unfreeze()
        found = gc.collect()
        gc.freeze()
        log.debug("heap sweep: %d unreachable objects, %.0f ms", found, (time.perf_counter() - started) * 1e3)
        return found

    async def sweeps(self) -> None:
        """Sweep every `sweep_seconds`, until cancelled."""
        while True:
            await asyncio.sleep(self.sweep_seconds)
            self.sweep()

    def _on_collection(self, phase: str, info: dict[str, Any]) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        elif time.perf_counter() - self._started >= self.freeze_after:
            gc.freeze()
