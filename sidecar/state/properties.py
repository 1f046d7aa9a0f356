"""Component metadata properties read the way dapr/kit decodes them, so one YAML file means the same in both.

Names are case-insensitive and may have aliases; booleans are "truthy" strings; durations are Go duration
strings (`1m30s`) or a plain number of seconds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["ComponentProperties", "PropertyError", "is_truthy", "parse_go_duration"]

_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "\u00b5s": 1e-6,  # micro sign
    "\u03bcs": 1e-6,  # Greek mu
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_DURATION_PART = re.compile(r"([0-9]*\.?[0-9]*)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")


class PropertyError(ValueError):
    """A metadata property has a value its component cannot use."""


def is_truthy(value: str) -> bool:
    """dapr/kit `IsTruthy`: y, yes, true, t, on, 1 (any case, trimmed)."""
    return value.strip().lower() in ("y", "yes", "true", "t", "on", "1")


def parse_go_duration(text: str) -> float:
    """Seconds in a Go duration string (`300ms`, `1h30m`, `-1.5s`), or in a plain integer of seconds."""
    raw = text
    if re.fullmatch(r"[+-]?[0-9]+", text):
        return float(int(text))
    sign = 1.0
    if text[:1] in "+-" and text:
        sign = -1.0 if text[0] == "-" else 1.0
        text = text[1:]
    if text == "0":
        return 0.0
    total, pos = 0.0, 0
    while pos < len(text):
        match = _DURATION_PART.match(text, pos)
        if match is None or match.group(1) in ("", "."):
            raise PropertyError(f"time: invalid duration {raw!r}")
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not text:
        raise PropertyError(f"time: invalid duration {raw!r}")
    return sign * total


class ComponentProperties:
    """A component's metadata with dapr/kit's lookup rules (case-insensitive names, aliases)."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = {k.lower(): v for k, v in values.items()}

    def get(self, *names: str) -> str | None:
        """The value of the first of `names` present (case-insensitively), or None."""
        for name in names:
            value = self._values.get(name.lower())
            if value is not None:
                return value
        return None

    def text(self, *names: str, default: str = "") -> str:
        value = self.get(*names)
        return default if value is None or value == "" else value

    def flag(self, *names: str, default: bool = False) -> bool:
        value = self.get(*names)
        return default if value is None or value == "" else is_truthy(value)

    def duration(self, *names: str, default: float) -> float:
        value = self.get(*names)
        if value is None or value == "":
            return default
        try:
            return parse_go_duration(value)
        except PropertyError as exc:
            raise PropertyError(f"metadata '{names[0]}': {exc}") from None
