"""Trace context through the real apps: the public API and the app channel keep a caller's trace, answer
with their own span id, start a new trace for a missing or invalid `traceparent`, and SSE still streams."""

from __future__ import annotations

import re
import time

import httpx
import pytest

from tests.api.conftest import Stack, new_item, new_list
from tests.observability.conftest import channel_headers

TRACE = "0af7651916cd43dd8448eb211c80319c"
PARENT = "b7ad6b7169203331"
TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-(0[01])")


def _echoed(response: httpx.Response) -> tuple[str, str, str]:
    match = TRACEPARENT.fullmatch(response.headers["traceparent"])
    assert match, response.headers.get("traceparent")
    return match.group(1), match.group(2), match.group(3)


def test_public_api_keeps_the_callers_trace(client: httpx.Client) -> None:
    r = client.post("/v1/lists", json={"title": "traced"}, headers={"traceparent": f"00-{TRACE}-{PARENT}-01"})
    assert r.status_code == 201, r.text
    trace_id, span_id, flags = _echoed(r)
    assert trace_id == TRACE and span_id != PARENT and flags == "01"
    # Errors carry it too (problem responses come from the exception handlers inside the middleware).
    r = client.get("/v1/lists/no-such-list", headers={"traceparent": f"00-{TRACE}-{PARENT}-00"})
    assert r.status_code == 404 and _echoed(r)[0] == TRACE and _echoed(r)[2] == "00"


@pytest.mark.parametrize(
    "traceparent",
    [
        None,
        f"ff-{TRACE}-{PARENT}-01",
        f"00-{'0' * 32}-{PARENT}-01",
        f"00-{TRACE}-{'0' * 16}-01",
        f"00-{TRACE}-01",
    ],
)
def test_public_api_starts_a_new_trace_without_a_valid_traceparent(
    client: httpx.Client, traceparent: str | None
) -> None:
    headers = {} if traceparent is None else {"traceparent": traceparent}
    first, second = (client.get("/v1/lists", headers=headers) for _ in range(2))
    assert first.status_code == second.status_code == 200
    (t1, s1, f1), (t2, s2, _) = _echoed(first), _echoed(second)
    assert TRACE not in (t1, t2) and t1 != t2 and s1 != s2 and f1 == "01"


def test_app_channel_keeps_the_sidecars_trace(stack: Stack) -> None:
    url = f"{stack.channel.url}/dapr/config"
    r = httpx.get(url, headers=channel_headers(stack, traceparent=f"00-{TRACE}-{PARENT}-01"))
    assert r.status_code == 200 and _echoed(r)[0] == TRACE and _echoed(r)[1] != PARENT
    fresh = httpx.get(url, headers=channel_headers(stack, traceparent=f"ff-{TRACE}-{PARENT}-01"))
    assert fresh.status_code == 200 and _echoed(fresh)[0] != TRACE
    # Even a refused call (no app token) says which trace it belonged to.
    refused = httpx.get(url, headers={"traceparent": f"00-{TRACE}-{PARENT}-01"})
    assert refused.status_code == 401 and _echoed(refused)[0] == TRACE


def test_sse_streams_through_the_middleware(stack: Stack, client: httpx.Client, user: str) -> None:
    list_id = new_list(client)["id"]
    headers = {"Authorization": f"Bearer {stack.token(user)}", "traceparent": f"00-{TRACE}-{PARENT}-01"}
    with httpx.stream("GET", f"{stack.url}/v1/events", headers=headers, timeout=10) as r:
        assert r.status_code == 200 and _echoed(r)[0] == TRACE
        assert r.headers["content-type"].startswith("text/event-stream")
        item = new_item(client, list_id, "streamed")
        # The event arrives while the stream stays open: nothing buffers the response.
        deadline = time.monotonic() + 10
        arrived = False
        for line in r.iter_lines():
            if line.startswith("data:") and item["id"] in line:
                arrived = True
            if arrived or time.monotonic() > deadline:
                break
    assert arrived
