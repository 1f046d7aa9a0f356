"""daprd's `--log-as-json` line shape, for the embedded sidecar's own logs and as the base of the app's
JSON logs (which add trace ids), so both processes' lines parse and join the same way. A standard-library
leaf: the app beside real daprd imports it without loading the embedded sidecar.

Fields: `time` (RFC 3339, UTC, microseconds), `level` (logrus names), `type` ("log"), `msg`, `scope` (the
logger), `instance` (host name), `app_id`, `ver`; then a record's own fields (`FIELDS`, as logrus'
`WithFields`), then `exception` / `stack` when the record has them. `TextFormatter` puts a record's fields
after its message as `key=value`, as logrus' text lines do.
"""

from __future__ import annotations

import functools
import json
import logging
import socket
import time
from importlib import metadata

__all__ = ["FIELDS", "DaprJsonFormatter", "TextFormatter"]

# the record attribute holding a line's own fields (`log.info(msg, extra={FIELDS: {...}})`)
FIELDS = "dapr_fields"

# daprd (logrus) level names; Python's CRITICAL is logrus' fatal.
_LEVELS = {"CRITICAL": "fatal", "ERROR": "error", "WARNING": "warning", "INFO": "info", "DEBUG": "debug"}


class DaprJsonFormatter(logging.Formatter):
    """One JSON object per record, daprd's fields first; subclasses add theirs in `extra_fields`."""

    def __init__(self, app_id: str, *, instance: str | None = None, version: str | None = None) -> None:
        super().__init__()
        self._fixed = {
            "instance": instance or socket.gethostname(),
            "app_id": app_id,
            "ver": version or _version(),
        }

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": _rfc3339(record.created),
            "level": _LEVELS.get(record.levelname) or record.levelname.lower(),
            "type": "log",
            "msg": record.getMessage(),
            "scope": record.name,
            **self._fixed,
        }
        entry.update(getattr(record, FIELDS, None) or {})
        entry.update(self.extra_fields(record))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)

    def extra_fields(self, record: logging.LogRecord) -> dict[str, object]:
        """Fields after daprd's and before the exception; none here."""
        return {}


class TextFormatter(logging.Formatter):
    """The plain line, then the record's own fields as `key=value` (strings with spaces quoted)."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = getattr(record, FIELDS, None)
        if not fields:
            return line
        pairs = (f"{k}={json.dumps(v) if isinstance(v, str) and ' ' in v else v}" for k, v in fields.items())
        return f"{line} {' '.join(pairs)}"


def _rfc3339(created: float) -> str:
    seconds = int(created)
    micros = int((created - seconds) * 1_000_000)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(seconds))}.{micros:06d}Z"


@functools.cache
def _version() -> str:
    try:
        return metadata.version("todo-engine")
    except metadata.PackageNotFoundError:
        return "dev"
