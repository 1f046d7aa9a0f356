"""OpenTelemetry export: a server span per request reaches a real OTLP/HTTP receiver, in the caller's
trace and under the caller's span; unsampled traces are not exported; configured by the standard OTEL_*
variables; and with them unset, the OpenTelemetry SDK is never imported."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.middleware.span_export import SpanExport
from api.middleware.tracing import TraceContextMiddleware
from api.process.settings import OtelSettings, SettingsError, load_settings
from tests.api.conftest import Stack
from tests.harness import wait_for
from tests.observability.conftest import LoggedApp, channel_headers
from tests.observability.receiver import OtlpReceiver, ReceivedSpan

ROOT = Path(__file__).resolve().parents[2]
SERVER = 2  # opentelemetry.proto Span.SpanKind.SPAN_KIND_SERVER
ERROR = 2  # Status.StatusCode.STATUS_CODE_ERROR
GOOD = {"APP_API_TOKEN": "t" * 20, "TODO_JWT_SECRET": "s" * 40}


def _span_id(response: httpx.Response) -> str:
    return response.headers["traceparent"].split("-")[2]


def _by_app(receiver: OtlpReceiver, trace: str) -> dict[str, list[ReceivedSpan]]:
    """The trace's spans by app, once the public span and two channel spans are in."""
    spans: dict[str, list[ReceivedSpan]] = {}
    for span in receiver.of_trace(trace):
        spans.setdefault(str(span.resource["todo.app"]), []).append(span)
    done = len(spans.get("public", ())) == 1 and len(spans.get("channel", ())) >= 2
    return spans if done else {}


def test_public_requests_export_a_span_in_the_callers_trace(
    stack: Stack, client: httpx.Client, receiver: OtlpReceiver
) -> None:
    trace, parent = "11111111111111111111111111111111", "2222222222222222"
    r = client.post(
        "/v1/lists", json={"title": "exported"}, headers={"traceparent": f"00-{trace}-{parent}-01"}
    )
    assert r.status_code == 201, r.text
    # The public span, and the channel's spans of the two actor calls it made through the sidecar
    # (owner index, then the list): the actor client sends the request's context on.
    spans = wait_for(lambda: _by_app(receiver, trace) if len(_by_app(receiver, trace)) == 2 else None)
    (span,) = spans["public"]
    actor_calls = spans["channel"]
    assert len(actor_calls) == 2 and all(s.parent_span_id == span.span_id for s in actor_calls)
    assert {s.name.split(" ")[0] for s in actor_calls} == {"PUT"}
    assert span.span_id == _span_id(r) and span.parent_span_id == parent
    assert span.name == "POST /v1/lists" and span.kind == SERVER and span.status_code != ERROR
    assert span.attributes["http.route"] == "/v1/lists"
    assert span.attributes["http.response.status_code"] == 201
    assert span.attributes["http.request.method"] == "POST"
    assert span.resource["service.name"] == "todo-obs-test" and span.resource["todo.app"] == "public"
    assert 0 < span.start_ns <= span.end_ns
    assert receiver.paths[-1] == "/v1/traces"


def test_the_task_event_of_a_traced_write_is_delivered_in_the_same_trace(
    client: httpx.Client, receiver: OtlpReceiver
) -> None:
    trace = "99999999999999999999999999999999"
    lst = client.post("/v1/lists", json={"title": "traced events"}).json()
    r = client.post(
        f"/v1/lists/{lst['id']}/items",
        json={"title": "publish me"},
        headers={"traceparent": f"00-{trace}-8888888888888888-01"},
    )
    assert r.status_code == 201, r.text

    def delivery() -> ReceivedSpan | None:
        spans = receiver.of_trace(trace)
        return next(
            (s for s in spans if s.name.startswith("POST /events/") and "task-events" in s.name), None
        )

    span = wait_for(delivery)
    assert span.resource["todo.app"] == "channel"


def test_a_new_trace_is_exported_as_a_root_span(client: httpx.Client, receiver: OtlpReceiver) -> None:
    r = client.get("/v1/lists")
    trace = r.headers["traceparent"].split("-")[1]
    spans = receiver.wait_for_trace(trace, count=2)
    (span,) = [s for s in spans if s.resource["todo.app"] == "public"]
    assert span.parent_span_id == "" and span.span_id == _span_id(r) and span.name == "GET /v1/lists"


def test_channel_requests_export_spans_too(stack: Stack, receiver: OtlpReceiver) -> None:
    trace, parent = "33333333333333333333333333333333", "4444444444444444"
    r = httpx.get(
        f"{stack.channel.url}/dapr/subscribe",
        headers=channel_headers(stack, traceparent=f"00-{trace}-{parent}-01"),
    )
    assert r.status_code == 200
    (span,) = receiver.wait_for_trace(trace)
    assert span.parent_span_id == parent and span.resource["todo.app"] == "channel"
    assert span.name == "GET /dapr/subscribe"


def test_unsampled_traces_are_not_exported(client: httpx.Client, receiver: OtlpReceiver) -> None:
    unsampled, sampled = "55555555555555555555555555555555", "66666666666666666666666666666666"
    r = client.get("/v1/lists", headers={"traceparent": f"00-{unsampled}-7777777777777777-00"})
    assert r.headers["traceparent"].endswith("-00")  # the decision is passed on
    client.get("/v1/lists", headers={"traceparent": f"00-{sampled}-7777777777777777-01"})
    receiver.wait_for_trace(sampled)  # exported after the first request's span would have been
    assert receiver.of_trace(unsampled) == []


def test_failed_requests_export_an_error_span(receiver: OtlpReceiver) -> None:
    async def broken(request: Request) -> Response:
        raise RuntimeError("the disk is on fire")

    settings = OtelSettings(
        traces_endpoint=f"{receiver.endpoint}/v1/traces",
        service_name="todo-obs-errors",
        timeout_seconds=5.0,
        schedule_delay_ms=50,
    )
    spans = SpanExport(settings, role="public")
    spans.start()
    app = TraceContextMiddleware(Starlette(routes=[Route("/broken/{n}", broken)]), spans=spans)
    served = LoggedApp(app).start()
    trace = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
    try:
        r = httpx.get(f"{served.url}/broken/1", headers={"traceparent": f"00-{trace}-cccccccccccccccc-01"})
        assert r.status_code == 500
    finally:
        served.stop()
        asyncio.run(spans.aclose())  # flushes the queue
    (span,) = receiver.of_trace(trace)
    assert span.status_code == ERROR and span.name == "GET /broken/{n}"
    assert (
        span.attributes["error.type"] == "RuntimeError"
        and span.attributes["http.response.status_code"] == 500
    )


def _probe(tmp: Path, traceparent: str, **otel: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAPR_", "APP_", "TODO_", "OTEL_"))}
    out = subprocess.run(
        [sys.executable, "-m", "tests.observability.otel_probe", str(tmp), traceparent],
        cwd=ROOT,
        env={**env, **otel},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["status"] == 200
    return result


def _sdk(modules: list[str]) -> list[str]:
    return [
        m
        for m in modules
        if m.startswith(("opentelemetry.sdk", "opentelemetry.exporter", "opentelemetry.proto"))
    ]


def test_export_is_configured_by_the_environment_and_off_without_it(
    tmp_path: Path, receiver: OtlpReceiver
) -> None:
    trace = "88888888888888888888888888888888"
    on = _probe(
        tmp_path / "on",
        f"00-{trace}-9999999999999999-01",
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        OTEL_SERVICE_NAME="from-env",
        OTEL_RESOURCE_ATTRIBUTES="deployment.environment=test",
        OTEL_EXPORTER_OTLP_HEADERS="x-api-key=s%20cret",
    )
    assert _sdk(on["modules"])
    (span,) = receiver.wait_for_trace(trace)
    assert span.resource["service.name"] == "from-env"
    assert span.resource["deployment.environment"] == "test"
    assert any(h.get("x-api-key") == "s cret" for h in receiver.headers)

    off_trace = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    off = _probe(tmp_path / "off", f"00-{off_trace}-9999999999999999-01")
    assert _sdk(off["modules"]) == []  # the SDK, exporter and protos are never imported
    assert receiver.of_trace(off_trace) == []


def test_the_observability_modules_import_no_opentelemetry() -> None:
    code = (
        "import sys, api.middleware.tracing, api.process.logs, api.middleware.metrics, api.process.shared; "
        "print([m for m in sys.modules if m.startswith('opentelemetry')])"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr


def test_otel_settings_from_the_standard_variables() -> None:
    assert load_settings(GOOD).otel is None
    s = load_settings({**GOOD, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"}).otel
    assert s is not None and s.traces_endpoint == "http://collector:4318/v1/traces"
    assert s.service_name == "todo-engine" and s.schedule_delay_ms == 5000
    s = load_settings(
        {
            **GOOD,
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://ignored:4318",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://collector/custom/path",
            "OTEL_RESOURCE_ATTRIBUTES": "service.name=from-resource,team=todo",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        }
    ).otel
    assert s is not None and s.traces_endpoint == "https://collector/custom/path"
    assert s.service_name == "from-resource" and s.resource_attributes == {"team": "todo"}
    assert s.schedule_delay_ms == 200
    for off in ({"OTEL_SDK_DISABLED": "true"}, {"OTEL_TRACES_EXPORTER": "none"}):
        assert load_settings({**GOOD, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", **off}).otel is None


@pytest.mark.parametrize(
    ("sampler", "arg", "ratio"),
    [
        (None, None, 1.0),
        ("parentbased_always_on", None, 1.0),
        ("always_off", None, 0.0),
        ("parentbased_traceidratio", "0.1", 0.1),
        ("traceidratio", None, 1.0),
    ],
)
def test_the_sample_ratio_of_new_traces_follows_otel_traces_sampler(
    sampler: str | None, arg: str | None, ratio: float
) -> None:
    env = {k: v for k, v in (("OTEL_TRACES_SAMPLER", sampler), ("OTEL_TRACES_SAMPLER_ARG", arg)) if v}
    assert load_settings({**GOOD, **env}).trace_sample_ratio == ratio


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "OTEL_EXPORTER_OTLP_PROTOCOL"),
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"}, "OTEL_EXPORTER_OTLP_ENDPOINT"),
        ({"OTEL_BSP_SCHEDULE_DELAY": "soon"}, "OTEL_BSP_SCHEDULE_DELAY"),
        ({"TODO_LOG_FORMAT": "xml"}, "TODO_LOG_FORMAT"),
        ({"OTEL_TRACES_SAMPLER": "jaeger_remote"}, "OTEL_TRACES_SAMPLER"),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"}, "OTEL_TRACES_SAMPLER_ARG"),
    ],
)
def test_unusable_otel_and_log_settings_fail_fast(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings({**GOOD, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", **env})
