"""W3C trace context: the `traceparent` parser against the spec's rules, and the middleware over real
HTTP on an app of its own (what a route sees through `current()` / `outgoing_headers()`)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from api.middleware.tracing import (
    TraceContextMiddleware,
    current,
    new_trace,
    outgoing_headers,
    parse_traceparent,
    sample_bound,
)
from tests.observability.conftest import LoggedApp

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
VALID = f"00-{TRACE}-{PARENT}-01"
TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-(0[01])")


def test_a_valid_traceparent_parses() -> None:
    assert parse_traceparent(VALID.encode()) == (TRACE, PARENT, True)
    assert parse_traceparent(f"00-{TRACE}-{PARENT}-00".encode()) == (TRACE, PARENT, False)
    # Only the low bit of the flags means "sampled"; other bits are ignored.
    assert parse_traceparent(f"00-{TRACE}-{PARENT}-03".encode()) == (TRACE, PARENT, True)
    assert parse_traceparent(f"00-{TRACE}-{PARENT}-02".encode()) == (TRACE, PARENT, False)
    # A future version is read as 00, extra fields after a dash included.
    assert parse_traceparent(f"cc-{TRACE}-{PARENT}-01".encode()) == (TRACE, PARENT, True)
    assert parse_traceparent(f"cc-{TRACE}-{PARENT}-01-what-the-future-will-be".encode()) == (
        TRACE,
        PARENT,
        True,
    )


@pytest.mark.parametrize(
    "value",
    [
        f"ff-{TRACE}-{PARENT}-01",  # version ff is forbidden
        f"00-{'0' * 32}-{PARENT}-01",  # all-zero trace id
        f"00-{TRACE}-{'0' * 16}-01",  # all-zero parent id
        f"00-{TRACE}-{PARENT}-01-extra",  # version 00 is exactly 55 characters
        f"00-{TRACE}-{PARENT}-1",  # short flags
        f"00-{TRACE[:-1]}-{PARENT}-01",  # short trace id
        f"00-{TRACE}-{PARENT}1-01",  # long parent id
        f"00-{TRACE.upper()}-{PARENT}-01",  # uppercase hex
        f"00_{TRACE}-{PARENT}-01",  # wrong separator
        f"cc-{TRACE}-{PARENT}-01x",  # a future version's extra fields start with a dash
        f"0g-{TRACE}-{PARENT}-01",  # not hex
        "",
    ],
)
def test_invalid_traceparents_are_rejected(value: str) -> None:
    assert parse_traceparent(value.encode()) is None


def test_new_traces_and_spans_have_valid_random_ids() -> None:
    roots = [new_trace() for _ in range(200)]
    assert len({r.trace_id for r in roots}) == 200 and len({r.span_id for r in roots}) == 200
    for r in roots:
        assert TRACEPARENT.fullmatch(r.traceparent)
        assert r.traceparent == f"00-{r.trace_id}-{r.span_id}-01" and r.parent_id is None
    child = new_trace(TRACE, PARENT, False, "a=b")
    assert child.trace_id == TRACE and child.parent_id == PARENT and child.span_id != PARENT
    assert child.traceparent.endswith("-00") and child.tracestate == "a=b"


def test_new_traces_are_sampled_by_trace_id_ratio() -> None:
    assert all(new_trace(bound=sample_bound(1.0)).sampled for _ in range(500))
    assert not any(new_trace(bound=sample_bound(0.0)).sampled for _ in range(500))
    bound = sample_bound(0.25)
    roots = [new_trace(bound=bound) for _ in range(4000)]
    # OpenTelemetry's TraceIdRatioBased rule, so daprd and any other service decide alike for one id.
    assert all(r.sampled == (int(r.trace_id[16:], 16) < bound) for r in roots)
    assert all(r.traceparent.endswith("-01" if r.sampled else "-00") for r in roots)
    assert 800 < sum(r.sampled for r in roots) < 1200
    # A child keeps its parent's decision whatever the ratio.
    assert new_trace(TRACE, PARENT, True, bound=0).sampled


async def _echo(request: Request) -> JSONResponse:
    ctx = current()
    assert ctx is not None
    return JSONResponse({"outgoing": outgoing_headers(), "span_id": ctx.span_id, "parent": ctx.parent_id})


async def _stream(request: Request) -> StreamingResponse:
    async def chunks() -> AsyncIterator[bytes]:
        for i in range(3):
            yield f"data: {i} {outgoing_headers()['traceparent']}\n\n".encode()

    return StreamingResponse(chunks(), media_type="text/event-stream")


@pytest.fixture(scope="module")
def traced() -> Iterator[LoggedApp]:
    app = Starlette(routes=[Route("/echo", _echo), Route("/stream", _stream)])
    served = LoggedApp(TraceContextMiddleware(app))
    served.start()
    yield served
    served.stop()


def test_routes_see_the_request_context_and_send_it_on(traced: LoggedApp) -> None:
    headers = {"traceparent": VALID, "tracestate": "congo=t61rcWkgMzE"}
    r = httpx.get(f"{traced.url}/echo", headers=headers)
    body = r.json()
    echoed = TRACEPARENT.fullmatch(r.headers["traceparent"])
    assert echoed and echoed.group(1) == TRACE and echoed.group(3) == "01"
    assert echoed.group(2) == body["span_id"] != PARENT and body["parent"] == PARENT
    # What the app sends to the sidecar: this request's span as the parent, the caller's tracestate kept.
    assert body["outgoing"] == {"traceparent": r.headers["traceparent"], "tracestate": "congo=t61rcWkgMzE"}
    # Outside a request there is nothing to send.
    assert outgoing_headers() == {} and current() is None


def test_each_request_gets_its_own_span(traced: LoggedApp) -> None:
    with httpx.Client(base_url=traced.url) as c:  # one connection: contexts must not leak between requests
        first = c.get("/echo", headers={"traceparent": VALID}).json()
        second = c.get("/echo").json()
    assert first["span_id"] != second["span_id"]
    assert second["parent"] is None and "tracestate" not in second["outgoing"]
    assert TRACE not in second["outgoing"]["traceparent"]


def test_tracestate_is_dropped_with_an_invalid_traceparent_and_when_too_long(traced: LoggedApp) -> None:
    bad = httpx.get(
        f"{traced.url}/echo", headers={"traceparent": f"ff-{TRACE}-{PARENT}-01", "tracestate": "a=b"}
    )
    assert bad.json()["outgoing"].keys() == {"traceparent"} and TRACE not in bad.headers["traceparent"]
    long = httpx.get(f"{traced.url}/echo", headers={"traceparent": VALID, "tracestate": "a=" + "x" * 600})
    assert long.json()["outgoing"].keys() == {"traceparent"} and TRACE in long.headers["traceparent"]


def test_streamed_responses_keep_the_context(traced: LoggedApp) -> None:
    with httpx.stream("GET", f"{traced.url}/stream", headers={"traceparent": VALID}) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in r.iter_lines() if line]
    assert len(lines) == 3 and all(line.endswith(r.headers["traceparent"]) for line in lines)


def test_the_sample_ratio_applies_to_new_traces_only() -> None:
    app = Starlette(routes=[Route("/echo", _echo)])
    served = LoggedApp(TraceContextMiddleware(app, sample_ratio=0.0)).start()
    try:
        assert httpx.get(f"{served.url}/echo").headers["traceparent"].endswith("-00")
        kept = httpx.get(f"{served.url}/echo", headers={"traceparent": VALID})
        assert kept.headers["traceparent"].endswith("-01")
    finally:
        served.stop()
