"""W3C trace context for every request: keep the caller's trace (or start one), give the request a span id
of its own, echo `traceparent` on the response and hand it on to the sidecar, so the app's logs and spans
join daprd's traces. Pure ASGI and allocation-light: it sits in front of every request, SSE included.
"""

from __future__ import annotations

import contextvars
import os
import random
import re
import time
from typing import NamedTuple, Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "ALWAYS",
    "SpanSink",
    "TraceContext",
    "TraceContextMiddleware",
    "current",
    "new_trace",
    "outgoing_headers",
    "parse_traceparent",
    "sample_bound",
]

# version-traceid-parentid-flags, lowercase hex only (W3C Trace Context level 1, section 3.2)
_TRACEPARENT = re.compile(rb"[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16
_ODD = frozenset("13579bdf")  # flags whose low bit, `sampled`, is set
# A tracestate longer than this is dropped whole rather than cut (vendors must pass on at least 512 chars).
MAX_TRACESTATE = 512
ALWAYS = 1 << 64  # the sampling bound that samples every new trace

# Ids come from a generator of our own: the global one's state belongs to the application (and tests that
# seed it); like it, ours is reseeded in a forked child so that workers never share ids.
_random = random.Random()
os.register_at_fork(after_in_child=_random.seed)
_getrandbits = _random.getrandbits
_tuple_new = tuple.__new__  # builds a TraceContext without NamedTuple's keyword handling (hot path)


class TraceContext(NamedTuple):
    """The trace a request belongs to and its own span; `traceparent` is what it sends on and returns."""

    trace_id: str
    span_id: str
    parent_id: str | None
    sampled: bool
    tracestate: str | None
    traceparent: str


_current: contextvars.ContextVar[TraceContext | None] = contextvars.ContextVar("todo_trace", default=None)


def current() -> TraceContext | None:
    """The trace context of the request being served, or None outside a request."""
    return _current.get()


def outgoing_headers() -> dict[str, str]:
    """Headers that carry the current request's trace to the sidecar (`traceparent`, and `tracestate` when
    the caller sent one); empty outside a request. The sidecar's spans become children of this request's."""
    ctx = _current.get()
    if ctx is None:
        return {}
    if ctx.tracestate is None:
        return {"traceparent": ctx.traceparent}
    return {"traceparent": ctx.traceparent, "tracestate": ctx.tracestate}


def parse_traceparent(value: bytes) -> tuple[str, str, bool] | None:
    """(trace id, parent span id, sampled) of a valid `traceparent`, else None.

    Version 00 must be exactly 55 characters; a higher version may carry more fields after a dash, of
    which the first four are read as version 00 (forward compatibility). Version ff, all-zero ids and
    anything that is not lowercase hex in the right places are invalid.
    """
    size = len(value)
    if size < 55 or _TRACEPARENT.match(value) is None:
        return None
    version = value[:2]
    if version == b"00":
        if size != 55:
            return None
    elif version == b"ff" or (size > 55 and value[55] != 0x2D):  # 0x2D: "-"
        return None
    text = value[:55].decode("ascii")
    trace_id, parent_id = text[3:35], text[36:52]
    if trace_id == _ZERO_TRACE or parent_id == _ZERO_SPAN:
        return None
    return trace_id, parent_id, text[54] in _ODD


def sample_bound(ratio: float) -> int:
    """The threshold for sampling `ratio` of new traces: OpenTelemetry's TraceIdRatioBased rule, sampled
    when the low 64 bits of the trace id are below it (so every service decides alike for one id)."""
    return round(min(max(ratio, 0.0), 1.0) * ALWAYS)


def new_trace(
    trace_id: str | None = None,
    parent_id: str | None = None,
    sampled: bool = True,
    tracestate: str | None = None,
    *,
    bound: int = ALWAYS,
) -> TraceContext:
    """A new span: in trace `trace_id` under `parent_id` (keeping the parent's `sampled`), or, without
    them, the root of a new trace, sampled by `bound` (see `sample_bound`; default: always)."""
    if trace_id is None:
        bits = _getrandbits(192)  # one draw for both ids
        ids = f"{bits:048x}"
        trace_id, span_id, parent_id, tracestate = ids[:32], ids[32:], None, None
        if trace_id == _ZERO_TRACE:
            trace_id = "0" * 31 + "1"
        sampled = bound >= ALWAYS or (bits >> 64) & (ALWAYS - 1) < bound
    else:
        span_id = f"{_getrandbits(64):016x}"
    if span_id == _ZERO_SPAN:
        span_id = "0" * 15 + "1"
    traceparent = "00-" + trace_id + "-" + span_id + ("-01" if sampled else "-00")
    return _tuple_new(TraceContext, (trace_id, span_id, parent_id, sampled, tracestate, traceparent))


def _incoming(headers: list[tuple[bytes, bytes]], bound: int) -> TraceContext:
    """The request's context: a child of a valid incoming `traceparent`, else a new trace."""
    parent: bytes | None = None
    states: list[bytes] = []
    repeated = False
    for name, value in headers:
        if name == b"traceparent":
            repeated = parent is not None
            parent = value
        elif name == b"tracestate":
            states.append(value)
    if parent is None or repeated:  # two traceparent headers cannot be told apart: start anew
        return new_trace(bound=bound)
    parsed = parse_traceparent(parent)
    if parsed is None:
        return new_trace(bound=bound)
    tracestate = b",".join(states).decode("latin-1") if states else None
    if tracestate is not None and (len(tracestate) > MAX_TRACESTATE or not tracestate.strip()):
        tracestate = None
    return new_trace(parsed[0], parsed[1], parsed[2], tracestate)


class SpanSink(Protocol):
    """Where finished request spans go (OTLP export, `api.middleware.span_export`); `enabled` is read per
    request."""

    @property
    def enabled(self) -> bool: ...

    def record(
        self,
        ctx: TraceContext,
        scope: Scope,
        status: int,
        start_ns: int,
        end_ns: int,
        error: BaseException | None,
    ) -> None: ...


class TraceContextMiddleware:
    """Sets the request's `TraceContext` (see `current()`), adds `traceparent` to the response, and, when
    `spans` is enabled and the trace sampled, reports the request as a server span. A caller's sampling
    decision is kept; `sample_ratio` of new traces are sampled (the flag daprd's own sampler follows).

    On an unhandled exception the context is left set: the server logs the error in this request's task,
    and that log line should carry the request's trace id. (The task, and so the context, ends with it.)
    """

    def __init__(self, app: ASGIApp, spans: SpanSink | None = None, sample_ratio: float = 1.0) -> None:
        self.app = app
        self.spans = spans
        self._bound = sample_bound(sample_ratio)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ctx = _incoming(scope["headers"], self._bound)
        header = (b"traceparent", ctx.traceparent.encode())
        spans = self.spans
        if spans is None or not ctx.sampled or not spans.enabled:

            async def send_traced(message: Message) -> None:
                if message["type"] == "http.response.start":
                    # A new list: the response object may own (and reuse) the one it passed.
                    message["headers"] = [*message.get("headers", ()), header]
                await send(message)

            token = _current.set(ctx)
            await self.app(scope, receive, send_traced)
            _current.reset(token)
            return
        await self._call_recorded(ctx, header, spans, scope, receive, send)

    async def _call_recorded(
        self,
        ctx: TraceContext,
        header: tuple[bytes, bytes],
        spans: SpanSink,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        status = 500
        start_ns = time.time_ns()

        async def send_traced(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        token = _current.set(ctx)
        try:
            await self.app(scope, receive, send_traced)
        except BaseException as exc:
            spans.record(ctx, scope, 500, start_ns, time.time_ns(), exc)
            raise
        spans.record(ctx, scope, status, start_ns, time.time_ns(), None)
        _current.reset(token)
