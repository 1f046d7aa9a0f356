"""Log lines for people at a terminal (text) or for log pipelines: one JSON object per line, shaped like
daprd's `--log-as-json` output plus the request's trace and span ids, so app, sidecar and trace backend can
be joined on the trace id. uvicorn's own and access logs go through the same handler.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Literal, TextIO

from api.middleware.tracing import current
from sidecar.wire.jsonlog import DaprJsonFormatter

if TYPE_CHECKING:
    from dapr.ext.workflow.logger import LoggerOptions

__all__ = [
    "LOG_FORMATS",
    "TEXT_FORMAT",
    "JsonFormatter",
    "LogFormat",
    "configure_logging",
    "log_handler",
    "sdk_logger_options",
]

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# uvicorn's loggers: with `log_config=None` uvicorn adds no handlers, so they reach the root handler.
_UVICORN = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")


class JsonFormatter(DaprJsonFormatter):
    """daprd's JSON line (`sidecar.wire.jsonlog`) plus, inside a request, `trace_id` and `span_id`, and for
    uvicorn's access log `client`, `method`, `path`, `status`."""

    def extra_fields(self, record: logging.LogRecord) -> dict[str, object]:
        fields: dict[str, object] = {}
        ctx = current()
        if ctx is not None:
            fields["trace_id"] = ctx.trace_id
            fields["span_id"] = ctx.span_id
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            client, method, path, _http_version, status = record.args
            fields.update(client=client, method=method, path=path, status=status)
        return fields


def log_handler(log_format: LogFormat, *, app_id: str, stream: TextIO | None = None) -> logging.Handler:
    """A stream handler (stderr by default) writing `log_format` lines."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter(app_id))
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    return handler


def configure_logging(
    log_format: LogFormat, level: str | int, *, app_id: str, stream: TextIO | None = None
) -> logging.Handler:
    """Make the root logger write `log_format` lines at `level`; the process's one logging set-up.

    Replaces the root's handlers and routes uvicorn's loggers to it (serve with uvicorn's
    `log_config=None`). Returns the handler."""
    handler = log_handler(log_format, app_id=app_id, stream=stream)
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    for name in _UVICORN:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    return handler


def sdk_logger_options() -> LoggerOptions:
    """Logger options for the Dapr workflow SDK's runtime and clients: no stderr handler of their own (the
    default adds one per client, in its own format), so their records reach the process's handler."""
    from dapr.ext.workflow.logger import LoggerOptions

    return LoggerOptions(log_handler=logging.NullHandler())
