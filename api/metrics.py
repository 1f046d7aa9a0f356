"""Prometheus metrics of the public API: request latency by route template, and actor calls by outcome.

Each app owns its own registry (several apps can live in one process, as in tests); `/metrics` serves it.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["ApiMetrics", "MetricsMiddleware"]

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.request_seconds = Histogram(
            "todo_http_request_duration_seconds",
            "Latency of public API requests, by route template, method and status.",
            ["route", "method", "status"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.actor_calls = Counter(
            "todo_actor_calls_total",
            "Actor method calls made by the API, by actor type, method and outcome.",
            ["actor_type", "method", "outcome"],
            registry=self.registry,
        )
        self.feed_events = Counter(
            "todo_feed_events_total",
            "Events received from pub/sub, by topic and outcome (appended or duplicate).",
            ["topic", "outcome"],
            registry=self.registry,
        )

    def count_actor_call(self, actor_type: str, method: str, outcome: str) -> None:
        self.actor_calls.labels(actor_type, method, outcome).inc()

    def response(self) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


class MetricsMiddleware:
    """Times each HTTP request and labels it with the matched route's template (never the raw path)."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route: Any = scope.get("route")
            template = getattr(route, "path", None) or "<unmatched>"
            self.metrics.request_seconds.labels(template, scope["method"], str(status)).observe(
                time.perf_counter() - start
            )
