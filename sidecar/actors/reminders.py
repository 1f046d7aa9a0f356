"""Actor reminders as durable scheduler jobs (daprd ≥ 1.15 semantics: Scheduler reminders).

A reminder is one `Job` keyed by actor and name; firing it calls the app's `remind/<name>` route inside the
actor's turn. A non-200 reply fails the tick, which the scheduler retries (1 s, 3 times) before moving on;
delivery is at-least-once and never early. An app that cannot be reached (refused, reset: it is down or
restarting) hosts no actors at that moment: as in daprd with app health checks, where an unhealthy app leaves
placement and its reminders wait in the Scheduler, the reminder waits for the app instead of spending its
retries, so a crashed app loses none.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from sidecar.actors.runtime import ActorHost, app_path
from sidecar.actors.timefmt import format_every, parse_due_time, parse_period, parse_ttl
from sidecar.clock import Clock
from sidecar.errors import error
from sidecar.scheduler import Job, Scheduler

__all__ = ["JOB_KIND", "Reminders"]

log = logging.getLogger("sidecar.actors.reminders")

JOB_KIND = "actor-reminder"


def _job_key(actor_type: str, actor_id: str, name: str) -> str:
    return f"reminder||{actor_type}||{actor_id}||{name}"


class ReminderFailed(Exception):
    """The app did not accept a reminder callback; the scheduler retries the tick."""


class Reminders:
    def __init__(
        self, host: ActorHost, scheduler: Scheduler, clock: Clock, *, callback_shape: str = "1.15"
    ) -> None:
        self.host = host
        self.scheduler = scheduler
        self.clock = clock
        self.callback_shape = callback_shape
        scheduler.register(JOB_KIND, self._fire)

    async def _require_hosted(self, actor_type: str) -> None:
        await self.host.wait_ready()
        if not self.host.hosts(actor_type):
            raise error(
                "ERR_ACTOR_REMINDER_NON_HOSTED",
                f"operation is not supported: actor type {actor_type} is not hosted by this app",
            )

    async def create(self, actor_type: str, actor_id: str, name: str, body: bytes) -> None:
        await self._require_hosted(actor_type)
        try:
            req = json.loads(body or b"{}")
        except ValueError as exc:
            raise error("ERR_MALFORMED_REQUEST", f"failed deserializing HTTP body: {exc}") from exc
        if not isinstance(req, dict):
            raise error("ERR_MALFORMED_REQUEST", "failed deserializing HTTP body: not an object")
        due_s = req.get("dueTime") or ""
        period_s = req.get("period") or ""
        ttl_s = req.get("ttl") or ""
        if not all(isinstance(v, str) for v in (due_s, period_s, ttl_s)):
            raise error("ERR_MALFORMED_REQUEST", "dueTime, period and ttl must be strings")
        now = self.clock.now()
        try:
            if not due_s and not period_s:
                raise ValueError("reminder must have a due time or a period")
            due = parse_due_time(due_s, now)
            period = parse_period(period_s)
            expires = parse_ttl(ttl_s, due, now) if ttl_s else None
            if expires is not None and period.seconds is None:
                raise ValueError("job must have a schedule to have a ttl")
        except ValueError as exc:
            raise error("ERR_ACTOR_REMINDER_CREATE", f"error creating actor reminder: {exc}") from exc
        payload: dict[str, Any] = {"dueTime": due_s, "period": period_s}
        if "data" in req and req["data"] is not None:
            payload["data"] = req["data"]
        job = Job(
            key=_job_key(actor_type, actor_id, name),
            kind=JOB_KIND,
            due=due,
            period=period.seconds,
            remaining=period.repetitions,
            expires=expires,
            payload=json.dumps(payload, separators=(",", ":")).encode(),
        )
        await self.scheduler.put(job)

    async def get(self, actor_type: str, actor_id: str, name: str) -> dict[str, Any]:
        await self._require_hosted(actor_type)
        job = await self.scheduler.get(_job_key(actor_type, actor_id, name))
        if job is None:
            return {}
        payload = json.loads(job.payload)
        out: dict[str, Any] = {"actorID": actor_id, "actorType": actor_type}
        if payload.get("dueTime"):
            out["dueTime"] = payload["dueTime"]
        if job.period is not None:
            out["period"] = format_every(job.period)
        if "data" in payload:
            out["data"] = payload["data"]
        return out

    async def delete(self, actor_type: str, actor_id: str, name: str) -> None:
        await self._require_hosted(actor_type)
        await self.scheduler.delete(_job_key(actor_type, actor_id, name))

    def _callback_body(self, payload: dict[str, Any]) -> bytes:
        if self.callback_shape == "1.14":
            body: dict[str, Any] = {"dueTime": payload["dueTime"], "period": payload["period"]}
        else:
            body = {"dueTime": "", "period": ""}
        if "data" in payload:
            body["data"] = payload["data"]
        return json.dumps(body, separators=(",", ":")).encode()

    async def _fire(self, job: Job) -> None:
        _, actor_type, actor_id, name = job.key.split("||", 3)
        await self.host.wait_ready()
        if self.host.closed:
            raise ReminderFailed("actor runtime closed")
        payload = json.loads(job.payload)
        while True:
            try:
                resp = await self.host.call_in_turn(
                    actor_type,
                    actor_id,
                    app_path(actor_type, actor_id, f"/method/remind/{name}"),
                    self._callback_body(payload),
                    {"Content-Type": "application/json"},
                    fresh_reentrancy=True,
                )
                break
            except ConnectionError as exc:
                if self.host.closed:
                    raise ReminderFailed(f"reminder {name} for {actor_type}/{actor_id}: {exc}") from exc
                log.warning("reminder %s for %s/%s waits for the app: %s", name, actor_type, actor_id, exc)
                await self.host.channel.wait_until_listening()
                await asyncio.sleep(0.1)  # an app that accepts and then drops every call is not spun on
            except (OSError, TimeoutError) as exc:
                raise ReminderFailed(f"reminder {name} for {actor_type}/{actor_id}: {exc}") from exc
        if resp.status != 200:
            log.warning("reminder %s for %s/%s: app answered %s", name, actor_type, actor_id, resp.status)
            raise ReminderFailed(f"app answered {resp.status}")
