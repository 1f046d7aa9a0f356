"""What a scheduled job is and how it moves from one tick to the next.

Kept apart from the engine so the tick arithmetic (repetitions, ttl, catching up after downtime)
is plain functions that the engine and the tests share.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

__all__ = ["Job", "JobHandler", "RetryPolicy", "next_tick", "validate_job"]


@dataclass(frozen=True)
class Job:
    key: str  # unique, e.g. "reminder||<type>||<id>||<name>" or "wf||<instance>||<timer id>"
    kind: str  # selects the handler: "reminder", "workflow-timer", ...
    due: float  # next firing, UTC epoch seconds
    period: float | None = None  # seconds between firings; None = one-shot
    remaining: int | None = None  # firings left including the next one; None = unlimited
    expires: float | None = None  # no tick scheduled at or after this instant (ttl)
    payload: bytes = b""  # handler-specific


JobHandler = Callable[[Job], Awaitable[None]]


@dataclass(frozen=True)
class RetryPolicy:
    """What happens when a handler raises: retry every `interval` s, `max_retries` times per tick.

    The default is daprd's Scheduler default (constant 1 s, 3 retries). `max_retries=None` retries
    forever (daprd's workflow reminders); `max_retries=0` is Dapr's `drop` policy.
    """

    interval: float = 1.0
    max_retries: int | None = 3

    def __post_init__(self) -> None:
        if not (self.interval >= 0 and math.isfinite(self.interval)):
            raise ValueError(f"retry interval must be a finite number >= 0, got {self.interval!r}")
        if self.max_retries is not None and self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0 or None, got {self.max_retries!r}")

    def should_retry(self, attempt: int) -> bool:
        """`attempt` is 0 for the first call of a tick."""
        return self.max_retries is None or attempt < self.max_retries


def validate_job(job: Job) -> None:
    """Reject jobs that could never fire or would fire forever in a tight loop."""
    if not job.key:
        raise ValueError("job key must not be empty")
    if not job.kind:
        raise ValueError("job kind must not be empty")
    if not math.isfinite(job.due):
        raise ValueError(f"job {job.key!r}: due must be a finite epoch time, got {job.due!r}")
    if job.period is not None and not (job.period > 0 and math.isfinite(job.period)):
        raise ValueError(f"job {job.key!r}: period must be > 0 seconds, got {job.period!r}")
    if job.remaining is not None and job.remaining < 1:
        raise ValueError(f"job {job.key!r}: remaining must be >= 1 or None, got {job.remaining!r}")
    if job.expires is not None and not job.expires > job.due:
        raise ValueError(f"job {job.key!r}: expires ({job.expires}) must be later than due ({job.due})")


def next_tick(job: Job, now: float) -> Job | None:
    """The job after its current tick is done (fired or given up), or None when it is finished.

    Ticks stay on the grid `due + k * period`. After a long downtime the missed ticks are not
    replayed: the tick that was due fired once (late), and the next one is the first grid tick later
    than `now`. `remaining` counts firings actually made. A tick at or after `expires` is never
    scheduled (as in daprd's Scheduler, expiry applies to a tick's scheduled time, so a tick
    scheduled before it may still fire late).
    """
    if job.period is None:
        return None
    remaining = None if job.remaining is None else job.remaining - 1
    if remaining is not None and remaining <= 0:
        return None
    due = job.due + job.period
    if due <= now:
        skipped = math.floor((now - job.due) / job.period)
        due = job.due + (skipped + 1) * job.period
        while due <= now:  # float rounding
            due += job.period
    if job.expires is not None and due >= job.expires:
        return None
    return replace(job, due=due, remaining=remaining)
