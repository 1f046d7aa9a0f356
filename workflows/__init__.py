"""Durable recurring-task workflows: recurrence math, the series workflow, its activities and runtime."""

from __future__ import annotations

__all__: list[str] = []
