"""Time passing with the engine up: a dev-clock advance steps through every due thing in due order.

A jump of the clock would fire a month of reminders and workflow timers at once, all "late", so catch-up
policies would drop them. Instead the advance moves the clock to the earliest due instant (scheduler jobs:
actor reminders, workflow timers, bindings; actor timers), waits until the work that fired has settled
(app calls answered, workflow work done and its new timers stored, deliveries acknowledged, nothing
pending for a short while), and repeats until the target. Downtime is a different thing: the stored
clock of a stopped engine is moved (`todo-engine clock advance`) and catch-up policies apply on restart.
Sidecars on one host registry share one clock (`peers`, sidecar/hosts/clock.py): an advance on any of them
steps through everyone's due instants, moves every clock with it and waits for every sidecar to settle.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from sidecar.clock import ManualClock

__all__ = ["AdvanceResult", "NotSettled", "TimeSkipper"]

log = logging.getLogger("sidecar.timeskip")

Busy = Callable[[], str | None]  # what is still working, or None when quiet
NextDue = Callable[[float], Awaitable[float | None]]  # the earliest due instant after `now`


class Peers(Protocol):
    """The other dev clocks of the host: each step moves them too."""

    async def next_due(self, now: float) -> float | None: ...

    async def busy(self) -> dict[str, str]: ...

    async def sync(self, offset: float) -> None: ...


@dataclass(frozen=True)
class AdvanceResult:
    start: float
    target: float
    now: float
    steps: int  # due instants the clock stood at on its way

    def as_json(self) -> dict[str, float | int]:
        return {"start": self.start, "target": self.target, "now": self.now, "steps": self.steps}


class NotSettled(Exception):
    """The engine did not become quiet in time; the clock stays where it got to (not retryable as is)."""

    def __init__(self, result: AdvanceResult, busy: Mapping[str, str], timeout: float) -> None:
        self.result = result
        self.busy = dict(busy)
        what = "; ".join(f"{name}: {detail}" for name, detail in self.busy.items()) or "unknown"
        super().__init__(
            f"the engine did not settle within {timeout:g} s at clock {result.now:.3f} "
            f"({result.steps} step(s) of the way from {result.start:.3f} to {result.target:.3f}); "
            f"still busy: {what}"
        )


class TimeSkipper:
    """Advances a `ManualClock` through due instants, one at a time, waiting for quiet at each."""

    def __init__(
        self,
        clock: ManualClock,
        *,
        busy: Mapping[str, Busy],
        next_due: Sequence[NextDue],
        settle: float = 0.01,
        poll: float = 0.001,
        on_step: Callable[[], None] | None = None,
    ) -> None:
        self._clock = clock
        self._busy = dict(busy)
        self._next_due = list(next_due)
        self._settle = settle
        self._poll = poll
        self._on_step = on_step or (lambda: None)
        self._lock = asyncio.Lock()
        self._background: set[asyncio.Task[AdvanceResult]] = set()
        self.peers: Peers | None = None

    def add_busy(self, name: str, probe: Busy) -> None:
        self._busy[name] = probe

    def add_next_due(self, source: NextDue) -> None:
        self._next_due.append(source)

    @property
    def advancing(self) -> bool:
        return self._lock.locked()

    async def advance(self, seconds: float, *, settle_timeout: float = 30.0) -> AdvanceResult:
        """Move the clock `seconds` forward through every due instant; one advance at a time.

        Raises NotSettled when the engine stays busy for `settle_timeout` s at one instant.
        """
        if not seconds >= 0:
            raise ValueError("the clock only moves forward")
        async with self._lock:
            start = self._clock.now()
            # The offset grows by exactly `seconds`, as a jump would: wall time passing meanwhile adds up.
            final_offset = self._clock.offset + seconds
            steps = 0

            def target() -> float:
                return self._clock.now() - self._clock.offset + final_offset

            def result() -> AdvanceResult:
                return AdvanceResult(start, target(), self._clock.now(), steps)

            while True:
                await self._quiet(settle_timeout, result)
                upcoming = await self._next(self._clock.now())
                if upcoming is None or upcoming > target():
                    break
                self._clock.advance(max(0.0, upcoming - self._clock.now()))
                steps += 1
                await self._stepped()
            self._clock.advance(max(0.0, final_offset - self._clock.offset))
            await self._stepped()
            await self._quiet(settle_timeout, result)
            done = result()
            log.info("dev clock advanced %.0f s in %d step(s)", seconds, steps)
            return done

    def advance_in_background(self, seconds: float, *, settle_timeout: float = 30.0) -> None:
        """Start `advance` and return at once; a failure is logged."""
        task = asyncio.create_task(self.advance(seconds, settle_timeout=settle_timeout), name="clock-advance")
        self._background.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[AdvanceResult]) -> None:
        self._background.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("dev clock advance failed: %s", exc)

    async def stop(self) -> None:
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)

    def busy(self) -> dict[str, str]:
        """Every source still working, with what it is doing."""
        found: dict[str, str] = {}
        for name, probe in self._busy.items():
            detail = probe()
            if detail is not None:
                found[name] = detail
        return found

    async def next_due(self, now: float) -> float | None:
        """The earliest instant after `now` at which something of this sidecar is due."""
        times = [t for source in self._next_due if (t := await source(now)) is not None and t > now]
        return min(times) if times else None

    async def _next(self, now: float) -> float | None:
        mine = await self.next_due(now)
        theirs = await self.peers.next_due(now) if self.peers is not None else None
        return min((t for t in (mine, theirs) if t is not None), default=None)

    async def _stepped(self) -> None:
        self._on_step()
        if self.peers is not None:
            await self.peers.sync(self._clock.offset)

    async def _quiet(self, timeout: float, progress: Callable[[], AdvanceResult]) -> None:
        """Return once nothing (here, then at the peers too) has been busy for `settle` seconds in a row."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while True:
            quiet_since: float | None = None
            while True:
                now = loop.time()
                if self.busy():
                    quiet_since = None
                    if now >= end:
                        raise NotSettled(progress(), self.busy(), timeout)
                elif quiet_since is None:
                    quiet_since = now
                elif now - quiet_since >= self._settle:
                    break
                await asyncio.sleep(self._poll)
            elsewhere = await self.peers.busy() if self.peers is not None else {}
            if not elsewhere:
                return
            if loop.time() >= end:
                raise NotSettled(progress(), elsewhere, timeout)
            await asyncio.sleep(self._settle)
