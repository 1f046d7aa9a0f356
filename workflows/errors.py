"""Errors of the series service beyond the todo domain's (`NotFound`, `InvalidInput`, `LimitExceeded`)."""

from __future__ import annotations

__all__ = ["SeriesConflict"]


class SeriesConflict(Exception):
    """The operation does not fit the series' current state (pausing a cancelled series, skipping while
    it waits for a completion). Not retryable as is; the API answers 409."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
