"""Settings of the recurring-task series: component names, limits and defaults, built once by the
composition root and handed to the service and the activities (never read from the environment here)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from workflows.recurrence import DEFAULT_GRACE

__all__ = ["SeriesSettings"]


@dataclass(frozen=True)
class SeriesSettings:
    """`min_interval` is the shortest spacing a rule may have (HOURLY/MINUTELY); `catch_up_grace` is how
    late an occurrence may be and still count as on time under `catch_up="skip"` (fixed per series at
    creation, since the workflow must replay deterministically)."""

    state_store: str = "statestore"
    pubsub: str = "pubsub"
    topic: str = "reminders"
    min_interval: timedelta = timedelta(hours=1)
    series_per_owner: int = 1_000
    upcoming_default: int = 5
    upcoming_max: int = 100
    page_size_default: int = 50
    catch_up_grace: timedelta = DEFAULT_GRACE

    def __post_init__(self) -> None:
        for name in ("state_store", "pubsub", "topic"):
            if not getattr(self, name):
                raise ValueError(f"{name} cannot be empty")
        if self.min_interval < timedelta(minutes=1):
            raise ValueError("min_interval must be at least one minute (the finest RRULE frequency here)")
        if self.series_per_owner < 0:
            raise ValueError("series_per_owner cannot be negative")
        if not 0 <= self.upcoming_default <= self.upcoming_max <= 1000:
            raise ValueError("need 0 <= upcoming_default <= upcoming_max <= 1000")
        if self.catch_up_grace < timedelta(0):
            raise ValueError("catch_up_grace cannot be negative")
