"""Optional OTLP/HTTP export of one server span per request, parented on the caller's `traceparent` so
the app's spans join daprd's traces. Configured by the standard OTEL_* variables (read into `Settings`);
OpenTelemetry is imported only when export is on, so an app without it keeps its memory and start-up time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from importlib import metadata

from starlette.types import Scope

from api.middleware.tracing import TraceContext
from api.process.settings import OtelSettings

__all__ = ["SpanExport"]

log = logging.getLogger("api.middleware.span_export")

_Record = Callable[[TraceContext, Scope, int, int, int, BaseException | None], None]


class SpanExport:
    """The spans of one app (`role`: "public" or "channel"). Off until `start()` finds `settings` set;
    `start()` and `aclose()` belong in the app's lifespan. Satisfies `api.middleware.tracing.SpanSink`."""

    def __init__(self, settings: OtelSettings | None, *, role: str) -> None:
        self.settings = settings
        self.role = role
        self._record: _Record | None = None
        self._shutdown: Callable[[], None] | None = None

    @property
    def enabled(self) -> bool:
        return self._record is not None

    def start(self) -> None:
        """Open the export pipeline (a batching thread and an HTTP session) if export is configured.

        Raises RuntimeError when export is configured but the OpenTelemetry packages are missing."""
        if self.settings is None or self._record is not None:
            return
        try:
            self._record, self._shutdown = _otlp_pipeline(self.settings, self.role)
        except ImportError as exc:
            raise RuntimeError(
                "OTLP export is configured (OTEL_EXPORTER_OTLP_*ENDPOINT) but OpenTelemetry is not "
                f"importable ({exc}); reinstall todo-engine (it depends on the SDK and OTLP exporter)"
            ) from None
        log.info("%s spans export to %s", self.role, self.settings.traces_endpoint)

    def record(
        self,
        ctx: TraceContext,
        scope: Scope,
        status: int,
        start_ns: int,
        end_ns: int,
        error: BaseException | None,
    ) -> None:
        if self._record is not None:
            self._record(ctx, scope, status, start_ns, end_ns, error)

    async def aclose(self) -> None:
        """Flush what is queued (bounded by the exporter's timeout) and stop the pipeline."""
        shutdown, self._record, self._shutdown = self._shutdown, None, None
        if shutdown is not None:
            await asyncio.to_thread(shutdown)


def _otlp_pipeline(settings: OtelSettings, role: str) -> tuple[_Record, Callable[[], None]]:
    """A span recorder over a BatchSpanProcessor and an OTLP/HTTP exporter, and its shutdown."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

    version = metadata.version("todo-engine")
    exporter = OTLPSpanExporter(
        endpoint=settings.traces_endpoint,
        headers=settings.header_map() or None,
        timeout=settings.timeout_seconds,
    )
    processor = BatchSpanProcessor(exporter, schedule_delay_millis=settings.schedule_delay_ms)
    resource = Resource(
        {
            **settings.resource_attributes,
            "service.name": settings.service_name,
            "service.version": version,
            "todo.app": role,
        }
    )
    instrumentation = InstrumentationScope("todo-engine.api", version)
    sampled = TraceFlags(TraceFlags.SAMPLED)
    unset, failed = Status(StatusCode.UNSET), Status(StatusCode.ERROR)

    def record(
        ctx: TraceContext,
        scope: Scope,
        status: int,
        start_ns: int,
        end_ns: int,
        error: BaseException | None,
    ) -> None:
        trace_id = int(ctx.trace_id, 16)
        parent = None
        if ctx.parent_id is not None:
            parent = SpanContext(trace_id, int(ctx.parent_id, 16), True, sampled)
        method: str = scope.get("method", "")
        route = getattr(scope.get("route"), "path", None)
        attributes: dict[str, str | int] = {
            "http.request.method": method,
            "url.path": scope.get("path", ""),
            "url.scheme": scope.get("scheme", "http"),
            "http.response.status_code": status,
        }
        if route:
            attributes["http.route"] = route
        client = scope.get("client")
        if client:
            attributes["client.address"] = client[0]
        events: tuple[Event, ...] = ()
        if error is not None:
            attributes["error.type"] = type(error).__qualname__
            events = (
                Event(
                    "exception",
                    {"exception.type": type(error).__qualname__, "exception.message": str(error)},
                    end_ns,
                ),
            )
        span = ReadableSpan(
            name=f"{method} {route}" if route else method,
            context=SpanContext(trace_id, int(ctx.span_id, 16), False, sampled),
            parent=parent,
            resource=resource,
            attributes=attributes,
            events=events,
            kind=SpanKind.SERVER,
            instrumentation_scope=instrumentation,
            status=failed if status >= 500 or error is not None else unset,
            start_time=start_ns,
            end_time=end_ns,
        )
        processor.on_end(span)

    return record, processor.shutdown
