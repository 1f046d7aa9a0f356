"""daprd's API logging (`--enable-api-logging`, or `spec.logging.apiLogging` in the Configuration): one info
line per call of the sidecar's HTTP and gRPC APIs, "HTTP API Called" / "gRPC API Called", in daprd's scopes
with its fields (method, code, duration in ms, size for HTTP, useragent), so an operator reads the same
lines beside either sidecar. The fields ride on the record (`sidecar.wire.jsonlog.FIELDS`).
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sidecar.wire.jsonlog import FIELDS

__all__ = ["ApiLogging", "GrpcApiLog", "HttpApiLog"]


_HTTP = logging.getLogger("dapr.runtime.http-info")
_GRPC = logging.getLogger("dapr.runtime.grpc.api-info")
_HEALTH_PATHS = ("/v1.0/healthz",)
_HEALTH_METHODS = ("/grpc.health.v1.Health/",)


@dataclass(frozen=True)
class ApiLogging:
    """daprd's `APILoggingSpec` with the flag folded in: the flag turns logging on, as daprd's does."""

    enabled: bool = False
    omit_health_checks: bool = False


class HttpApiLog:
    """ASGI middleware: the status and body size come from what the app sends, the time from the call."""

    def __init__(self, app: ASGIApp, spec: ApiLogging) -> None:
        self.app = app
        self.omit_health = spec.omit_health_checks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if self.omit_health and path.startswith(_HEALTH_PATHS):
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status, size = 500, 0

        async def sending(message: Message) -> None:
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                size += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            fields: dict[str, object] = {
                "duration": int((time.perf_counter() - start) * 1000),
                "method": f"{scope['method']} {path}",
            }
            for name, value in scope["headers"]:
                if name == b"user-agent" and value:
                    fields["useragent"] = value.decode("latin-1")
            fields |= {"code": status, "size": size}
            _HTTP.info("HTTP API Called", extra={FIELDS: fields})


class GrpcApiLog(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Wraps each method's behaviour: the status is the one the call ended with (OK unless it aborted)."""

    def __init__(self, spec: ApiLogging) -> None:
        self.omit_health = spec.omit_health_checks

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        method = str(details.method or "")
        if handler is None or (self.omit_health and method.startswith(_HEALTH_METHODS)):
            return handler
        agent = next((v for k, v in details.invocation_metadata or () if k == "user-agent"), None)
        if handler.unary_unary is not None:
            return handler._replace(unary_unary=_timed(handler.unary_unary, method, agent))
        if handler.unary_stream is not None:
            return handler._replace(unary_stream=_timed(handler.unary_stream, method, agent))
        if handler.stream_unary is not None:
            return handler._replace(stream_unary=_timed(handler.stream_unary, method, agent))
        return handler._replace(stream_stream=_timed(handler.stream_stream, method, agent))


def _timed(behaviour: Callable[..., Any], method: str, agent: object) -> Callable[..., Any]:
    """The same kind of behaviour (an async generator, or a coroutine that may `context.write`)."""

    def log(start: float, context: grpc.aio.ServicerContext, failed: BaseException | None) -> None:
        code = context.code()
        if code is None:
            code = grpc.StatusCode.UNKNOWN if failed is not None else grpc.StatusCode.OK
        fields: dict[str, object] = {"method": method}
        if agent:
            fields["useragent"] = agent
        fields["duration"] = int((time.perf_counter() - start) * 1000)
        fields["code"] = code.value[0] if isinstance(code, grpc.StatusCode) else int(code)
        _GRPC.info("gRPC API Called", extra={FIELDS: fields})

    if inspect.isasyncgenfunction(behaviour):

        async def streamed(request: Any, context: grpc.aio.ServicerContext) -> Any:
            start, failed = time.perf_counter(), None
            try:
                async for reply in behaviour(request, context):
                    yield reply
            except BaseException as exc:
                failed = exc
                raise
            finally:
                log(start, context, failed)

        return streamed

    async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
        start, failed = time.perf_counter(), None
        try:
            return await behaviour(request, context)
        except BaseException as exc:
            failed = exc
            raise
        finally:
            log(start, context, failed)

    return unary
