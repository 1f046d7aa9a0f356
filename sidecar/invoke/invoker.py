"""Service invocation: one path from the HTTP and gRPC APIs to the app that serves an app id.

The `Resolver` is the one seam for finding an app id: the local one knows only this sidecar's own app;
a registry of other sidecars plugs in there (each remote target calls that sidecar's `call_local`, which
applies its access control list as daprd's callee does). Calls to the own app id go straight to the app
channel, without access control, as daprd's `invokeLocal` does.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import grpc

from sidecar.appchannel import AppChannel
from sidecar.appchannel_grpc import GrpcAppChannel
from sidecar.invoke.acl import AccessControlList, CallerIdentity
from sidecar.invoke.grpc_app import GrpcStatus, call_grpc_app, http_status_from_code, status_json
from sidecar.invoke.headers import (
    CALLEE_ID,
    CALLER_ID,
    CALLER_NAMESPACE,
    http_headers_to_forward,
    joined_headers,
    normalize_method,
)
from sidecar.resiliency import FAILED, CircuitOpen, Resiliency

__all__ = [
    "InvokeFailure",
    "InvokeRequest",
    "InvokeResponse",
    "InvokeTarget",
    "Invoker",
    "LocalResolver",
    "Resolver",
]

log = logging.getLogger("sidecar.invoke")


@dataclass
class InvokeRequest:
    """One invocation as daprd's `InvokeMethodRequest` holds it: `verb` is "" when the caller gave none
    (gRPC without an HTTP extension); `headers` are the caller's headers or metadata, in order."""

    method: str
    verb: str = "GET"
    query: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    content_type: str = ""
    type_url: str = ""  # the type URL of a gRPC caller's `Any` data, passed on to a gRPC app


@dataclass(frozen=True)
class InvokeResponse:
    """`status` is an HTTP status; a gRPC app's answer also has its `grpc` status (then `status` is daprd's
    HTTP mapping of it, and `body` of a failure is the status as JSON, what an HTTP caller gets)."""

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str = ""
    grpc: GrpcStatus | None = None
    type_url: str = ""


class InvokeFailure(Exception):
    """The invocation never got an answer from the app: `code` is the gRPC status daprd's transport
    reports (PERMISSION_DENIED from a callee's access control decides the HTTP status), `message` its
    error text as Go prints it. `bare`: a resiliency policy stopped the call (a timeout, an open circuit
    breaker), which daprd's gRPC `InvokeService` returns as it is, not as `ERR_DIRECT_INVOKE`."""

    def __init__(self, code: grpc.StatusCode, message: str, *, bare: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.bare = bare


def status_error_text(code: grpc.StatusCode, message: str) -> str:
    """Go's `status.Error(...).Error()`: `rpc error: code = PermissionDenied desc = ...`."""
    name = "".join(part.capitalize() for part in code.name.split("_"))
    return f"rpc error: code = {_GO_CODE_NAMES.get(code, name)} desc = {message}"


_GO_CODE_NAMES = {grpc.StatusCode.OK: "OK", grpc.StatusCode.CANCELLED: "Canceled"}


class InvokeTarget(Protocol):
    """Where a resolved app id is served."""

    async def call(self, request: InvokeRequest, caller: CallerIdentity) -> InvokeResponse:
        """Deliver the request; raises `InvokeFailure`."""
        ...


class Resolver(Protocol):
    """Finds the target of an app id; raises `LookupError` (with daprd's message) when none is known."""

    def resolve(self, app_id: str) -> InvokeTarget: ...


class LocalResolver:
    """A single host: the own app id (also as `<id>.<namespace>` with the own namespace) and nothing else."""

    def __init__(self, app_id: str, namespace: str, local: InvokeTarget) -> None:
        self.app_id = app_id
        self.namespace = namespace
        self.local = local

    def resolve(self, app_id: str) -> InvokeTarget:
        if app_id.startswith(("http://", "https://")):
            raise LookupError(
                f"invoking the external endpoint {app_id} (daprd's HTTPEndpoint invocation) is not "
                "supported by the embedded todo-engine sidecar"
            )
        name, _, namespace = app_id.partition(".")
        if name == self.app_id and namespace in ("", self.namespace):
            return self.local
        raise LookupError(f"couldn't find service: {app_id}")


class Invoker:
    """Invocation for one sidecar: `invoke` as a caller, `call_local` as a callee."""

    def __init__(
        self,
        app_id: str,
        channel: AppChannel | GrpcAppChannel,
        *,
        acl: AccessControlList | None = None,
        namespace: str = "default",
        resolver: Resolver | None = None,
        resiliency: Resiliency | None = None,
    ) -> None:
        """`resiliency`: the sidecar's Resiliency resources (their app endpoint policies apply here)."""
        self.identity = CallerIdentity(app_id, namespace)
        self.channel = channel
        self.acl = acl
        self.resiliency = resiliency or Resiliency()
        self.resolver: Resolver = resolver or LocalResolver(app_id, namespace, _OwnApp(self))

    async def invoke(self, app_id: str, request: InvokeRequest, *, grpc_api: bool = False) -> InvokeResponse:
        """Invoke `request.method` on `app_id`; raises `InvokeFailure` for daprd's `ERR_DIRECT_INVOKE`.
        `grpc_api`: the caller used gRPC `InvokeService`, where daprd counts other replies as failed."""
        try:
            request.method = normalize_method(request.method)
        except ValueError as exc:
            raise InvokeFailure(
                grpc.StatusCode.INVALID_ARGUMENT,
                status_error_text(grpc.StatusCode.INVALID_ARGUMENT, f"invalid method: {exc}"),
            ) from None
        try:
            target = self.resolver.resolve(app_id)
        except LookupError as exc:
            raise InvokeFailure(grpc.StatusCode.UNAVAILABLE, str(exc.args[0] if exc.args else exc)) from None
        policy = self.resiliency.endpoint(app_id, request.method)
        if policy is None:
            return await target.call(request, self.identity)
        try:
            return await policy.run(
                lambda: target.call(request, self.identity),
                _grpc_api_failed if grpc_api else _http_api_failed,
            )
        except TimeoutError:
            code, message = grpc.StatusCode.DEADLINE_EXCEEDED, "context deadline exceeded"
            raise InvokeFailure(code, message, bare=True) from None
        except CircuitOpen as exc:  # gobreaker's error: a plain Go error, UNKNOWN over gRPC
            raise InvokeFailure(grpc.StatusCode.UNKNOWN, str(exc), bare=True) from None

    async def call_local(self, request: InvokeRequest, caller: CallerIdentity) -> InvokeResponse:
        """A call from another sidecar into this app: access control first, as daprd's `CallLocal`."""
        if self.acl is not None:
            allowed, message = self.acl.check(caller, request.method, request.verb)
            if not allowed:
                raise InvokeFailure(
                    grpc.StatusCode.PERMISSION_DENIED,
                    status_error_text(grpc.StatusCode.PERMISSION_DENIED, message),
                )
        return await self.call_app(request, caller)

    async def call_app(self, request: InvokeRequest, caller: CallerIdentity) -> InvokeResponse:
        """Send the request over the app channel as daprd's HTTP or gRPC channel builds it."""
        if not self.channel.configured:
            raise InvokeFailure(
                grpc.StatusCode.INTERNAL, "cannot invoke local endpoint: app channel not initialized"
            )
        headers = [
            (k, v)
            for k, v in http_headers_to_forward(request.headers)
            if k not in (CALLER_ID, CALLER_NAMESPACE, CALLEE_ID)  # never spoofed by the caller
        ]
        headers += [(CALLER_NAMESPACE, caller.namespace), (CALLER_ID, caller.app_id)]
        headers.append((CALLEE_ID, self.identity.app_id))
        if isinstance(self.channel, GrpcAppChannel):
            return await self._call_grpc_app(request, headers)
        if request.content_type:
            headers.append(("content-type", request.content_type))
        path = "/" + request.method.lstrip("/") if request.method else "/"
        if request.query:
            path += "?" + request.query
        verb = request.verb or "NONE"  # daprd sends the verb enum's name, NONE without an HTTP extension
        try:
            reply = await self.channel.request(verb, path, body=request.body, headers=joined_headers(headers))
        except (OSError, TimeoutError) as exc:
            url = f"{self.channel.base_url}{path}"
            raise InvokeFailure(
                grpc.StatusCode.INTERNAL, f'{verb.capitalize()} "{url}": {exc or type(exc).__name__}'
            ) from None
        return InvokeResponse(reply.status, reply.body, reply.headers, reply.content_type)

    async def _call_grpc_app(self, request: InvokeRequest, headers: list[tuple[str, str]]) -> InvokeResponse:
        assert isinstance(self.channel, GrpcAppChannel)
        data = (request.body, request.content_type, request.type_url)
        try:
            answer = await call_grpc_app(
                self.channel, request.method, request.verb, request.query, headers, data
            )
        except (OSError, TimeoutError) as exc:
            raise InvokeFailure(
                grpc.StatusCode.INTERNAL, f"error invoking app over gRPC: {exc or type(exc).__name__}"
            ) from None
        status = answer.status
        if status.code:
            return InvokeResponse(
                http_status_from_code(status.code), status_json(status), answer.headers, "", status
            )
        return InvokeResponse(200, answer.body, answer.headers, answer.content_type, status, answer.type_url)


def _http_api_failed(reply: InvokeResponse) -> int | None:
    """daprd's HTTP invoke: an HTTP app's status outside 2xx/3xx fails (a `CodeError`); a gRPC app's
    answer never does (its status is passed on, mapped)."""
    return None if reply.grpc is not None or 200 <= reply.status <= 399 else reply.status


def _grpc_api_failed(reply: InvokeResponse) -> int | None:
    """daprd's gRPC `InvokeService`: a gRPC app's error status or an HTTP app's non-2xx fails, as an error
    that is not a `CodeError` (retried whatever the policy's `matching`)."""
    if reply.grpc is not None:
        return FAILED if reply.grpc.code else None
    return None if 200 <= reply.status < 300 else FAILED


class _OwnApp:
    """The own app id: daprd's `invokeLocal` (no access control; caller and callee are this app)."""

    def __init__(self, invoker: Invoker) -> None:
        self.invoker = invoker

    async def call(self, request: InvokeRequest, caller: CallerIdentity) -> InvokeResponse:
        return await self.invoker.call_app(request, caller)
