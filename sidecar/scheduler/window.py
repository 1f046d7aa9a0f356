"""The in-memory part of the scheduler: jobs due before a moving horizon, in a heap by firing time.

Every row of `scheduler_jobs` whose (due, key) is at or before `horizon` has exactly one `Entry`
here; rows after it stay on disk until the loader moves the horizon. Heap items are never removed in
place: each re-queue gets a fresh token, and an item whose token is no longer its entry's is skipped
when popped. Methods are synchronous, called in the order the database applied the writes.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from sidecar.scheduler.model import Job

__all__ = ["DueWindow", "Entry", "EntryState"]


class EntryState(Enum):
    QUEUED = "queued"  # in the heap, waiting for fire_at
    RUNNING = "running"  # its handler is running, or its completion is not yet committed
    PARKED = "parked"  # due, but an older version of the same key is still running
    UNHANDLED = "unhandled"  # due, but no handler registered for its kind (staged, as in daprd)


@dataclass(slots=True, eq=False)
class Entry:
    job: Job
    generation: int
    token: int = 0
    fire_at: float = 0.0
    attempt: int = 0  # 0 for the first call of the current tick
    state: EntryState = EntryState.QUEUED

    @property
    def key(self) -> str:
        return self.job.key


class DueWindow:
    """Jobs due up to `horizon` (a keyset position (due, key); key None = every key at that due)."""

    def __init__(self) -> None:
        self.live: dict[str, Entry] = {}
        self.running: dict[str, Entry] = {}
        self.horizon: tuple[float, str | None] = (-math.inf, None)
        self.capped = False  # the last load stopped at its row limit, before its target time
        self._heap: list[tuple[float, int, str]] = []
        self._tokens = itertools.count(1)
        self._unhandled: dict[str, list[Entry]] = {}
        self._unhandled_count = 0

    # -- sizes ----------------------------------------------------------------------------------

    def heap_size(self) -> int:
        return len(self._heap)

    def active_count(self) -> int:
        """Entries that will fire without outside help (not staged for a missing handler)."""
        return len(self.live) - self._unhandled_count

    # -- changes that mirror committed writes ---------------------------------------------------

    def covers(self, job: Job) -> bool:
        due, key = self.horizon
        return job.due < due or (job.due == due and (key is None or job.key <= key))

    def offer(self, job: Job, generation: int) -> None:
        """A version of `job` is now in the table (put or loaded): hold it if inside the horizon."""
        self._forget(job.key)
        if self.covers(job):
            self._queue(Entry(job, generation), job.due)

    def loaded(self, rows: list[tuple[Job, int]], until: float, limit: int) -> None:
        """Apply a load of rows after the horizon up to `until` (fewer than `limit` = complete)."""
        if len(rows) >= limit:
            last = rows[-1][0]
            self.horizon, self.capped = (last.due, last.key), True
        else:
            self.horizon, self.capped = (until, None), False
        for job, generation in rows:
            self.offer(job, generation)

    def drop(self, key: str) -> None:
        self._forget(key)

    def drop_prefix(self, prefix: str) -> None:
        for key in [k for k in self.live if k.startswith(prefix)]:
            self._forget(key)

    def finish(self, entry: Entry, following: Job | None) -> None:
        """The tick of `entry` is committed as done; hold its next tick if inside the horizon."""
        self._release(entry)
        if self.live.get(entry.key) is not entry:
            self._unpark(entry.key)  # replaced or deleted while it ran
        elif following is None or not self.covers(following):
            self._forget(entry.key)
        else:
            entry.job, entry.attempt = following, 0
            self._queue(entry, following.due)

    def retry(self, entry: Entry, at: float) -> None:
        """The handler of `entry` failed; call it again at `at` unless the job changed meanwhile."""
        self._release(entry)
        if self.live.get(entry.key) is entry:
            entry.attempt += 1
            self._queue(entry, at)
        else:
            self._unpark(entry.key)

    def handler_added(self, kind: str) -> None:
        for entry in self._unhandled.pop(kind, []):
            if self.live.get(entry.key) is entry and entry.state is EntryState.UNHANDLED:
                self._unhandled_count -= 1
                self._queue(entry, entry.fire_at)

    # -- firing -----------------------------------------------------------------------------------

    def next_fire_at(self) -> float | None:
        while self._heap and not self._current(self._heap[0]):
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float, has_handler: Callable[[str], bool]) -> Entry | None:
        """The next entry to fire at `now`, marked running; None when nothing else is due."""
        while self._heap and self._heap[0][0] <= now:
            item = heapq.heappop(self._heap)
            if not self._current(item):
                continue
            entry = self.live[item[2]]
            if entry.key in self.running:
                entry.state = EntryState.PARKED
            elif not has_handler(entry.job.kind):
                entry.state = EntryState.UNHANDLED
                self._unhandled.setdefault(entry.job.kind, []).append(entry)
                self._unhandled_count += 1
            else:
                entry.state = EntryState.RUNNING
                self.running[entry.key] = entry
                return entry
        return None

    # -- internals ------------------------------------------------------------------------------

    def _current(self, item: tuple[float, int, str]) -> bool:
        entry = self.live.get(item[2])
        return entry is not None and entry.token == item[1] and entry.state is EntryState.QUEUED

    def _queue(self, entry: Entry, at: float) -> None:
        entry.token, entry.fire_at, entry.state = next(self._tokens), at, EntryState.QUEUED
        self.live[entry.key] = entry
        heapq.heappush(self._heap, (at, entry.token, entry.key))
        if len(self._heap) > 2 * len(self.live) + 1024:
            self._heap = [
                (e.fire_at, e.token, e.key) for e in self.live.values() if e.state is EntryState.QUEUED
            ]
            heapq.heapify(self._heap)

    def _forget(self, key: str) -> None:
        entry = self.live.pop(key, None)
        if entry is not None and entry.state is EntryState.UNHANDLED:
            self._unhandled_count -= 1
            entry.state = EntryState.QUEUED  # leaves the staging list as a dead item

    def _release(self, entry: Entry) -> None:
        if self.running.get(entry.key) is entry:
            del self.running[entry.key]

    def _unpark(self, key: str) -> None:
        entry = self.live.get(key)
        if entry is not None and entry.state is EntryState.PARKED:
            self._queue(entry, entry.fire_at)
