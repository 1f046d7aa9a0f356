"""Pub/sub deliveries to the app channel: each event is recorded once (by its id) in the feed of its list's
owner and of every member the event names, and a completed occurrence item advances its series. Task events
and reminder notifications come in batches (Dapr bulk subscribe), so a batch costs one feed append whatever
its size (a burst of reminders due at one instant would otherwise be recorded one state transaction at a
time). Each subscription names a dead-letter topic (`<topic>-dead`) that the app subscribes to as well: an
event its handler drops, or that fails every retry, is kept for an operator (`api.channel.dead_letters`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import JsonValue

from api.channel.dead_letters import DeadLetters, dead_letter_topic
from api.channel.feed import Feed, FeedAppend
from api.middleware.metrics import ApiMetrics
from api.process.sidecar_link import SidecarError

__all__ = [
    "DEAD_LETTERED",
    "REMINDERS_TOPIC",
    "TASK_EVENTS_TOPIC",
    "Batching",
    "Deliveries",
    "DeliveryHandler",
]

log = logging.getLogger("api.channel")

TASK_EVENTS_TOPIC = "task-events"
REMINDERS_TOPIC = "reminders"
# The topics whose subscriptions dead-letter (to `dead_letter_topic(topic)`).
DEAD_LETTERED = (TASK_EVENTS_TOPIC, REMINDERS_TOPIC)

DeliveryHandler = Callable[[bytes], Awaitable[Mapping[str, Any]]]
"""Takes a delivery's body (the CloudEvent), returns the reply: `{"status": "SUCCESS" | "RETRY" | "DROP"}`."""

_SUCCESS, _RETRY, _DROP = ({"status": s} for s in ("SUCCESS", "RETRY", "DROP"))


@dataclass(frozen=True)
class Batching:
    """`bulkSubscribe` of the task-events subscription: at most `max_messages` events per delivery, held
    at most `window_ms` after the first (the sidecar's batching window, a latency floor at low load)."""

    max_messages: int = 100
    window_ms: int = 5


@dataclass
class _Parsed:
    appends: tuple[FeedAppend, ...]  # the owner's first, then each member's
    data: dict[str, Any]


class Deliveries:
    """The delivery handlers and the subscriptions they answer (`GET /dapr/subscribe`). The feed, the
    owner lookup and the series forwarding are given in `start`, once the channel's clients exist."""

    def __init__(self, pubsub: str, metrics: ApiMetrics, batching: Batching) -> None:
        self._pubsub = pubsub
        self._metrics = metrics
        self._batching = batching
        self._feed: Feed | None = None
        self._owner_of: Callable[[str], Awaitable[str | None]] | None = None
        self._forward: Callable[[Mapping[str, Any]], Awaitable[object]] | None = None
        self._dead_letters: DeadLetters | None = None
        self._fan_out: Callable[[Sequence[FeedAppend]], Awaitable[None]] | None = None

    def start(
        self,
        feed: Feed,
        owner_of: Callable[[str], Awaitable[str | None]],
        forward: Callable[[Mapping[str, Any]], Awaitable[object]] | None,
        dead_letters: DeadLetters | None = None,
        fan_out: Callable[[Sequence[FeedAppend]], Awaitable[None]] | None = None,
    ) -> None:
        """`fan_out` gets the events recorded in users' feeds (new or again), e.g. to start webhook
        deliveries; it must be idempotent by event id, as a failure makes the events come again."""
        self._feed, self._owner_of, self._forward = feed, owner_of, forward
        self._dead_letters = dead_letters
        self._fan_out = fan_out

    def stop(self) -> None:
        self._feed = self._owner_of = self._forward = self._dead_letters = self._fan_out = None

    def subscriptions(self) -> list[dict[str, Any]]:
        """The app's subscriptions, in the form daprd reads from `GET /dapr/subscribe`: each names its
        dead-letter topic, and each dead-letter topic has its own subscription (which names none: a dead
        letter the app cannot keep is retried, then dropped with daprd's error log, never looped)."""
        bulk = {
            "enabled": True,
            "maxMessagesCount": self._batching.max_messages,
            "maxAwaitDurationMs": self._batching.window_ms,
        }
        return [
            {
                "pubsubname": self._pubsub,
                "topic": TASK_EVENTS_TOPIC,
                "route": self.route(TASK_EVENTS_TOPIC),
                "metadata": {},
                "deadLetterTopic": dead_letter_topic(TASK_EVENTS_TOPIC),
                "bulkSubscribe": bulk,
            },
            {
                "pubsubname": self._pubsub,
                "topic": REMINDERS_TOPIC,
                "route": self.route(REMINDERS_TOPIC),
                "metadata": {},
                "deadLetterTopic": dead_letter_topic(REMINDERS_TOPIC),
                "bulkSubscribe": bulk,
            },
            *(
                {
                    "pubsubname": self._pubsub,
                    "topic": dead_letter_topic(topic),
                    "route": self.route(dead_letter_topic(topic)),
                    "metadata": {},
                }
                for topic in DEAD_LETTERED
            ),
        ]

    def route(self, topic: str) -> str:
        return f"/events/{self._pubsub}/{topic}"

    def handlers(self) -> dict[str, DeliveryHandler]:
        """Route path -> handler: the channel's delivery routes."""
        return {
            self.route(TASK_EVENTS_TOPIC): functools.partial(self.on_bulk, TASK_EVENTS_TOPIC),
            self.route(REMINDERS_TOPIC): functools.partial(self.on_bulk, REMINDERS_TOPIC),
            **{
                self.route(dead_letter_topic(t)): functools.partial(self.on_dead_letter, t)
                for t in DEAD_LETTERED
            },
        }

    async def on_dead_letter(self, topic: str, body: bytes) -> dict[str, str]:
        """A dead letter of `topic` (the original CloudEvent): kept once by its event id, and counted."""
        try:
            event = json.loads(body)
        except ValueError:
            event = None
        if not isinstance(event, dict):
            log.error("%s: dropping a dead letter that is not a JSON CloudEvent", dead_letter_topic(topic))
            return _DROP
        dead_letters = self._dead_letters
        if dead_letters is None:
            log.warning("%s: a dead letter before the channel is ready (will be retried)", topic)
            return _RETRY
        event_id = event.get("id")
        if not isinstance(event_id, str) or not event_id:
            # Not a CloudEvent daprd would deliver; keep it under its content so it is kept once all the same.
            event_id = "sha256:" + hashlib.sha256(body).hexdigest()
        try:
            kept = await dead_letters.keep(topic, dead_letter_topic(topic), event, event_id)
        except (*SidecarError, TimeoutError) as exc:
            log.warning("%s: could not keep dead letter %s (will be retried): %r", topic, event_id, exc)
            return _RETRY
        if kept != "duplicate":
            self._metrics.count_dead_letter(topic)
            log.warning("%s: event %s was dead-lettered (%s); kept for an operator", topic, event_id, kept)
        return _SUCCESS

    async def on_bulk(self, topic: str, body: bytes) -> dict[str, list[dict[str, str]]]:
        """A bulk delivery: `{"entries": [{"entryId", "event"}...]}` -> `{"statuses": [...]}` per entry."""
        try:
            entries = json.loads(body)["entries"]
        except (ValueError, KeyError, TypeError):
            entries = None
        if not isinstance(entries, list):
            # Not a bulk envelope: answering no status asks the sidecar to redeliver every entry.
            log.warning("%s: a delivery that is not a bulk envelope: %r", topic, body[:200])
            return {"statuses": []}
        statuses: list[dict[str, str]] = []
        ids: list[str] = []
        parsed: list[_Parsed] = []
        for entry in entries:
            entry_id = entry.get("entryId") if isinstance(entry, dict) else None
            if not isinstance(entry_id, str):
                log.warning("%s: a bulk entry without an entryId", topic)
                continue
            one = await self._parse(topic, entry.get("event"))
            if one is None:
                statuses.append({"entryId": entry_id, **_DROP})
            else:
                ids.append(entry_id)
                parsed.append(one)
        outcomes = await self._record(topic, parsed)
        for entry_id, one, status in zip(ids, parsed, outcomes, strict=True):
            if status is _SUCCESS and topic == TASK_EVENTS_TOPIC and self._forward is not None:
                # A completed occurrence item advances its series (anchor=completion); redelivery is harmless.
                try:
                    await self._forward(one.data)
                except Exception as exc:
                    log.warning("could not forward a completion to its series: %r", exc)
                    status = _RETRY
            statuses.append({"entryId": entry_id, **status})
        return {"statuses": statuses}

    async def _record(self, topic: str, parsed: list[_Parsed]) -> list[dict[str, str]]:
        """Append `parsed` to the feed in one go: SUCCESS for each (new or a duplicate), or RETRY for all."""
        if not parsed:
            return []
        feed = self._feed
        if feed is None:
            log.warning("%s: a delivery before the channel is ready (will be retried)", topic)
            return [_RETRY] * len(parsed)
        appends = [a for p in parsed for a in p.appends]
        try:
            cursors = await feed.append_batch(appends)
        except (*SidecarError, TimeoutError) as exc:
            log.warning("%s: could not record %d event(s) (will be retried): %r", topic, len(parsed), exc)
            for _ in parsed:
                self._metrics.count_delivery(topic, "retry")
            return [_RETRY] * len(parsed)
        at = 0
        for one in parsed:  # an event is new if any of its users' feeds got it
            mine, at = cursors[at : at + len(one.appends)], at + len(one.appends)
            self._metrics.count_delivery(topic, "duplicate" if all(c is None for c in mine) else "appended")
        if self._fan_out is not None:
            try:
                await self._fan_out(appends)
            except Exception as exc:
                log.warning(
                    "%s: could not fan out %d event(s) (will be retried): %r", topic, len(parsed), exc
                )
                return [_RETRY] * len(parsed)
        return [_SUCCESS] * len(parsed)

    async def _parse(self, topic: str, envelope: object) -> _Parsed | None:
        """The feed entry of one CloudEvent, or None (counted, logged) for one that can never be recorded."""
        if not isinstance(envelope, dict):
            log.warning("%s: dropping a delivery that is not a JSON CloudEvent", topic)
            self._metrics.count_delivery(topic, "dropped")
            return None
        event_id, event_type = envelope.get("id"), envelope.get("type")
        data = envelope.get("data")
        if isinstance(data, str):
            with contextlib.suppress(ValueError):
                data = json.loads(data)
        if not isinstance(event_id, str) or not isinstance(event_type, str) or not isinstance(data, dict):
            log.warning("%s: dropping a malformed event %r", topic, str(envelope)[:200])
            self._metrics.count_delivery(topic, "dropped")
            return None
        list_id, item_id = data.get("list_id"), data.get("item_id")
        owner = data.get("owner")
        if not isinstance(owner, str) and isinstance(list_id, str) and self._owner_of is not None:
            owner = await self._owner_of(list_id)
        if not isinstance(owner, str):
            log.warning("%s: dropping event %s: the owner of list %r is unknown", topic, event_id, list_id)
            self._metrics.count_delivery(topic, "dropped")
            return None
        # The list stamped its members on the event in the turn that made the change: each event reaches
        # exactly those who could read the list then, the same users on every redelivery.
        members = data.get("members")
        others = [m for m in members if isinstance(m, str)] if isinstance(members, list) else []
        appends = tuple(
            FeedAppend(
                user,
                event_id,
                event_type,
                _json_object(data),
                at=_instant(data.get("at") or data.get("fire_at")),
                list_id=list_id if isinstance(list_id, str) else None,
                item_id=item_id if isinstance(item_id, str) else None,
            )
            for user in dict.fromkeys([owner, *others])
        )
        return _Parsed(appends, data)


def _json_object(data: dict[str, Any]) -> dict[str, JsonValue]:
    return {str(k): v for k, v in data.items()}


def _instant(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None
