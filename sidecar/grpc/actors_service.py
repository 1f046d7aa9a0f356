"""The actor RPCs of `dapr.proto.runtime.v1.Dapr` (what the Go and Java SDKs call), mixed into `DaprService`.
Each converts its message at the boundary and calls the entry points the HTTP actor routes call, so turns,
reentrancy, the dev clock and forwarding to the sidecar of the app hosting a type apply unchanged."""

from __future__ import annotations

import base64
import dataclasses
import json
import posixpath
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, NoReturn

import grpc
from dapr.proto.runtime.v1 import actors_pb2
from google.protobuf import any_pb2, empty_pb2, wrappers_pb2

from sidecar.actors import invoke_method
from sidecar.actors.invoke import error_reply, under_policy
from sidecar.actors.reminders import FAILURE_POLICY_REFUSED, ReminderInfo, ReminderSpec
from sidecar.actors.state import StateOperation
from sidecar.actors.timers import TimerSpec
from sidecar.errors import ERRORS, DaprError, ErrorKind, error
from sidecar.gojson import go_quote

if TYPE_CHECKING:
    from sidecar.hosts.internal import ActorRouter
    from sidecar.hosts.registry import SidecarEntry
    from sidecar.server import Sidecar
    from sidecar.wire.http1 import Response

__all__ = ["ActorsMixin"]

# daprd's ExecuteActorStateTransaction refuses other operation types with apierrors.Basic (Unimplemented).
_UNSUPPORTED_OPERATION = ErrorKind(
    "ERR_NOT_SUPPORTED_STATE_OPERATION", 500, grpc.StatusCode.UNIMPLEMENTED, grpc_basic=True
)
_ERROR_HEADER = "x-daprerrorresponseheader"
_CAMEL = {"due_time": "dueTime"}  # a spec's field named as the HTTP API's JSON body names it


async def _abort(context: grpc.aio.ServicerContext, exc: DaprError) -> NoReturn:
    await context.abort(exc.grpc_status, exc.message, trailing_metadata=exc.grpc_trailer())
    raise AssertionError("grpc's abort raises")  # pragma: no cover


def _name_problem(name: str) -> str | None:
    """daprd's `method.ValidateName`: why `name` cannot be a reminder, timer, actor type or id name."""
    if any(c in name for c in "#?\x00/\\"):
        return f"name contains forbidden character: {go_quote(name)}"
    for i, ch in enumerate(name.encode("utf-8")):
        if ch < 0x20 or ch == 0x7F:
            return f"name contains control character at position {i}: {go_quote(name)}"
    if name in (".", ".."):
        return f"name is a path traversal sequence: {go_quote(name)}"
    return None


def _normalize_method(method: str) -> str:
    """daprd's `method.NormalizeMethod`: no `#`, `?` or control characters; `..` resolved away."""
    if any(c in method for c in "#?\x00"):
        raise ValueError(f"method contains forbidden character: {go_quote(method)}")
    for i, ch in enumerate(method.encode("utf-8")):
        if ch < 0x20 or ch == 0x7F:
            raise ValueError(f"method contains control character at position {i}: {go_quote(method)}")
    cleaned = posixpath.normpath(method) if method else "."
    if cleaned.startswith("//"):  # normpath keeps a leading "//" (POSIX), Go's path.Clean does not
        cleaned = "/" + cleaned.lstrip("/")
    while cleaned.startswith("../"):
        cleaned = cleaned[3:]
    return "" if cleaned in ("..", ".") else cleaned


def _bad_name(name: str) -> DaprError | None:
    problem = _name_problem(name)
    return None if problem is None else error("ERR_BAD_REQUEST", f"invalid request: {problem}")


def _json_bytes(data: bytes) -> str | None:
    """daprd json.Marshal's the request's bytes: the reminder or timer data is their base64 text."""
    return base64.b64encode(data).decode("ascii") if data else None


def _reminder(info: ReminderInfo) -> dict[str, Any]:
    """The fields of an `ActorReminder`: daprd keeps the data as its JSON text in a BytesValue."""
    out: dict[str, Any] = {"actor_type": info.actor_type, "actor_id": info.actor_id}
    if info.due_time:
        out["due_time"] = info.due_time
    if info.period:
        out["period"] = info.period
    if info.ttl:
        out["ttl"] = info.ttl
    if info.data is not None:
        data = any_pb2.Any()
        text = json.dumps(info.data, separators=(",", ":"), ensure_ascii=False)
        data.Pack(wrappers_pb2.BytesValue(value=text.encode()))
        out["data"] = data
    return out


def _remote_error(status: int, body: bytes) -> DaprError:
    """The error a peer sidecar answered a forwarded call with (daprd's `{errorCode, message}` body)."""
    try:
        found = json.loads(body)
        code, message = str(found["errorCode"]), str(found["message"])
    except (ValueError, TypeError, KeyError):
        code, message = "", body.decode("utf-8", "replace")
    if code in ERRORS:
        return error(code, message)
    return error("ERR_ACTOR_INVOKE_METHOD", f"error invoke actor method: ({status}) {message}")


def _path(*parts: str) -> str:
    return "actors/" + "/".join(urllib.parse.quote(p, safe="") for p in parts)


class ActorsMixin:
    sidecar: Sidecar

    # -- routing: this app's actor host, or the sidecar of the app hosting the type ---------------------

    def _actor_router(self) -> ActorRouter | None:
        membership = self.sidecar.membership
        return None if membership is None else membership.actor_router(self.sidecar.actor_host)

    async def _peer(self, actor_type: str) -> tuple[ActorRouter, SidecarEntry] | None:
        router = self._actor_router()
        if router is None:
            return None
        peer = await router.peer_for(actor_type)
        return None if peer is None else (router, peer)

    async def _send(
        self,
        via: tuple[ActorRouter, SidecarEntry],
        verb: str,
        path: str,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """The reply of the sidecar whose app hosts the actor: a success, or one the app flagged as an
        actor error (.NET's header, passed back as data); any other raises daprd's error for it."""
        router, peer = via
        reply = await router.send(peer, verb, path, body, dict(headers or {}))
        if 200 <= reply.status < 300 or _ERROR_HEADER in reply.headers:
            return reply
        raise _remote_error(reply.status, reply.body)

    async def _here_or_there(
        self,
        context: grpc.aio.ServicerContext,
        request: Any,
        kind: str,
        verb: str,
        local: Callable[[], Awaitable[None]],
        spec: ReminderSpec | TimerSpec | None = None,
    ) -> None:
        """`local` when this app hosts the request's actor type; else the same call (`spec` as the HTTP
        API's JSON body) on the actor API (`kind`: reminders or timers) of the sidecar whose app does; an
        error ends the RPC."""
        try:
            await self._run_here_or_there(request, kind, verb, local, spec)
        except DaprError as exc:
            await _abort(context, exc)

    async def _run_here_or_there(
        self,
        request: Any,
        kind: str,
        verb: str,
        local: Callable[[], Awaitable[None]],
        spec: ReminderSpec | TimerSpec | None,
    ) -> None:
        via = await self._peer(request.actor_type)
        if via is None:
            await local()
            return
        body = {}
        if spec is not None:
            if isinstance(spec, ReminderSpec) and not spec.overwrite:
                raise error(
                    "ERR_ACTOR_REMINDER_CREATE",
                    "error creating actor reminder: overwrite=false is not supported for a type another "
                    "app on this host hosts (the HTTP API it is forwarded by has no such flag)",
                )
            body = {_CAMEL.get(k, k): v for k, v in dataclasses.asdict(spec).items() if k != "overwrite"}
        path = _path(request.actor_type, request.actor_id, kind, request.name)
        await self._send(via, verb, path, json.dumps(body).encode() if body else b"")

    # -- methods ------------------------------------------------------------------------------------

    async def InvokeActor(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        """The app's reply body as `data`; a reply the .NET SDK flags with `X-DaprErrorResponseHeader`
        goes back as data too, as daprd does."""
        for field, value in (("actorType", request.actor_type), ("actorId", request.actor_id)):
            problem = _name_problem(value)
            if problem is not None:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"invalid {field}: {problem}")
        try:
            method = _normalize_method(request.method)
        except ValueError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"invalid actor method: {exc}")
        headers = dict(request.metadata)  # daprd hands the metadata to the app as headers
        resiliency = self.sidecar.resiliency

        async def attempt() -> tuple[bytes, bool]:
            """(the reply body, whether the app flagged it an actor error): here or at the host's sidecar."""
            via = await self._peer(request.actor_type)
            if via is not None:
                path = _path(request.actor_type, request.actor_id, "method") + "/"
                path += urllib.parse.quote(method, safe="/")
                sent = await self._send(via, "PUT", path, bytes(request.data), headers)
                return sent.body, _ERROR_HEADER in sent.headers
            reply = await invoke_method(
                self.sidecar.actor_host,
                request.actor_type,
                request.actor_id,
                method,
                bytes(request.data),
                headers,
                timeout=resiliency.actor_timeout(request.actor_type),
            )
            return reply.body, error_reply(reply.headers)

        # The actors target's retries and breaker run here, in the calling sidecar, as over HTTP.
        policy = resiliency.actor(request.actor_type, request.actor_id)
        try:
            body, _ = await under_policy(policy, attempt, lambda reply: reply[1])
        except DaprError as exc:
            await _abort(context, exc)
        return actors_pb2.InvokeActorResponse(data=body)

    # -- state (only for actors active in this sidecar: never forwarded) -------------------------------

    async def GetActorState(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            item = await self.sidecar.actor_state.read(request.actor_type, request.actor_id, request.key)
        except DaprError as exc:
            await _abort(context, exc)
        if item is None:
            return actors_pb2.GetActorStateResponse()
        return actors_pb2.GetActorStateResponse(data=item.value, metadata=dict(item.metadata))

    async def ExecuteActorStateTransaction(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        """Upserts store the value's bytes as they are; deletes take no metadata (daprd passes none)."""
        ops = []
        for op in request.operations:
            if op.operationType == "upsert":
                ops.append(StateOperation("upsert", op.key, bytes(op.value.value), None, dict(op.metadata)))
            elif op.operationType == "delete":
                ops.append(StateOperation("delete", op.key))
            else:
                message = f"operation type {op.operationType} not supported"
                await _abort(context, DaprError(_UNSUPPORTED_OPERATION, message))
        try:
            await self.sidecar.actor_state.execute(request.actor_type, request.actor_id, ops)
        except DaprError as exc:
            await _abort(context, exc)
        return empty_pb2.Empty()

    # -- reminders ----------------------------------------------------------------------------------

    async def RegisterActorReminder(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        if request.HasField("failure_policy"):
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, FAILURE_POLICY_REFUSED)
        problem = (
            error("ERR_BAD_REQUEST", "invalid request: reminder name cannot be empty")
            if not request.name
            else _bad_name(request.name)
        )
        if problem is not None:
            await _abort(context, problem)
        spec = ReminderSpec(
            request.due_time,
            request.period,
            request.ttl,
            _json_bytes(request.data),
            overwrite=request.overwrite if request.HasField("overwrite") else True,
        )
        reminders = self.sidecar.reminders
        await self._here_or_there(
            context,
            request,
            "reminders",
            "PUT",
            lambda: reminders.put(request.actor_type, request.actor_id, request.name, spec),
            spec,
        )
        return empty_pb2.Empty()

    async def UnregisterActorReminder(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        reminders = self.sidecar.reminders
        await self._here_or_there(
            context,
            request,
            "reminders",
            "DELETE",
            lambda: reminders.delete(request.actor_type, request.actor_id, request.name),
        )
        return empty_pb2.Empty()

    async def GetActorReminder(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            via = await self._peer(request.actor_type)
            if via is not None:
                path = _path(request.actor_type, request.actor_id, "reminders", request.name)
                found = json.loads((await self._send(via, "GET", path)).body)
                info = (
                    ReminderInfo(
                        request.name,
                        request.actor_type,
                        request.actor_id,
                        found.get("dueTime", ""),
                        found.get("period", ""),
                        "",  # the HTTP answer has no ttl
                        found.get("data"),
                    )
                    if found
                    else None
                )
            else:
                info = await self.sidecar.reminders.info(request.actor_type, request.actor_id, request.name)
            if info is None:
                raise error("ERR_ACTOR_REMINDER_NOT_FOUND", f"actor reminder not found: {request.name}")
        except DaprError as exc:
            await _abort(context, exc)
        return actors_pb2.GetActorReminderResponse(**_reminder(info))

    async def ListActorReminders(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        """Only for a type this app hosts, as in daprd (no HTTP route to forward it by)."""
        actor_id = request.actor_id if request.HasField("actor_id") else None
        try:
            found = await self.sidecar.reminders.list_all(request.actor_type, actor_id)
        except DaprError as exc:
            await _abort(context, exc)
        return actors_pb2.ListActorRemindersResponse(
            reminders=[
                actors_pb2.NamedActorReminder(name=r.name, reminder=actors_pb2.ActorReminder(**_reminder(r)))
                for r in found
            ]
        )

    async def UnregisterActorRemindersByType(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        """Every reminder of the type, or of one actor when `actor_id` is set; a hosted type only."""
        actor_id = request.actor_id if request.HasField("actor_id") else None
        try:
            await self.sidecar.reminders.delete_all(request.actor_type, actor_id)
        except DaprError as exc:
            await _abort(context, exc)
        return actors_pb2.UnregisterActorRemindersByTypeResponse()

    # -- timers -------------------------------------------------------------------------------------

    async def RegisterActorTimer(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        problem = _bad_name(request.name)
        if problem is not None:
            await _abort(context, problem)
        spec = TimerSpec(
            request.due_time, request.period, request.ttl, request.callback, _json_bytes(request.data)
        )
        timers = self.sidecar.timers
        await self._here_or_there(
            context,
            request,
            "timers",
            "PUT",
            lambda: timers.start(request.actor_type, request.actor_id, request.name, spec),
            spec,
        )
        return empty_pb2.Empty()

    async def UnregisterActorTimer(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        timers = self.sidecar.timers
        await self._here_or_there(
            context,
            request,
            "timers",
            "DELETE",
            lambda: timers.delete(request.actor_type, request.actor_id, request.name),
        )
        return empty_pb2.Empty()
