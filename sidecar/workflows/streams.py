"""Worker streams: what each was sent and has not answered, and the history its worker holds.

Unanswered work is recorded with its stream, so a closing stream's work can be re-queued.
Stateful history: a worker advertising `WORKER_CAPABILITY_STATEFUL_HISTORY` caches, per stream, the
committed history it replayed for each instance. As in durabletask-go (backend/executor_stateful.go),
the sidecar remembers per stream how many committed events it sent for each instance and, on the next
turn, omits that prefix and names its length in `cachedHistory.eventCount`. The worker uses its cache
only if it holds exactly that many events and otherwise fetches the full history with
`GetInstanceHistory`, so a wrong guess costs one round trip, never a wrong replay.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from sidecar.workflows.store import ActivityRow

__all__ = ["ActivityWork", "HistoryTraffic", "Turn", "WarmHistories", "WorkerStream", "delta_start"]

# Finished instances are never dispatched again, so their entries are never replaced; past this many
# the oldest are forgotten (that only costs one full send if such an instance ever runs again).
_MAX_WARM = 100_000


class WarmHistories:
    """What one stream's worker is believed to hold: instance -> (generation, committed events).

    The generation is checked in addition to durabletask-go's length check, so a purged and recreated
    instance or a new continue-as-new generation is always sent in full first.
    """

    def __init__(self, enabled: bool, max_entries: int = _MAX_WARM) -> None:
        self.enabled = enabled
        self._max = max_entries
        self._held: dict[str, tuple[int, int]] = {}

    def holds(self, instance_id: str) -> tuple[int, int] | None:
        return self._held.get(instance_id) if self.enabled else None

    def sent(self, instance_id: str, generation: int, history_len: int) -> None:
        """After this send the worker holds the instance's whole committed history (it had the prefix
        and got the rest, or got all of it), so the next turn may omit `history_len` events."""
        if not self.enabled:
            return
        self._held.pop(instance_id, None)
        self._held[instance_id] = (generation, history_len)
        while len(self._held) > self._max:
            del self._held[next(iter(self._held))]


def delta_start(held: tuple[int, int] | None, generation: int, history_len: int) -> int:
    """How many leading committed events to omit: 0 (send everything) unless the worker is believed to
    hold a non-empty prefix of this generation's history (durabletask-go: 0 < n <= len(pastEvents))."""
    if held is None:
        return 0
    held_generation, count = held
    if held_generation != generation or not 0 < count <= history_len:
        return 0
    return count


@dataclass
class HistoryTraffic:
    """History sent to workers in `pastEvents`, for the benchmark and tests."""

    turns: int = 0
    delta_turns: int = 0  # turns sent with cachedHistory
    past_events: int = 0
    past_bytes: int = 0
    max_delta_bytes: int = 0  # the largest pastEvents of a turn sent as a delta
    history_fetches: int = 0  # GetInstanceHistory calls (a worker's cache missed)

    def count(self, past: list[bytes], delta: bool) -> None:
        size = sum(len(b) for b in past)
        self.turns += 1
        self.delta_turns += int(delta)
        self.past_events += len(past)
        self.past_bytes += size
        if delta:
            self.max_delta_bytes = max(self.max_delta_bytes, size)


@dataclass(eq=False)
class WorkerStream:
    """One open GetWorkItems call and what was sent on it and not yet answered."""

    id: int
    health_ping: bool
    warm: WarmHistories
    queue: asyncio.Queue[tuple[str, str, Any] | None] = field(default_factory=asyncio.Queue)
    turns: set[str] = field(default_factory=set)
    activities: set[str] = field(default_factory=set)

    @property
    def load(self) -> int:
        return len(self.turns) + len(self.activities)


@dataclass(eq=False)
class Turn:
    instance_id: str
    generation: int
    token: str
    inbox_ords: list[int]
    new_blobs: list[bytes]
    stream: WorkerStream
    dispatched_at: float
    committing: bool = False


@dataclass(eq=False)
class ActivityWork:
    row: ActivityRow
    token: str = ""
    stream: WorkerStream | None = None
    dispatched_at: float = 0.0
    cancelled: bool = False
