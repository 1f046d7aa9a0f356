"""Sidecar-to-sidecar routes on the HTTP API port, both ends: `InternalRoutes` serves a peer's calls
(`/v1.0-internal/invoke/...` runs the invoker's `call_local`, which applies this app's access control to the
caller's app id, as daprd's callee does; `/v1.0-internal/actors/...` runs the actor API here), and
`ActorForwarding` sends actor calls for types another app hosts to that app's sidecar, as daprd's placement
table routes them. Only callers presenting the host secret reach the internal routes.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

from sidecar.actors.invoke import FORWARDED_SCOPE, error_reply, under_policy
from sidecar.actors.runtime import ActorHost
from sidecar.errors import error
from sidecar.hosts.peers import (
    CALLER_APP_HEADER,
    CALLER_NAMESPACE_HEADER,
    FAILURE_HEADER,
    GRPC_MESSAGE_HEADER,
    GRPC_STATUS_HEADER,
    INTERNAL_PREFIX,
    REPLY_DROP,
    SECRET_HEADER,
    TRAILER_PREFIX,
    TYPE_URL_HEADER,
    VERB_HEADER,
    WORKFLOW_FIELD_PREFIX,
    PeerClients,
)
from sidecar.hosts.registry import HostRegistry, SidecarEntry
from sidecar.invoke import CallerIdentity, InvokeFailure, Invoker, InvokeRequest
from sidecar.resiliency import Resiliency
from sidecar.wire.http1 import Response
from sidecar.workflows.control import WorkflowError

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["ActorForwarding", "ActorRouter", "ClockHandler", "InternalRoutes", "WorkflowReceiver"]

# (caller app, what, fields, body) -> the answer (empty for a message, once committed): a peer's workflow
# message (workflows/crossapp.py) or call (a recursive purge).
WorkflowReceiver = Callable[[str, str, Mapping[str, str], bytes], Awaitable[bytes]]
# (verb, query, body) -> JSON answer, or None without a dev clock: a peer's look at this clock (clock.py)
ClockHandler = Callable[[str, str, bytes], Awaitable["dict[str, object] | None"]]

log = logging.getLogger("sidecar.hosts")

_FORWARDED = FORWARDED_SCOPE  # scope key: an actor call a peer forwarded here, never forwarded on
_ACTORS = "/v1.0/actors/"
_FORWARDED_KINDS = ("method", "reminders", "timers")
# daprd DaprBuiltInActorNotFoundRetries: a type nobody hosts yet is looked up 5 more times, 1 s apart.
_LOOKUP_RETRIES = 5
_LOOKUP_BACKOFF = 1.0
_INTERNAL_HEADERS = frozenset(
    {
        SECRET_HEADER,
        CALLER_APP_HEADER,
        CALLER_NAMESPACE_HEADER,
        VERB_HEADER,
        TYPE_URL_HEADER,
        "host",
        "content-length",
    }
)


async def _body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _answer(send: Send, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class InternalRoutes:
    """In front of the API's token check: `/v1.0-internal/...` from peers (host secret), the rest to `api`;
    `local` is the API below the token check, where forwarded actor calls go."""

    def __init__(
        self,
        api: ASGIApp,
        local: ASGIApp,
        invoker: Invoker,
        secret: str,
        workflows: WorkflowReceiver,
        clock: ClockHandler,
    ) -> None:
        self.api = api
        self.local = local
        self.invoker = invoker
        self.secret = secret.encode()
        self.workflows = workflows
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(INTERNAL_PREFIX):
            await self.api(scope, receive, send)
            return
        given = next((v for k, v in scope["headers"] if k == SECRET_HEADER.encode()), b"")
        if not hmac.compare_digest(given, self.secret):
            await _answer(send, 401, [("content-type", "text/plain")], b"invalid host secret")
            return
        rest = path[len(INTERNAL_PREFIX) :]
        if rest.startswith("invoke/"):
            await self._invoke(scope, receive, send, rest[len("invoke/") :])
        elif rest == "clock":
            query = scope.get("query_string", b"").decode("latin-1")
            state = await self.clock(scope["method"], query, await _body(receive))
            if state is None:
                await _answer(send, 404, [("content-type", "text/plain")], b"this sidecar has no dev clock")
            else:
                await _answer(send, 200, [("content-type", "application/json")], json.dumps(state).encode())
        elif rest.startswith("workflows/"):
            await self._workflow(scope, receive, send, rest[len("workflows/") :])
        elif rest.startswith("actors/"):
            local_path = "/v1.0/" + rest
            inner = dict(scope, path=local_path, raw_path=local_path.encode(), **{_FORWARDED: True})
            await self.local(inner, receive, send)
        else:
            await _answer(send, 404, [("content-type", "text/plain")], b"no such internal route")

    async def _invoke(self, scope: Scope, receive: Receive, send: Send, method: str) -> None:
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        found = dict(headers)
        caller = CallerIdentity(
            found.get(CALLER_APP_HEADER, ""), found.get(CALLER_NAMESPACE_HEADER, "default")
        )
        request = InvokeRequest(
            method=urllib.parse.unquote(method),
            verb=found.get(VERB_HEADER, ""),
            query=scope.get("query_string", b"").decode("latin-1"),
            headers=[(k, v) for k, v in headers if k not in _INTERNAL_HEADERS and k != "content-type"],
            body=await _body(receive),
            content_type=found.get("content-type", ""),
            type_url=found.get(TYPE_URL_HEADER, ""),
        )
        try:
            reply = await self.invoker.call_local(request, caller)
        except InvokeFailure as exc:
            failure = [(FAILURE_HEADER, exc.code.name), ("content-type", "text/plain")]
            await _answer(send, 500, failure, exc.message.encode())
            return
        out = [(k, v) for k, v in reply.headers.items() if k.lower() not in REPLY_DROP | {"content-type"}]
        if reply.content_type:
            out.append(("content-type", reply.content_type))
        if reply.grpc is not None:
            out.append((GRPC_STATUS_HEADER, str(reply.grpc.code)))
            out.append((GRPC_MESSAGE_HEADER, urllib.parse.quote(reply.grpc.message)))
            out += [(TRAILER_PREFIX + k, v) for k, v in reply.grpc.trailers.items()]
            out.append((TYPE_URL_HEADER, reply.type_url))
        await _answer(send, reply.status, out, reply.body)

    async def _workflow(self, scope: Scope, receive: Receive, send: Send, what: str) -> None:
        """A peer's workflow message: 204 once committed here (the peer then drops it), 200 with the answer of
        a call; else 500, naming the gRPC status of a refusal (e.g. NOT_FOUND) in the failure header."""
        found = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        fields = {
            k[len(WORKFLOW_FIELD_PREFIX) :]: v
            for k, v in found.items()
            if k.startswith(WORKFLOW_FIELD_PREFIX)
        }
        try:
            caller = found.get(CALLER_APP_HEADER, "")
            answer = await self.workflows(caller, what, fields, await _body(receive))
        except Exception as exc:
            log.warning(
                "workflow message %r from app %r not recorded: %s", what, found.get(CALLER_APP_HEADER), exc
            )
            headers = [("content-type", "text/plain")]
            if isinstance(exc, WorkflowError):
                headers.append((FAILURE_HEADER, exc.status.name))
            await _answer(send, 500, headers, str(exc).encode())
            return
        if answer:
            await _answer(send, 200, [("content-type", "application/x-protobuf")], answer)
        else:
            await _answer(send, 204, [], b"")


class ActorRouter:
    """Where an actor call for a type goes, as daprd's placement table routes it: here when this app hosts
    the type, else to the sidecar whose app does (both API wires use it)."""

    def __init__(self, host: ActorHost, registry: HostRegistry, clients: PeerClients) -> None:
        self.host = host
        self.registry = registry
        self.clients = clients

    async def peer_for(self, actor_type: str) -> SidecarEntry | None:
        """None when this app hosts `actor_type`, else the sidecar that does, looked up again like daprd
        before the call fails."""
        await self.host.wait_ready()
        for attempt in range(_LOOKUP_RETRIES + 1):
            if self.host.hosts(actor_type):
                return None
            peer = self.registry.find_actor_host(actor_type)
            if peer is not None:
                return peer
            if attempt < _LOOKUP_RETRIES:
                await asyncio.sleep(_LOOKUP_BACKOFF)
        raise error(
            "ERR_ACTOR_INVOKE_METHOD",
            f"error invoke actor method: did not find address for actor {actor_type}",
        )

    async def send(
        self, peer: SidecarEntry, verb: str, path: str, body: bytes, headers: Mapping[str, str]
    ) -> Response:
        """One actor API call (`path` after `/v1.0/`, query included) run by `peer`'s sidecar."""
        try:
            return await self.clients.send(peer, verb, INTERNAL_PREFIX + path, body, headers)
        except OSError as exc:
            raise error(
                "ERR_ACTOR_INVOKE_METHOD",
                f"error invoke actor method: error from actor host {peer.app_id}: "
                f"{exc or type(exc).__name__}",
            ) from None


class ActorForwarding:
    """Actor method, reminder and timer calls for a type this app does not host go to the sidecar whose
    app hosts it (reminders and timers then live and fire there, with the actor)."""

    def __init__(self, app: ASGIApp, router: ActorRouter, resiliency: Resiliency | None = None) -> None:
        self.app = app
        self.router = router
        self.resiliency = resiliency or Resiliency()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(_ACTORS) or scope.get(_FORWARDED):
            await self.app(scope, receive, send)
            return
        parts = path[len(_ACTORS) :].split("/", 3)
        if len(parts) < 4 or parts[2] not in _FORWARDED_KINDS:
            await self.app(scope, receive, send)
            return
        peer = await self.router.peer_for(urllib.parse.unquote(parts[0]))
        if peer is None:
            await self.app(scope, receive, send)
        else:
            await self._forward(peer, scope, receive, send)

    async def _forward(self, peer: SidecarEntry, scope: Scope, receive: Receive, send: Send) -> None:
        target = scope["raw_path"].decode("latin-1")[len("/v1.0/") :]
        query = scope.get("query_string", b"")
        if query:
            target += "?" + query.decode("latin-1")
        headers = {
            k.decode("latin-1"): v.decode("latin-1")
            for k, v in scope["headers"]
            if k not in (b"dapr-api-token", b"host", b"content-length")
        }
        body = await _body(receive)
        parts = scope["path"][len(_ACTORS) :].split("/", 3)
        # A method call gets the actors target's retries and breaker here, in the calling sidecar.
        policy = None
        if parts[2] == "method":
            policy = self.resiliency.actor(urllib.parse.unquote(parts[0]), urllib.parse.unquote(parts[1]))
        reply = await under_policy(
            policy,
            lambda: self.router.send(peer, scope["method"], target, body, headers),
            lambda reply: reply.status != 200 or error_reply(reply.headers),
        )
        out = [(k, v) for k, v in reply.headers.items() if k not in REPLY_DROP]
        await _answer(send, reply.status, out, reply.body)
