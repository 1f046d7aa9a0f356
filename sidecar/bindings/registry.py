"""The sidecar's input bindings at run time: which the app subscribes to, their ticks armed on the durable
Scheduler, each tick delivered to the app.

Each tick is a one-shot job (kind `input-binding`, key `binding||<name>`) re-armed at the schedule's next
instant when it fires, so ticks follow the sidecar's clock (a dev clock included) and a clock stepping
through due jobs fires each tick at its due time. As in daprd (robfig/cron, in memory), missed ticks are not
caught up: reading starts at the next instant after start-up, and a late tick fires once, then the schedule
resumes from the time it fired. The app's answer is logged, never retried (daprd without a resiliency
policy for the binding does not retry either). While app health checks report the app unhealthy, ticks are
skipped (daprd stops reading its input bindings then). A gRPC app is asked `ListInputBindings` and gets
`OnBindingEvent`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from sidecar.appchannel import AppChannel, ChannelBase
from sidecar.appchannel_grpc import AppCallError, GrpcAppChannel
from sidecar.bindings.cron import CronSpec, deliver, go_utc_string, probe
from sidecar.clock import Clock
from sidecar.scheduler import Scheduler
from sidecar.scheduler.model import Job

__all__ = ["JOB_KIND", "KEY_PREFIX", "InputBindings"]

log = logging.getLogger("sidecar.bindings")

JOB_KIND = "input-binding"
KEY_PREFIX = "binding||"


class InputBindings:
    """The loaded input bindings; `start()` (once the app listens) begins reading the subscribed ones."""

    def __init__(
        self, specs: Mapping[str, CronSpec], scheduler: Scheduler, channel: ChannelBase, clock: Clock
    ) -> None:
        self._specs = dict(specs)
        self._scheduler = scheduler
        self._channel = channel
        self._clock = clock
        self._reading: set[str] = set()
        self.fired: dict[str, int] = {}  # ticks delivered per binding (answered 2xx), for metadata and tests
        scheduler.register(JOB_KIND, self._fire)

    @property
    def reading(self) -> frozenset[str]:
        return frozenset(self._reading)

    async def start(self) -> None:
        """daprd's `StartReadingFromBindings`: probe each binding, arm the subscribed ones from now."""
        stale = [j.key for j in await self._scheduler.list_prefix(KEY_PREFIX)]
        for key in stale:  # no catch-up of ticks missed while down, and no jobs of removed bindings
            await self._scheduler.delete(key)
        if not self._specs:
            return
        if not self._channel.configured:
            log.warning("app channel not initialized: input bindings %s are not read", sorted(self._specs))
            return
        for name, spec in self._specs.items():
            try:
                subscribed = await self._subscribed(spec)
            except (OSError, TimeoutError, AppCallError) as exc:
                log.error(
                    "could not invoke OPTIONS method on input binding subscription endpoint %r: %s",
                    spec.route,
                    exc,
                )
                continue
            if not subscribed:
                log.info("app has not subscribed to binding %s.", name)
                continue
            self._reading.add(name)
            await self._arm(spec, self._clock.now())
            log.info("input binding %s (%s) reading, schedule %r", name, spec.type, spec.schedule_text)

    async def _subscribed(self, spec: CronSpec) -> bool:
        channel = self._channel
        if isinstance(channel, GrpcAppChannel):
            return spec.explicit_input or spec.name in await channel.list_input_bindings()
        assert isinstance(channel, AppChannel)
        return await probe(channel, spec)

    async def _arm(self, spec: CronSpec, after: float) -> None:
        due = spec.schedule.next_after(after)
        if due is None:  # e.g. "0 0 0 30 2 *": robfig accepts it and never fires
            log.warning("binding %s: schedule %r has no next activation", spec.name, spec.schedule_text)
            return
        await self._scheduler.put(Job(KEY_PREFIX + spec.name, JOB_KIND, due, payload=spec.name.encode()))

    async def _fire(self, job: Job) -> None:
        name = job.payload.decode()
        spec = self._specs.get(name)
        if spec is None or name not in self._reading:
            return  # a job of a binding no longer read: completing it deletes it
        now = self._clock.now()
        # Re-arm first: like robfig, the next tick is set when this one starts, and a slow app does
        # not delay it. The job's key is replaced, so completing this firing leaves the new one.
        await self._arm(spec, max(now, job.due))
        if not self._channel.healthy():
            log.debug("binding %s: tick skipped, the app is unhealthy", name)
            return
        if isinstance(self._channel, GrpcAppChannel):
            await self._fire_grpc(self._channel, spec, now)
            return
        assert isinstance(self._channel, AppChannel)
        try:
            response = await deliver(self._channel, spec, now)
        except (OSError, TimeoutError) as exc:
            log.debug("error from app consumer for binding [%s]: error invoking app: %s", name, exc)
            return
        if not 200 <= response.status <= 299:
            log.debug(
                "error from app consumer for binding [%s]: fails to send binding event to http app channel, "
                "status code: %d body: %s",
                name,
                response.status,
                response.body.decode("utf-8", "replace"),
            )
            return
        self.fired[name] = self.fired.get(name, 0) + 1

    async def _fire_grpc(self, channel: GrpcAppChannel, spec: CronSpec, now: float) -> None:
        """`OnBindingEvent` with the cron binding's read metadata (components-contrib's keys)."""
        metadata = {"timeZone": "Local", "readTimeUTC": go_utc_string(now)}
        try:
            reply = await channel.on_binding_event(spec.name, b"", metadata)
        except (AppCallError, OSError, TimeoutError) as exc:
            log.debug("error from app consumer for binding [%s]: error invoking app: %s", spec.name, exc)
            return
        if reply.store_name or reply.to or reply.states:
            # daprd would save `states` and send `data` to the `to` output bindings: not implemented here
            log.error(
                "binding %s: the app's BindingEventResponse asks for state saves or output bindings, "
                "which the embedded sidecar does not perform; use the state and bindings APIs instead",
                spec.name,
            )
        self.fired[spec.name] = self.fired.get(spec.name, 0) + 1
