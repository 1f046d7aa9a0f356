"""The actors' clock: wall time plus the sidecar's dev-clock offset, so the actors compute `now` exactly as
the sidecar's scheduler does."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

__all__ = ["OffsetClock"]


class OffsetClock:
    """Wall time plus a forward-only offset: mirrors the sidecar's dev clock (`/v1.0-dev/clock`).

    Without `--dev-clock` the offset stays 0 and this is the wall clock.
    """

    def __init__(self, wall: Callable[[], float] = time.time) -> None:
        self._wall = wall
        self._offset = 0.0

    @property
    def offset(self) -> float:
        return self._offset

    def follow(self, offset_seconds: float) -> None:
        """Adopt the sidecar's offset; never moves backwards."""
        self._offset = max(self._offset, offset_seconds)

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._wall() + self._offset, dt.UTC)
