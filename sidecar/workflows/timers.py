"""Durable timers and scheduled starts, kept in `wf_timers`/`wf_instances` and armed in the Scheduler.

The turn's transaction records the timer; arming the scheduler job follows the commit, and `rearm()`
repeats it on start-up, so a crash between the two loses nothing. Job keys carry the generation, so a
timer of a continued-as-new or reused instance can never fire into its successor.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Iterable

from sidecar.clock import Clock
from sidecar.db import Database
from sidecar.groupcommit import GroupCommit
from sidecar.scheduler import Job, RetryPolicy, Scheduler
from sidecar.workflows import store
from sidecar.workflows.history import event, pb
from sidecar.workflows.lifecycle import Effects, post
from sidecar.workflows.store import TimerRow

__all__ = ["JOB_KIND", "TimerBridge", "job_key", "job_prefix"]

log = logging.getLogger("sidecar.workflows.timers")

JOB_KIND = "workflow-timer"


def job_prefix(instance_id: str, generation: int | None = None) -> str:
    base = f"wf||{instance_id}||"
    return base if generation is None else f"{base}{generation}:"


def job_key(instance_id: str, generation: int, timer_id: int | None) -> str:
    """`wf||<instance>||<generation>:<timer id>`, or `...:start` for a scheduled start."""
    return job_prefix(instance_id, generation) + ("start" if timer_id is None else str(timer_id))


def _job(instance_id: str, generation: int, timer_id: int | None, due: float) -> Job:
    payload = json.dumps({"i": instance_id, "g": generation, "t": timer_id}).encode()
    return Job(key=job_key(instance_id, generation, timer_id), kind=JOB_KIND, due=due, payload=payload)


class TimerBridge:
    """Moves timers between the workflow tables and the shared Scheduler."""

    def __init__(
        self,
        db: Database,
        tx: GroupCommit,
        scheduler: Scheduler,
        clock: Clock,
        apply: Callable[[Effects], Awaitable[None]],
    ) -> None:
        self._db = db
        self._tx = tx
        self._scheduler = scheduler
        self._clock = clock
        self._apply = apply

    def register(self) -> None:
        # daprd retries workflow reminders forever: a durable timer must never be dropped.
        self._scheduler.register(JOB_KIND, self._fire, retry=RetryPolicy(max_retries=None))

    async def arm(self, timers: Iterable[TimerRow], starts: Iterable[tuple[str, int, float]]) -> None:
        jobs = [_job(t.instance_id, t.generation, t.timer_id, t.due) for t in timers]
        jobs += [_job(i, g, None, due) for i, g, due in starts]
        if jobs:
            await self._scheduler.put_many(jobs)

    async def drop(self, targets: Iterable[tuple[str, int | None]]) -> None:
        for instance_id, generation in targets:
            await self._scheduler.delete_prefix(job_prefix(instance_id, generation))

    async def rearm(self) -> int:
        """Arm every recorded timer and scheduled start again (idempotent upserts)."""

        def read(conn: sqlite3.Connection) -> tuple[list[TimerRow], list[tuple[str, int, float]]]:
            return store.timers(conn), store.pending_starts(conn)

        timers, starts = await self._db.run(read)
        await self.arm(timers, starts)
        return len(timers) + len(starts)

    async def _fire(self, job: Job) -> None:
        spec = json.loads(job.payload)
        instance_id, generation, timer_id = spec["i"], spec["g"], spec["t"]
        now = self._clock.now()

        def fire(conn: sqlite3.Connection) -> Effects:
            fx = Effects()
            if timer_id is None:
                row = store.get_instance(conn, instance_id)
                if row is not None and row.generation == generation and row.start_due is not None:
                    row.start_due = None
                    store.save_instance(conn, row)
                    fx.ready.add(instance_id)
                return fx
            timer = store.take_timer(conn, instance_id, generation, timer_id)
            if timer is not None:
                fired = pb.TimerFiredEvent(timerId=timer_id)
                fired.fireAt.seconds, fired.fireAt.nanos = timer.fire_s, timer.fire_ns
                post(conn, fx, instance_id, event(now, timerFired=fired))
            return fx

        fx = await self._tx.run(fire)
        if fx.ready:
            log.debug("timer %s fired", job.key)
        await self._apply(fx)
