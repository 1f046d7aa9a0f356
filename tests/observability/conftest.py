"""One real stack for the observability tests: the embedded sidecar (manual clock), the app channel and
the public API on loopback, with span export to an in-test OTLP receiver and the process's log records
written as JSON lines to a buffer (uvicorn's access log included).

Package-scoped, like the API suite's stack: the SDK's actor runtime is process-global.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from prometheus_client.parser import text_string_to_metric_families

from api.process.logs import JsonFormatter
from api.process.settings import OtelSettings
from tests.harness import ServedApp, bound_socket
from tests.observability.receiver import OtlpReceiver
from tests.stack import Stack, stack_fixture

APP_ID = "todo-obs"


class LogBuffer(logging.Handler):
    """Formats every record with the app's JsonFormatter as it is emitted (in the caller's context, as a
    real stream handler does), and keeps the lines."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(JsonFormatter(APP_ID))
        self._lines: list[str] = []
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        line = self.format(record)
        with self._guard:
            self._lines.append(line)

    def entries(self) -> list[dict[str, Any]]:
        with self._guard:
            return [json.loads(line) for line in self._lines]

    def of_trace(self, trace_id: str) -> list[dict[str, Any]]:
        return [e for e in self.entries() if e.get("trace_id") == trace_id]


class LoggedApp(ServedApp):
    """A served app whose uvicorn logs as `todo-engine serve` sets it up: no logging config of its own
    (so serving it leaves the process's logging alone), access log on, records to the root logger."""

    def __init__(self, app: Any, sock: socket.socket | None = None) -> None:
        # Not ServedApp.__init__: its uvicorn.Config would apply uvicorn's default logging config.
        self.sock = sock or bound_socket()
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(app, log_config=None, log_level="info", access_log=True, lifespan="on")
        self.server = uvicorn.Server(config)
        self.server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"app:{self.port}")


@pytest.fixture(scope="package")
def receiver() -> Iterator[OtlpReceiver]:
    r = OtlpReceiver().start()
    yield r
    r.stop()


@pytest.fixture(scope="package")
def logs() -> Iterator[LogBuffer]:
    buffer = LogBuffer()
    root = logging.getLogger()
    level = root.level
    root.addHandler(buffer)
    root.setLevel(logging.INFO)
    yield buffer
    root.removeHandler(buffer)
    root.setLevel(level)


def _options(request: pytest.FixtureRequest) -> dict[str, Any]:
    receiver: OtlpReceiver = request.getfixturevalue("receiver")
    otel = OtelSettings(
        traces_endpoint=f"{receiver.endpoint}/v1/traces",
        service_name="todo-obs-test",
        timeout_seconds=5.0,
        schedule_delay_ms=50,
    )
    return {"app_id": APP_ID, "public_server": LoggedApp, "otel": otel}


stack = stack_fixture("obs-sidecar", _options)


@pytest.fixture(scope="package", autouse=True)
def uvicorn_logs_to_root(stack: Stack, logs: LogBuffer) -> Iterator[None]:
    """As `api.process.logs.configure_logging` does: uvicorn's loggers reach the root handlers (the
    stack's servers gave them handlers of their own and stopped propagation)."""
    loggers = [logging.getLogger(name) for name in ("uvicorn", "uvicorn.error", "uvicorn.access")]
    saved = [(lg.handlers[:], lg.propagate) for lg in loggers]
    for lg in loggers:
        lg.handlers.clear()
        lg.propagate = True
    yield
    for lg, (handlers, propagate) in zip(loggers, saved, strict=True):
        lg.handlers[:], lg.propagate = handlers, propagate


def metric(stack: Stack, name: str, **labels: str) -> float:
    """The sample `name` with exactly these labels from the public `/metrics` (0 when absent)."""
    text = httpx.get(f"{stack.url}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


def channel_headers(stack: Stack, **extra: str) -> dict[str, str]:
    return {"dapr-api-token": stack.app_token, **extra}
