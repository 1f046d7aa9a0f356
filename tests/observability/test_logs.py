"""Structured logs: the JSON formatter's fields, request log lines carrying the request's trace id (the
access log and the app's own), and `todo-engine up --log-format json` making app and sidecar log JSON."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.middleware.tracing import TraceContextMiddleware
from api.process.logs import JsonFormatter
from tests.api.conftest import Stack, new_list
from tests.harness import wait_for
from tests.observability.conftest import APP_ID, LogBuffer, LoggedApp

ROOT = Path(__file__).resolve().parents[2]
TRACE = "5e1b8c2f9d7a4b3c8e6f0a1b2c3d4e5f"
PARENT = "1a2b3c4d5e6f7a8b"
DAPRD_FIELDS = {"time", "level", "type", "msg", "scope", "instance", "app_id", "ver"}
RFC3339_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


def _record(msg: str, *args: Any, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = None if exc is None else (type(exc), exc, exc.__traceback__)
    return logging.LogRecord("api.test", logging.WARNING, __file__, 1, msg, args, exc_info)


def test_json_lines_have_daprds_fields() -> None:
    record = _record("list %s has %d items", "groceries", 3)
    entry = json.loads(JsonFormatter("app-1", instance="host-1", version="9.9").format(record))
    assert entry == {
        "time": entry["time"],
        "level": "warning",
        "type": "log",
        "msg": "list groceries has 3 items",
        "scope": "api.test",
        "instance": "host-1",
        "app_id": "app-1",
        "ver": "9.9",
    }
    assert RFC3339_UTC.fullmatch(entry["time"])
    logged = dt.datetime.fromisoformat(entry["time"].replace("Z", "+00:00"))
    assert abs(logged.timestamp() - record.created) < 1e-5  # UTC, not local time
    assert "trace_id" not in entry  # outside a request


def test_json_lines_carry_the_exception() -> None:
    try:
        raise ValueError('bad "title"\nsecond line')
    except ValueError as exc:
        line = JsonFormatter("app-1").format(_record("failed", exc=exc))
    assert "\n" not in line  # one line per record, whatever the message holds
    entry = json.loads(line)
    assert entry["msg"] == "failed"
    assert entry["exception"].startswith("Traceback") and 'ValueError: bad "title"' in entry["exception"]


def test_request_log_lines_carry_the_trace_id(stack: Stack, client: httpx.Client, logs: LogBuffer) -> None:
    list_id = new_list(client)["id"]
    headers = {"traceparent": f"00-{TRACE}-{PARENT}-01"}
    start = dt.datetime.combine((stack.now() + dt.timedelta(days=1)).date(), dt.time(9))
    body = {
        "list_id": list_id,
        "template": {"title": "bins"},
        "rule": "FREQ=WEEKLY",
        "dtstart": start.isoformat(),
    }
    r = client.post("/v1/series", json=body, headers=headers)
    assert r.status_code == 201, r.text
    span_id = r.headers["traceparent"].split("-")[2]

    def traced() -> list[dict[str, Any]] | None:
        entries = logs.of_trace(TRACE)
        access = [e for e in entries if e["scope"] == "uvicorn.access"]
        return entries if access else None

    entries = wait_for(traced)
    assert all(e["span_id"] == span_id and e["app_id"] == APP_ID for e in entries)
    access = next(e for e in entries if e["scope"] == "uvicorn.access")
    assert access["method"] == "POST" and access["path"] == "/v1/series" and access["status"] == 201
    # The app's own log line about this request (the series service logs each start) has the same ids.
    started = [e for e in entries if e["scope"] == "workflows.series_client"]
    assert started and "started" in started[0]["msg"]
    # Requests with other traces are not mixed in.
    client.get("/v1/lists").raise_for_status()
    assert all(e["trace_id"] == TRACE for e in logs.of_trace(TRACE))


def test_an_unhandled_error_is_logged_with_the_requests_trace_id(logs: LogBuffer) -> None:
    async def broken(request: Request) -> Response:
        raise RuntimeError("the disk is on fire")

    served = LoggedApp(TraceContextMiddleware(Starlette(routes=[Route("/broken", broken)]))).start()
    try:
        r = httpx.get(f"{served.url}/broken", headers={"traceparent": f"00-{TRACE}-{PARENT}-01"})
    finally:
        served.stop()
    assert r.status_code == 500
    errors = [e for e in logs.of_trace(TRACE) if e["level"] == "error"]
    assert errors and "RuntimeError: the disk is on fire" in errors[0]["exception"]


def test_up_logs_json_from_app_and_sidecar(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAPR_", "APP_", "TODO_", "OTEL_"))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "api", "up", "--port", "0", "--data-dir", str(tmp_path)]
        + ["--log-format", "json", "--log-level", "info", "--access-log"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out: queue.Queue[str] = queue.Queue()
    err: list[str] = []
    assert proc.stdout is not None and proc.stderr is not None

    def pump() -> None:
        for line in proc.stdout or ():
            out.put(line)

    threading.Thread(target=pump, daemon=True).start()
    reader = threading.Thread(target=lambda: err.extend(proc.stderr or ()), daemon=True)
    reader.start()
    try:
        url = None
        deadline = time.monotonic() + 30
        while url is None and time.monotonic() < deadline:
            try:
                found = re.search(r"API (http://\S+)/v1", out.get(timeout=0.5))
            except queue.Empty:
                continue
            url = found.group(1) if found else None
        assert url, f"no banner; stderr: {''.join(err)[-2000:]}"
        r = httpx.get(f"{url}/health/live", headers={"traceparent": f"00-{TRACE}-{PARENT}-01"})
        assert r.status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
        reader.join(10)
    lines = [line for line in err if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all(DAPRD_FIELDS <= e.keys() and RFC3339_UTC.fullmatch(e["time"]) for e in entries)
    scopes = {e["scope"] for e in entries}
    assert any(s.startswith("sidecar") for s in scopes), scopes  # the sidecar's --log-as-json
    assert any(s.startswith("api.") for s in scopes), scopes
    access = [e for e in entries if e["scope"] == "uvicorn.access" and e.get("path") == "/health/live"]
    assert access and access[0]["trace_id"] == TRACE and access[0]["status"] == 200
