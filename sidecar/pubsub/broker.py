"""One `pubsub.in-memory` component: fan-out to subscription queues, plus daprd's topic scopes.

A message goes to every subscription whose topic matches (exact or `prefix*`); nothing is persisted.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["BrokerClosed", "BrokerSpec", "InMemoryBroker", "TopicScopes", "topic_matches"]

log = logging.getLogger("sidecar.pubsub.broker")

SUPPORTED_TYPE = "pubsub.in-memory"


@dataclass(frozen=True)
class BrokerSpec:
    """A pubsub component as the component loader read it from YAML."""

    name: str
    type: str
    version: str = "v1"
    metadata: Mapping[str, str] = field(default_factory=dict)


class BrokerClosed(Exception):
    """The component was closed; publishing fails with `ERR_PUBSUB_PUBLISH_MESSAGE` (retryable)."""


def _find(metadata: Mapping[str, str], key: str) -> str:
    for name, value in metadata.items():
        if name.lower() == key.lower():
            return value
    return ""


def _topics(value: str) -> list[str]:
    seen: dict[str, None] = {}
    for topic in value.replace(" ", "").split(","):
        seen.setdefault(topic, None)
    return list(seen)


def _scoped_topics(value: str, app_id: str) -> list[str]:
    """`publishingScopes`/`subscriptionScopes`: "app1=t1,t2;app2=t3" -> this app's topics."""
    seen: dict[str, None] = {}
    for entry in value.replace(" ", "").split(";"):
        parts = entry.split("=")
        if len(parts) >= 2 and parts[0] == app_id:
            for topic in parts[1].split(","):
                seen.setdefault(topic, None)
    return list(seen)


@dataclass(frozen=True)
class TopicScopes:
    """Which topics this app may publish to and subscribe on, per daprd's scoping rules."""

    allowed: tuple[str, ...] = ()
    protected: tuple[str, ...] = ()
    publishing: tuple[str, ...] = ()
    subscribing: tuple[str, ...] = ()

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, str], app_id: str) -> TopicScopes:
        def listed(key: str) -> tuple[str, ...]:
            value = _find(metadata, key)
            return tuple(_topics(value)) if value else ()

        def scoped(key: str) -> tuple[str, ...]:
            value = _find(metadata, key)
            return tuple(_scoped_topics(value, app_id)) if value else ()

        return cls(
            allowed=listed("allowedTopics"),
            protected=listed("protectedTopics"),
            publishing=scoped("publishingScopes"),
            subscribing=scoped("subscriptionScopes"),
        )

    def _allowed(self, topic: str, scoped: tuple[str, ...]) -> bool:
        if self.allowed and topic not in self.allowed:
            return False
        if topic not in self.protected and not scoped:
            return True
        return topic in scoped  # a protected topic, or any topic once scopes are set

    def may_publish(self, topic: str) -> bool:
        return self._allowed(topic, self.publishing)

    def may_subscribe(self, topic: str) -> bool:
        return self._allowed(topic, self.subscribing)


def topic_matches(pattern: str, topic: str) -> bool:
    """contrib eventbus matching: exact, or `prefix*` for topics that extend `prefix`."""
    if pattern == topic:
        return True
    return pattern.endswith("*") and topic.startswith(pattern[:-1]) and topic != pattern[:-1]


class Subscriber(Protocol):
    """What the broker hands messages to (a delivery worker)."""

    @property
    def topic(self) -> str: ...

    @property
    def pending(self) -> int: ...

    async def enqueue(self, data: bytes, *, wait: bool) -> None: ...

    async def idle(self) -> None: ...


class InMemoryBroker:
    """The in-memory bus of one component: publish hands bytes to each matching subscriber queue."""

    def __init__(self, spec: BrokerSpec, app_id: str) -> None:
        if spec.type != SUPPORTED_TYPE:
            raise ValueError(f"pubsub component {spec.name!r} has type {spec.type!r}, not {SUPPORTED_TYPE}")
        self.spec = spec
        self.name = spec.name
        self.scopes = TopicScopes.from_metadata(spec.metadata, app_id)
        self._subscribers: list[Subscriber] = []
        self._closed = False

    def attach(self, subscriber: Subscriber) -> bool:
        self._subscribers.append(subscriber)
        return True

    async def detach(self, subscriber: Subscriber) -> None:
        """A streaming subscription ended: its queued messages are gone, as in daprd's in-memory bus."""
        if subscriber in self._subscribers:
            self._subscribers.remove(subscriber)

    def close(self) -> None:
        self._closed = True
        self._subscribers.clear()

    async def shutdown(self) -> None:
        """Nothing to keep: queued messages are dropped by their workers."""

    def backlog(self) -> dict[str, int]:
        """Messages queued or in delivery per subscription topic."""
        counts: dict[str, int] = {}
        for subscriber in self._subscribers:
            counts[subscriber.topic] = counts.get(subscriber.topic, 0) + subscriber.pending
        return counts

    def busy(self) -> bool:
        return any(subscriber.pending for subscriber in self._subscribers)

    async def idle(self) -> None:
        """Wait until every queued message (dead letters included) has been handled."""
        while busy := [s for s in self._subscribers if s.pending]:
            for subscriber in busy:
                await subscriber.idle()

    async def publish(self, topic: str, data: bytes, *, wait: bool = True) -> int:
        """Queue `data` for every matching subscriber; returns how many. No subscriber = dropped.

        `wait=False` fails instead of waiting when a subscriber's queue is full (dead-letter path,
        which runs inside a delivery worker and must not wait on itself).
        """
        if self._closed:
            raise BrokerClosed("component is closed")
        targets = [s for s in self._subscribers if topic_matches(s.topic, topic)]
        for subscriber in targets:
            await subscriber.enqueue(data, wait=wait)
        if not targets:
            log.debug("no subscription for topic %s on pubsub %s; message dropped", topic, self.name)
        return len(targets)
