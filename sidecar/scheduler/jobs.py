"""SEAM (to be implemented): the durable job scheduler.

Contract (other modules code against exactly this):
- `Job` rows live in the sidecar `Database` (table `scheduler_jobs`); only jobs due within `window` seconds are
  held in an in-memory heap, so memory grows with jobs due soon, not with all jobs.
- `register(kind, handler)`: handler for jobs of that kind. It is awaited when the job is due
  (`clock.now() >= job.due`, never earlier). Returning normally = success; raising = failure, retried per the
  failure policy (constant 1 s, 3 retries per tick, as daprd's Scheduler), then the job moves to its next tick
  (a one-shot job is then deleted).
- At-least-once: a job is deleted / advanced only after its handler succeeded; after a crash it fires again.
- `put` upserts by key (registering the same key again replaces the job and its schedule).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sidecar.clock import Clock
from sidecar.db import Database

__all__ = ["Job", "JobHandler", "Scheduler"]


@dataclass(frozen=True)
class Job:
    key: str  # unique, e.g. "reminder||<type>||<id>||<name>" or "wf||<instance>||<timer id>"
    kind: str  # selects the handler: "reminder", "workflow-timer", ...
    due: float  # next firing, UTC epoch seconds
    period: float | None = None  # seconds between firings; None = one-shot
    remaining: int | None = None  # firings left including the next one; None = unlimited
    expires: float | None = None  # no firing at or after this instant (ttl)
    payload: bytes = b""  # handler-specific


JobHandler = Callable[[Job], Awaitable[None]]


class Scheduler:
    def __init__(self, db: Database, clock: Clock, *, window: float = 60.0) -> None:
        raise NotImplementedError

    def register(self, kind: str, handler: JobHandler) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def put(self, job: Job) -> None:
        raise NotImplementedError

    async def put_many(self, jobs: list[Job]) -> None:
        raise NotImplementedError

    async def get(self, key: str) -> Job | None:
        raise NotImplementedError

    async def delete(self, key: str) -> bool:
        raise NotImplementedError

    async def delete_prefix(self, prefix: str) -> int:
        raise NotImplementedError
