"""The caller's side of sidecar-to-sidecar calls on one host: `RegistryResolver` (the invoker's `Resolver`
for other apps' ids, found in the host registry) and the HTTP client both invocation and actor forwarding
use to reach a peer sidecar's internal routes (`sidecar.hosts.internal`).

daprd calls the remote sidecar's internal gRPC port (`ServiceInvocation/CallLocal`) with the caller's
identity in its mTLS certificate; here the hop is HTTP/1.1 on the peer's API port, with the caller's app id
in headers that only count when the host secret comes with them.
"""

from __future__ import annotations

import itertools
import logging
import urllib.parse
from collections.abc import Mapping

import grpc

from sidecar.hosts.registry import HostRegistry, SidecarEntry
from sidecar.invoke.acl import CallerIdentity
from sidecar.invoke.grpc_app import GrpcStatus
from sidecar.invoke.headers import joined_headers
from sidecar.invoke.invoker import InvokeFailure, InvokeRequest, InvokeResponse, InvokeTarget, LocalResolver
from sidecar.wire.http1 import Http1Client, Response

__all__ = [
    "CALLER_APP_HEADER",
    "CALLER_NAMESPACE_HEADER",
    "FAILURE_HEADER",
    "GRPC_MESSAGE_HEADER",
    "GRPC_STATUS_HEADER",
    "INTERNAL_PREFIX",
    "SECRET_HEADER",
    "TRAILER_PREFIX",
    "TYPE_URL_HEADER",
    "VERB_HEADER",
    "WORKFLOW_FIELD_PREFIX",
    "PeerClients",
    "RegistryResolver",
]

log = logging.getLogger("sidecar.hosts")

INTERNAL_PREFIX = "/v1.0-internal/"
SECRET_HEADER = "dapr-internal-host-secret"
CALLER_APP_HEADER = "dapr-internal-caller-app-id"
CALLER_NAMESPACE_HEADER = "dapr-internal-caller-namespace"
VERB_HEADER = "dapr-internal-verb"
# The callee answers a failed invocation (no answer from its app, access denied) with this header naming the
# gRPC status, and daprd's error text as the body.
FAILURE_HEADER = "dapr-internal-failure"
# A gRPC app's answer: its status code and message, its trailers (each name prefixed) and the data's type
# URL (also of the request's data) travel in these headers, so the caller's sidecar answers as the app did.
GRPC_STATUS_HEADER = "dapr-internal-grpc-status"
GRPC_MESSAGE_HEADER = "dapr-internal-grpc-message"
TRAILER_PREFIX = "dapr-internal-trailer-"
TYPE_URL_HEADER = "dapr-internal-type-url"
# A workflow message's fields (instance, execution, extra) travel as headers with this prefix.
WORKFLOW_FIELD_PREFIX = "dapr-internal-wf-"
# What the peer's HTTP server adds or frames itself: never passed back as the app's headers.
REPLY_DROP = frozenset({"content-length", "transfer-encoding", "connection", "date", "server", "keep-alive"})


class PeerClients:
    """Kept-alive HTTP clients to peer sidecars, one per address, all presenting the host secret."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self._clients: dict[tuple[str, int], Http1Client] = {}

    async def send(
        self, peer: SidecarEntry, verb: str, target: str, body: bytes, headers: Mapping[str, str]
    ) -> Response:
        """One request to `peer`'s API port; raises `sidecar.wire.http1.WireError` (an OSError)."""
        key = (peer.host, peer.http_port)
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = Http1Client(peer.host, peer.http_port, timeout=None)
        return await client.request(verb, target, body, {**headers, SECRET_HEADER: self.secret})

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()


class RegistryResolver:
    """Own app id first (`LocalResolver`), then the live sidecars of the host registry, round-robin over
    the replicas of an app id as daprd's mDNS resolver does."""

    def __init__(self, local: LocalResolver, registry: HostRegistry, clients: PeerClients) -> None:
        self.local = local
        self.registry = registry
        self.clients = clients
        self._turn = itertools.count()

    def resolve(self, app_id: str) -> InvokeTarget:
        try:
            return self.local.resolve(app_id)
        except LookupError:
            if app_id.startswith(("http://", "https://")):
                raise
        name, _, namespace = app_id.partition(".")
        peers = self.registry.find_app(name, namespace or self.local.namespace)
        if not peers:
            raise LookupError(f"couldn't find service: {app_id}")
        return _PeerTarget(peers[next(self._turn) % len(peers)], self.clients)


class _PeerTarget:
    """A peer sidecar serving the app id: its internal invoke route runs its `call_local`."""

    def __init__(self, peer: SidecarEntry, clients: PeerClients) -> None:
        self.peer = peer
        self.clients = clients

    async def call(self, request: InvokeRequest, caller: CallerIdentity) -> InvokeResponse:
        target = INTERNAL_PREFIX + "invoke/" + urllib.parse.quote(request.method, safe="/")
        if request.query:
            target += "?" + request.query
        framing = ("content-type", "content-length", "host")
        headers = joined_headers([(k, v) for k, v in request.headers if k.lower() not in framing])
        headers[CALLER_APP_HEADER] = caller.app_id
        headers[CALLER_NAMESPACE_HEADER] = caller.namespace
        headers[VERB_HEADER] = request.verb
        if request.content_type:
            headers["content-type"] = request.content_type
        if request.type_url:
            headers[TYPE_URL_HEADER] = request.type_url
        try:
            reply = await self.clients.send(self.peer, "POST", target, request.body, headers)
        except (OSError, ValueError) as exc:
            raise InvokeFailure(
                grpc.StatusCode.UNAVAILABLE,
                f"error invoking app {self.peer.app_id} at sidecar "
                f"{self.peer.host}:{self.peer.http_port}: {exc or type(exc).__name__}",
            ) from None
        failure = reply.headers.get(FAILURE_HEADER)
        if failure:
            code = getattr(grpc.StatusCode, failure, grpc.StatusCode.UNKNOWN)
            raise InvokeFailure(code, reply.body.decode("utf-8", "replace"))
        kept = {k.lower(): v for k, v in reply.headers.items() if k.lower() not in REPLY_DROP}
        content_type = kept.pop("content-type", "")
        type_url = kept.pop(TYPE_URL_HEADER, "")
        code = kept.pop(GRPC_STATUS_HEADER, None)
        if code is None:
            return InvokeResponse(reply.status, reply.body, kept, content_type)
        message = urllib.parse.unquote(kept.pop(GRPC_MESSAGE_HEADER, ""))
        trailers = {k[len(TRAILER_PREFIX) :]: v for k, v in kept.items() if k.startswith(TRAILER_PREFIX)}
        headers = {k: v for k, v in kept.items() if not k.startswith(TRAILER_PREFIX)}
        status = GrpcStatus(int(code), message, trailers)
        return InvokeResponse(reply.status, reply.body, headers, content_type, status, type_url)
