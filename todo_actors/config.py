"""What the hosted actors need from the composition root: pub/sub names, limits, the clock, the publisher.

Built once where the app starts and handed to `host.register_actors`; the actor classes never read
settings or the wall clock themselves.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from dapr.clients.base import DaprActorClientBase

from todo_actors.due import zone
from todo_actors.publisher import EventPublisher
from todo_actors.transitions import DEFAULT_LIMITS, Limits

__all__ = ["ActorsConfig", "wall_clock"]


def wall_clock() -> dt.datetime:
    """The default clock: the current UTC instant (the only wall-clock read of the actors)."""
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class ActorsConfig:
    """Settings of the todo actors.

    `clock` is the single source of `now` for every transition and reminder delay; in tests it follows
    the sidecar's manual clock. `publisher` defaults to one lazily connected gRPC `DaprClient` per
    registration; pass your own to close it in the app's lifespan. `actor_client` is what the actors use
    for state, reminders and timers (default: the SDK's `DaprActorHttpClient`, one TCP connection per
    request); `client.PooledActorClient` saves a connection setup on every state write.
    """

    pubsub_name: str = "pubsub"
    task_events_topic: str = "task-events"
    reminders_topic: str = "reminders"
    # Zone of a new list whose CreateList did not name one (all-day and floating dues resolve in it).
    default_list_zone: str = "UTC"
    limits: Limits = DEFAULT_LIMITS
    lists_per_owner: int = 1_000
    clock: Callable[[], dt.datetime] = wall_clock
    # How often a list retries side effects (publishes, reminder registrations) that failed.
    outbox_retry: dt.timedelta = dt.timedelta(seconds=10)
    publisher: EventPublisher | None = field(default=None, compare=False)
    actor_client: DaprActorClientBase | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        zone(self.default_list_zone)  # ValueError for a name that is not an IANA zone
        for name in ("pubsub_name", "task_events_topic", "reminders_topic"):
            if not getattr(self, name):
                raise ValueError(f"{name} cannot be empty")
        if self.lists_per_owner < 0:
            raise ValueError("lists_per_owner cannot be negative")
        if self.outbox_retry < dt.timedelta(seconds=1):
            raise ValueError("outbox_retry must be at least one second")

    def now(self) -> dt.datetime:
        """`clock()`, checked to be timezone-aware."""
        now = self.clock()
        if now.tzinfo is None:
            raise ValueError("the actors' clock must return timezone-aware datetimes")
        return now
