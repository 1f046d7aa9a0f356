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
import dataclasses
import json
import logging
from dataclasses import dataclass
from typing import Any

from sidecar.actors.runtime import ActorHost, app_path
from sidecar.actors.timefmt import (
    format_every,
    format_rfc3339,
    is_rfc3339,
    parse_due_time,
    parse_period,
    parse_ttl,
)
from sidecar.clock import Clock
from sidecar.errors import error
from sidecar.scheduler import Job, Scheduler

__all__ = ["JOB_KIND", "ReminderInfo", "ReminderSpec", "Reminders"]

log = logging.getLogger("sidecar.actors.reminders")

JOB_KIND = "actor-reminder"


def _job_key(actor_type: str, actor_id: str, name: str) -> str:
    return f"reminder||{actor_type}||{actor_id}||{name}"


def _job_prefix(actor_type: str, actor_id: str | None) -> str:
    return f"reminder||{actor_type}||" if actor_id is None else f"reminder||{actor_type}||{actor_id}||"


@dataclass(frozen=True)
class ReminderSpec:
    """What a caller asks for: `dueTime`, `period` and `ttl` strings as daprd takes them, the JSON value
    handed back on each firing (None: no data), and whether an existing reminder of that name is replaced."""

    due_time: str = ""
    period: str = ""
    ttl: str = ""
    data: Any = None
    overwrite: bool = True


@dataclass(frozen=True)
class ReminderInfo:
    """A stored reminder as daprd reports it: the due time as given, the Scheduler's schedule as period
    (`@every 1m0s`, "" for a one-shot), the expiry as RFC 3339 when the ttl was given as an instant (daprd
    parses the stored ttl with RFC3339Nano and drops a duration), the data's JSON value (None: none)."""

    name: str
    actor_type: str
    actor_id: str
    due_time: str
    period: str
    ttl: str
    data: Any


def _info(job: Job) -> ReminderInfo:
    _, actor_type, actor_id, name = job.key.split("||", 3)
    payload = json.loads(job.payload)
    ttl = payload.get("ttl", "")
    return ReminderInfo(
        name=name,
        actor_type=actor_type,
        actor_id=actor_id,
        due_time=payload.get("dueTime") or "",
        period=format_every(job.period) if job.period is not None else "",
        ttl=format_rfc3339(job.expires) if job.expires is not None and is_rfc3339(ttl) else "",
        data=payload.get("data"),
    )


# Both wires refuse a reminder's own failure policy (daprd 1.15+ takes one): ticks follow one policy here.
FAILURE_POLICY_REFUSED = (
    "a reminder's failure_policy is not supported by the embedded todo-engine sidecar: a reminder's tick "
    "is retried 3 times, 1 s apart (daprd's default policy)"
)


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
                "operations on actor reminders are only possible on hosted actor types",
            )

    async def create(self, actor_type: str, actor_id: str, name: str, body: bytes) -> None:
        """The HTTP API's create: a JSON object with `dueTime`, `period`, `ttl` and `data`."""
        await self._require_hosted(actor_type)
        try:
            req = json.loads(body or b"{}")
        except ValueError as exc:
            raise error("ERR_MALFORMED_REQUEST", f"failed deserializing HTTP body: {exc}") from exc
        if not isinstance(req, dict):
            raise error("ERR_MALFORMED_REQUEST", "failed deserializing HTTP body: not an object")
        if req.get("failure_policy") is not None:
            raise error("ERR_API_UNIMPLEMENTED", FAILURE_POLICY_REFUSED)
        due_s = req.get("dueTime") or ""
        period_s = req.get("period") or ""
        ttl_s = req.get("ttl") or ""
        if not all(isinstance(v, str) for v in (due_s, period_s, ttl_s)):
            raise error("ERR_MALFORMED_REQUEST", "dueTime, period and ttl must be strings")
        await self.put(actor_type, actor_id, name, ReminderSpec(due_s, period_s, ttl_s, req.get("data")))

    async def put(self, actor_type: str, actor_id: str, name: str, spec: ReminderSpec) -> None:
        """Create or (unless `spec.overwrite` is false) replace a reminder (both wires)."""
        await self._require_hosted(actor_type)
        now = self.clock.now()
        try:
            if not spec.due_time and not spec.period:
                raise ValueError("reminder must have a due time or a period")
            due = parse_due_time(spec.due_time, now)
            period = parse_period(spec.period)
            expires = parse_ttl(spec.ttl, due, now) if spec.ttl else None
            if expires is not None and period.seconds is None:
                raise ValueError("job must have a schedule to have a ttl")
        except ValueError as exc:
            raise error("ERR_ACTOR_REMINDER_CREATE", f"error creating actor reminder: {exc}") from exc
        payload: dict[str, Any] = {"dueTime": spec.due_time, "period": spec.period}
        if spec.ttl:
            payload["ttl"] = spec.ttl
        if spec.data is not None:
            payload["data"] = spec.data
        key = _job_key(actor_type, actor_id, name)
        # As daprd's Scheduler: refused when the name is taken (checked, then written: not atomic).
        if not spec.overwrite and await self.scheduler.get(key) is not None:
            raise error("ERR_ACTOR_REMINDER_ALREADY_EXISTS", f"actor reminder already exists: {name}")
        job = Job(
            key=key,
            kind=JOB_KIND,
            due=due,
            period=period.seconds,
            remaining=period.repetitions,
            expires=expires,
            payload=json.dumps(payload, separators=(",", ":")).encode(),
        )
        await self.scheduler.put(job)

    async def get(self, actor_type: str, actor_id: str, name: str) -> dict[str, Any]:
        """The HTTP API's answer: the reminder as JSON, `{}` when there is none."""
        found = await self.info(actor_type, actor_id, name)
        if found is None:
            return {}
        out: dict[str, Any] = {"actorID": actor_id, "actorType": actor_type}
        if found.due_time:
            out["dueTime"] = found.due_time
        if found.period:
            out["period"] = found.period
        if found.data is not None:
            out["data"] = found.data
        return out

    async def info(self, actor_type: str, actor_id: str, name: str) -> ReminderInfo | None:
        await self._require_hosted(actor_type)
        job = await self.scheduler.get(_job_key(actor_type, actor_id, name))
        return None if job is None else _info(job)

    async def list_all(self, actor_type: str, actor_id: str | None = None) -> list[ReminderInfo]:
        """The reminders of a type, or of one actor of it (gRPC `ListActorReminders`); daprd's list
        leaves out the ttl."""
        await self._require_hosted(actor_type)
        jobs = await self.scheduler.list_prefix(_job_prefix(actor_type, actor_id))
        return [dataclasses.replace(_info(job), ttl="") for job in jobs]

    async def delete(self, actor_type: str, actor_id: str, name: str) -> None:
        await self._require_hosted(actor_type)
        await self.scheduler.delete(_job_key(actor_type, actor_id, name))

    async def delete_all(self, actor_type: str, actor_id: str | None = None) -> int:
        """Remove the reminders of a type, or of one actor of it (gRPC `UnregisterActorRemindersByType`)."""
        await self._require_hosted(actor_type)
        return await self.scheduler.delete_prefix(_job_prefix(actor_type, actor_id))

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
