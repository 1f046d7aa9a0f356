"""Actor timers: in-memory only (never persisted), gone at deactivation or sidecar restart.

Each timer is one asyncio task waiting on the clock; its callback runs inside the actor's turn. A failing
callback is logged and the timer keeps its schedule (no retry), as in daprd.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

from sidecar.actors.runtime import Activation, ActorHost, app_path
from sidecar.actors.timefmt import parse_due_time, parse_period, parse_ttl
from sidecar.clock import Clock
from sidecar.errors import error

__all__ = ["TimerSpec", "Timers"]

log = logging.getLogger("sidecar.actors.timers")


@dataclass(frozen=True)
class TimerSpec:
    """What a caller asks for: `dueTime`, `period` and `ttl` as daprd takes them, the app method to call
    back (the SDK's `callback`) and the JSON value handed to it (None: null)."""

    due_time: str = ""
    period: str = ""
    ttl: str = ""
    callback: str = ""
    data: Any = None


class Timers:
    def __init__(self, host: ActorHost, clock: Clock) -> None:
        self.host = host
        self.clock = clock
        self._tasks: dict[tuple[str, str, str], asyncio.Task[None]] = {}
        self._dues: dict[tuple[str, str, str], float] = {}  # the instant each timer waits for
        host.on_deactivate(self._drop_actor)

    async def create(self, actor_type: str, actor_id: str, name: str, body: bytes) -> None:
        """The HTTP API's create: a JSON object with `dueTime`, `period`, `ttl`, `callback` and `data`."""
        await self._require_hosted(actor_type)
        try:
            req = json.loads(body or b"{}")
            if not isinstance(req, dict):
                raise ValueError("body is not a JSON object")
            due_s, period_s, ttl_s = (req.get(k) or "" for k in ("dueTime", "period", "ttl"))
        except ValueError as exc:
            raise error("ERR_ACTOR_TIMER_CREATE", f"error creating actor timer: {exc}") from exc
        spec = TimerSpec(due_s, period_s, ttl_s, req.get("callback", ""), req.get("data"))
        await self.start(actor_type, actor_id, name, spec)

    async def start(self, actor_type: str, actor_id: str, name: str, spec: TimerSpec) -> None:
        """Create or replace a timer (both wires)."""
        await self._require_hosted(actor_type)
        try:
            now = self.clock.now()
            due = parse_due_time(spec.due_time, now)
            period = parse_period(spec.period, scheduler_limits=False)  # timers never use the Scheduler
            expires = parse_ttl(spec.ttl, due, now) if spec.ttl else None
        except ValueError as exc:
            raise error("ERR_ACTOR_TIMER_CREATE", f"error creating actor timer: {exc}") from exc
        callback_body = json.dumps(
            {
                "data": spec.data,
                "callback": spec.callback,
                "dueTime": spec.due_time,
                "period": spec.period,
            },
            separators=(",", ":"),
        ).encode()
        key = (actor_type, actor_id, name)
        self._cancel(key)
        act = self.host.activation(actor_type, actor_id)
        if act.timers is None:
            act.timers = set()
        act.timers.add(name)
        self._tasks[key] = asyncio.create_task(
            self._run(key, due, period.seconds, period.repetitions, expires, callback_body),
            name=f"timer {actor_type}/{actor_id}/{name}",
        )

    async def _require_hosted(self, actor_type: str) -> None:
        await self.host.wait_ready()
        if not self.host.hosts(actor_type):
            raise error(
                "ERR_ACTOR_TIMER_CREATE",
                f"error creating actor timer: actor type {actor_type} is not hosted by this app",
            )

    async def delete(self, actor_type: str, actor_id: str, name: str) -> None:
        await self.host.wait_ready()
        self._cancel((actor_type, actor_id, name))

    def _cancel(self, key: tuple[str, str, str]) -> None:
        task = self._tasks.pop(key, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    def _drop_actor(self, act: Activation) -> None:
        for name in act.timers or ():
            self._cancel((act.actor_type, act.actor_id, name))
        act.timers = None

    async def _run(
        self,
        key: tuple[str, str, str],
        due: float,
        period: float | None,
        remaining: int | None,
        expires: float | None,
        body: bytes,
    ) -> None:
        actor_type, actor_id, name = key
        try:
            while True:
                if expires is not None and due >= expires:
                    return
                self._dues[key] = due
                await self.clock.wait_until(due)
                await self._fire(actor_type, actor_id, name, body)
                if remaining is not None:
                    remaining -= 1
                if period is None or remaining == 0:
                    return
                due += period
        finally:
            if self._tasks.get(key) is asyncio.current_task():
                del self._tasks[key]
                self._dues.pop(key, None)

    async def _fire(self, actor_type: str, actor_id: str, name: str, body: bytes) -> None:
        try:
            resp = await self.host.call_in_turn(
                actor_type,
                actor_id,
                app_path(actor_type, actor_id, f"/method/timer/{name}"),
                body,
                {"Content-Type": "application/json"},
                fresh_reentrancy=True,
            )
            if resp.status != 200:
                log.warning("timer %s on %s/%s: app answered %s", name, actor_type, actor_id, resp.status)
        except (OSError, TimeoutError) as exc:
            log.warning("timer %s on %s/%s failed: %s", name, actor_type, actor_id, exc)

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()

    def count(self) -> int:
        return len(self._tasks)

    def busy(self) -> str | None:
        """Timers due and not yet fired (their callback is queued or running), or None."""
        now = self.clock.now()
        due = sum(1 for key, at in self._dues.items() if at <= now and key in self._tasks)
        return f"{due} actor timer(s) firing" if due else None

    def next_due_after(self, now: float) -> float | None:
        """The earliest instant after `now` a timer waits for (the dev clock's time skipping steps to it)."""
        later = [due for key, due in self._dues.items() if due > now and key in self._tasks]
        return min(later) if later else None
