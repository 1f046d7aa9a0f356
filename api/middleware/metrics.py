"""Prometheus metrics of the app process: request latency by route template, actor calls, reminders fired,
event deliveries, dead letters, series workflows started, completed and failed, and housekeeping runs and
what they removed.

One registry per process (`api.process.shared.Shared.metrics`: the public API and the app channel count
into it; several processes' worth can live in one test run); the public API's `/metrics` serves it.
"""

from __future__ import annotations

import re
import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["ApiMetrics", "MetricsMiddleware", "ReminderMetricsMiddleware"]

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


_CONVERTOR = re.compile(r"\{(\w+):\w+\}")


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
            "Events delivered by pub/sub, by topic and outcome (appended, duplicate, dropped or retry).",
            ["topic", "outcome"],
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "todo_dead_letters_total",
            "Events dead-lettered by the app's subscriptions and kept, by original topic "
            "(a redelivered dead letter is counted once; one dead-lettered again after a redrive again).",
            ["topic"],
            registry=self.registry,
        )
        self.reminders_fired = Counter(
            "todo_reminders_fired_total",
            "Actor reminders fired into the app, by actor type, kind (due, rem, outbox) and outcome.",
            ["actor_type", "kind", "outcome"],
            registry=self.registry,
        )
        self.workflows_started = Counter(
            "todo_workflows_started_total",
            "Workflow instances the app scheduled, by workflow name.",
            ["workflow"],
            registry=self.registry,
        )
        self.workflows_completed = Counter(
            "todo_workflows_completed_total",
            "Workflow instances that completed (continue-as-new generations are not completions).",
            ["workflow"],
            registry=self.registry,
        )
        self.workflows_failed = Counter(
            "todo_workflows_failed_total",
            "Workflow instances that failed.",
            ["workflow"],
            registry=self.registry,
        )

        self.housekeeping_runs = Counter(
            "todo_housekeeping_runs_total",
            "Housekeeping runs (cron binding ticks), by outcome (ok, error, skipped: a run was still going).",
            ["outcome"],
            registry=self.registry,
        )
        self.housekeeping_items = Counter(
            "todo_housekeeping_items_total",
            "What housekeeping removed, by kind (workflows_purged, feed_events_deleted).",
            ["kind"],
            registry=self.registry,
        )
        self.webhook_attempts = Counter(
            "todo_webhook_attempts_total",
            "Webhook delivery attempts, by outcome (delivered, retry, failed: the last attempt failed, "
            "refused: the target address is not allowed, skipped: the webhook was disabled or deleted).",
            ["outcome"],
            registry=self.registry,
        )
        # Labelled children by their labels (the route's path, for requests): prometheus_client's
        # `labels()` validates and locks on every call, which every request and actor call would pay.
        self._request_children: dict[tuple[str | None, str, int], Any] = {}
        self._actor_call_children: dict[tuple[str, str, str], Any] = {}

    def observe_request(self, route: object, method: str, status: int, seconds: float) -> None:
        """One public API request, labelled by its matched route's template (never the raw path)."""
        path: str | None = getattr(route, "path", None)
        key = (path, method, status)
        child = self._request_children.get(key)
        if child is None:
            # `{id:segment}` -> `{id}`: the template as the OpenAPI document names it
            template = _CONVERTOR.sub(r"{\1}", path or "<unmatched>")
            child = self._request_children[key] = self.request_seconds.labels(template, method, str(status))
        child.observe(seconds)

    def count_actor_call(self, actor_type: str, method: str, outcome: str) -> None:
        key = (actor_type, method, outcome)
        child = self._actor_call_children.get(key)
        if child is None:
            child = self._actor_call_children[key] = self.actor_calls.labels(actor_type, method, outcome)
        child.inc()

    def count_delivery(self, topic: str, outcome: str) -> None:
        self.feed_events.labels(topic, outcome).inc()

    def count_dead_letter(self, topic: str) -> None:
        self.dead_letters.labels(topic).inc()

    def count_workflow_started(self, workflow: str) -> None:
        self.workflows_started.labels(workflow).inc()

    def count_workflow_outcome(self, workflow: str, outcome: str) -> None:
        """`outcome` is "completed" or "failed" (called from the workflow worker's threads)."""
        counter = self.workflows_completed if outcome == "completed" else self.workflows_failed
        counter.labels(workflow).inc()

    def count_housekeeping_run(self, outcome: str) -> None:
        self.housekeeping_runs.labels(outcome).inc()

    def count_housekeeping_items(self, kind: str, count: int) -> None:
        self.housekeeping_items.labels(kind).inc(count)

    def count_webhook_attempt(self, outcome: str) -> None:
        self.webhook_attempts.labels(outcome).inc()

    def response(self) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


class _Status:
    """The status a response started with; 500 until one starts (an exception, or nothing sent)."""

    __slots__ = ("code",)

    def __init__(self) -> None:
        self.code = 500

    def watching(self, send: Send) -> Send:
        async def send_watched(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.code = message["status"]
            await send(message)

        return send_watched


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
        status = _Status()
        try:
            await self.app(scope, receive, status.watching(send))
        finally:
            self.metrics.observe_request(
                scope.get("route"), scope["method"], status.code, time.perf_counter() - start
            )


class ReminderMetricsMiddleware:
    """Counts the actor reminders the sidecar fires into the app channel
    (`PUT /actors/{type}/{id}/method/remind/{name}`), by actor type, kind (the name's prefix before `:`)
    and outcome; every other request passes straight through."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or "/method/remind/" not in scope["path"]:
            await self.app(scope, receive, send)
            return
        status = _Status()
        try:
            await self.app(scope, receive, status.watching(send))
        finally:
            parts = scope["path"].split("/")
            if len(parts) == 7 and parts[1] == "actors":
                kind = parts[6].split(":", 1)[0][:32]
                outcome = "ok" if status.code < 400 else "error"
                self.metrics.reminders_fired.labels(parts[2], kind, outcome).inc()
