"""A list's side effects (events to publish, actor reminders to (un)register) kept in its actor state.

They are written under `outbox` in the same state transaction as the change that caused them and
applied right after it. What failed stays and is retried on the next flush, on activation and by a
periodic `outbox:retry` reminder; so a crash between save and publish repeats an event (same id,
subscribers dedupe) but never loses it, and state and registered reminders cannot drift apart.

Done effects must leave the store too, or a later activation repeats them. Task events alone wait for
the next change's transaction (which rewrites `outbox` anyway) or the actor's deactivation: one state
write per change instead of two, and a repeat after a crash is deduplicated by event id. Reminder
registrations and notifications are removed in the same turn: a repeat would notify the user again.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

from dapr.actor import Actor
from pydantic import BaseModel, ConfigDict

from todo_actors.actor_state import ActorStore
from todo_actors.due import UtcDatetime
from todo_actors.events import ListEvent, MemberEvent
from todo_actors.publisher import EventPublisher
from todo_actors.reminders import ReminderChanges, delay_until, reminder_payload
from todo_actors.serializer import PydanticSerializer

__all__ = [
    "OUTBOX_KEY",
    "RETRY_REMINDER",
    "Outbox",
    "OutboxEvent",
    "OutboxState",
    "ReminderOp",
    "reminder_ops",
    "task_event_type",
]

log = logging.getLogger("todo_actors.outbox")

# A Go `time.Duration` (how Dapr carries a reminder's due time) holds at most 2,562,047 hours.
MAX_REMINDER_DELAY = dt.timedelta(hours=2_562_047)

OUTBOX_KEY = "outbox"
RETRY_REMINDER = "outbox:retry"

_SERIALIZER = PydanticSerializer()

E = TypeVar("E", "ReminderOp", "OutboxEvent")


def task_event_type(event: ListEvent) -> str:
    """The CloudEvent `type` of a list's event: `task.created`, `task.completed`, ..., `member.added`, ..."""
    return event.type if isinstance(event, MemberEvent) else f"task.{event.type}"


class OutboxEvent(BaseModel):
    """An event to publish; `data` is its JSON text, kept verbatim so a replay sends the same bytes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    topic: str
    id: str
    type: str
    data: str

    @classmethod
    def of(cls, topic: str, event_id: str, event_type: str, payload: BaseModel) -> OutboxEvent:
        return cls(topic=topic, id=event_id, type=event_type, data=_SERIALIZER.serialize(payload).decode())


class ReminderOp(BaseModel):
    """Register the actor reminder `name` to fire at `fire_at`, or unregister it (`fire_at` None)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    fire_at: UtcDatetime | None = None


def reminder_ops(changes: ReminderChanges) -> tuple[ReminderOp, ...]:
    return (
        *(ReminderOp(name=n) for n in sorted(changes.to_unregister)),
        *(ReminderOp(name=n, fire_at=at) for n, at in sorted(changes.to_register.items())),
    )


class OutboxState(BaseModel):
    """The `outbox` state value: side effects not yet known to be done, in the order they happened."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reminders: tuple[ReminderOp, ...] = ()
    events: tuple[OutboxEvent, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.reminders and not self.events

    def then(self, later: OutboxState) -> OutboxState:
        """These effects followed by `later`; for a reminder name only the last operation matters."""
        ops = {op.name: op for op in (*self.reminders, *later.reminders)}
        return OutboxState(reminders=tuple(ops.values()), events=(*self.events, *later.events))


_EMPTY = OutboxState()


class Outbox:
    """The outbox of one actor activation, over the actor's state manager, reminders and timers.

    The actor stages effects before its commit and calls `flush()` after it, and `release()` when
    it is deactivated; every method runs inside the actor's turn. Slotted: one per active list.
    """

    __slots__ = (
        "_actor",
        "_clock",
        "_loaded",
        "_pending",
        "_publisher",
        "_pubsub",
        "_retry_armed",
        "_retry_every",
        "_stale",
        "_store",
    )

    def __init__(
        self,
        actor: Actor,
        store: ActorStore,
        publisher: EventPublisher,
        pubsub: str,
        clock: Callable[[], dt.datetime],
        retry_every: dt.timedelta,
    ) -> None:
        self._actor = actor
        self._store = store
        self._publisher = publisher
        self._pubsub = pubsub
        self._clock = clock
        self._retry_every = retry_every
        self._pending = _EMPTY
        self._loaded = False
        # The stored outbox still holds effects that are done (cleared by the next write or `release`).
        self._stale = False
        self._retry_armed = False

    @property
    def pending(self) -> OutboxState:
        return self._pending

    async def load(self) -> None:
        """Read the stored outbox (once per activation, or again after `forget()`)."""
        if self._loaded:
            return
        found, value = await self._store.try_get(OUTBOX_KEY)
        self._pending = OutboxState.model_validate(value) if found else _EMPTY
        self._loaded, self._stale = True, False

    def forget(self) -> None:
        """Drop what is in memory (after a failed save): the next use reloads the stored outbox."""
        self._pending = _EMPTY
        self._loaded = self._stale = False

    async def stage(self, events: Iterable[OutboxEvent] = (), reminders: Iterable[ReminderOp] = ()) -> None:
        """Add effects to the pending ones; they are stored by the actor's next commit."""
        more = OutboxState(reminders=tuple(reminders), events=tuple(events))
        if more.empty:
            return
        await self.load()  # never overwrite stored effects this activation has not seen
        self._pending = self._pending.then(more)
        # Overwrites the stored value, dropping the effects that are done: no separate cleanup write.
        self._store.set(OUTBOX_KEY, self._pending)
        self._stale = False

    async def flush(self, *, clean_now: bool = False) -> bool:
        """Apply pending effects in order (reminders, then events); what was done leaves the store in
        this turn if it held reminder operations or `clean_now` is set (else later: see the module).

        Never raises: a failed effect and everything after it (per kind) stay pending and a retry
        reminder is armed. Returns True when nothing is left pending.
        """
        try:
            await self.load()
        except Exception:
            log.warning("actor %s: cannot read its outbox", self._actor.id, exc_info=True)
            return False
        pending = self._pending
        clean_now = clean_now or bool(pending.reminders)
        if not pending.empty:
            now = self._clock()
            done_r = await _run_in_order(pending.reminders, lambda op: self._apply(op, now), self._actor)
            done_e = await _run_in_order(pending.events, self._publish, self._actor)
            self._pending = OutboxState(reminders=pending.reminders[done_r:], events=pending.events[done_e:])
            self._stale = self._stale or self._pending != pending
        if self._stale and clean_now:
            await self._write()
        if self._pending.empty:
            await self._disarm_retry()
        else:
            await self._arm_retry()
        return self._pending.empty

    async def release(self) -> None:
        """The actor is being deactivated: write the outbox without its done effects, so the next
        activation does not publish them again. A failure only means a repeat (same ids) later."""
        if self._loaded and self._stale:
            await self._write()

    async def on_retry_reminder(self) -> None:
        """The `outbox:retry` reminder fired: flush, and stop the reminder once nothing is pending."""
        self._retry_armed = True
        await self.flush(clean_now=True)

    async def _apply(self, op: ReminderOp, now: dt.datetime) -> None:
        if op.fire_at is None:
            await self._actor.unregister_reminder(op.name)
        elif delay_until(op.fire_at, now) > MAX_REMINDER_DELAY:
            # Dapr carries a reminder's due time as a Go duration (at most ~292 years): one further out
            # can never be registered, and retrying it every few seconds would never end. It is skipped.
            log.info("reminder %s at %s is beyond Dapr's reach; not registered", op.name, op.fire_at)
        else:
            await self._actor.register_reminder(
                op.name, reminder_payload(op.fire_at), delay_until(op.fire_at, now), None
            )

    async def _publish(self, event: OutboxEvent) -> None:
        await self._publisher.publish(self._pubsub, event.topic, event.id, event.type, event.data.encode())

    async def _write(self) -> None:
        try:
            if self._pending.empty:
                self._store.remove(OUTBOX_KEY)
            else:
                self._store.set(OUTBOX_KEY, self._pending)
            await self._store.commit()
            self._stale = False
        except Exception:
            # The store keeps the larger outbox: its done effects are repeated later, harmlessly.
            log.warning("actor %s: cannot shrink its outbox", self._actor.id, exc_info=True)

    async def _arm_retry(self) -> None:
        if self._retry_armed:
            return
        try:
            await self._actor.register_reminder(
                RETRY_REMINDER, b"", self._retry_every, self._retry_every, None
            )
            self._retry_armed = True
        except Exception:
            # Activation flushes the outbox again, so the effects are still not lost.
            log.warning("actor %s: cannot arm the outbox retry reminder", self._actor.id, exc_info=True)

    async def _disarm_retry(self) -> None:
        if not self._retry_armed:
            return
        try:
            await self._actor.unregister_reminder(RETRY_REMINDER)
            self._retry_armed = False
        except Exception:
            log.warning("actor %s: cannot stop the outbox retry reminder", self._actor.id, exc_info=True)


async def _run_in_order(effects: tuple[E, ...], run: Callable[[E], Awaitable[None]], actor: Actor) -> int:
    """Run effects one by one until one fails; returns how many succeeded."""
    for done, effect in enumerate(effects):
        try:
            await run(effect)
        except Exception:
            log.warning("actor %s: side effect failed, kept for retry: %r", actor.id, effect, exc_info=True)
            return done
    return len(effects)
