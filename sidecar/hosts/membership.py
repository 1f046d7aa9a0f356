"""One sidecar's membership of the host: what the server does with the shared registry at each step of its
lifecycle (join once listening, claim the app's actor types, leave first on stop), kept here so the server
only calls it."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import grpc

from sidecar.actors.runtime import ActorHost
from sidecar.hosts.clock import ClockPeers, LocalClock
from sidecar.hosts.internal import ActorForwarding, ActorRouter, InternalRoutes, WorkflowReceiver
from sidecar.hosts.peers import (
    CALLER_APP_HEADER,
    FAILURE_HEADER,
    INTERNAL_PREFIX,
    WORKFLOW_FIELD_PREFIX,
    PeerClients,
    RegistryResolver,
)
from sidecar.hosts.registry import HostRegistry
from sidecar.invoke import Invoker, LocalResolver
from sidecar.workflows.control import WorkflowError

if TYPE_CHECKING:
    from starlette.types import ASGIApp

__all__ = ["HostMembership"]

log = logging.getLogger("sidecar.hosts")


class HostMembership:
    def __init__(self, directory: Path, invoker: Invoker) -> None:
        """Opens the registry in `directory` and makes `invoker` resolve other apps' ids through it."""
        self.registry = HostRegistry(directory)
        self.clients = PeerClients(self.registry.secret)
        self.invoker = invoker
        local = invoker.resolver
        if not isinstance(local, LocalResolver):
            raise TypeError("the host registry extends the invoker's LocalResolver")
        invoker.resolver = RegistryResolver(local, self.registry, self.clients)
        self.app_id = ""
        self.namespace = "default"
        self._workflows: WorkflowReceiver | None = None
        self._clock: LocalClock | None = None

    def http_app(self, api: ASGIApp, local: ASGIApp) -> ASGIApp:
        """The peers' internal routes in front of `api` (which checks the API token); `local` is below it."""
        return InternalRoutes(
            api, local, self.invoker, self.registry.secret, self._receive_workflow, self._clock_state
        )

    async def share_clock(self, local: LocalClock) -> None:
        """Run `local` (this sidecar's dev clock) as one clock with the host's other dev clocks."""
        peers = ClockPeers(self.registry, self.clients)
        local.timeskip.peers = peers
        self._clock = local
        await peers.join(local)

    async def _clock_state(self, verb: str, query: str, body: bytes) -> dict[str, object] | None:
        return None if self._clock is None else await self._clock.handle(verb, query, body)

    def serve_workflows(self, receiver: WorkflowReceiver) -> None:
        """Peers' workflow messages (activities, children, results for this app) go to `receiver`."""
        self._workflows = receiver

    async def _receive_workflow(
        self, caller: str, what: str, fields: Mapping[str, str], body: bytes
    ) -> bytes:
        if self._workflows is None:
            raise LookupError("this sidecar runs no workflow engine")
        return await self._workflows(caller, what, fields, body)

    async def send_workflow(self, app_id: str, what: str, fields: Mapping[str, str], body: bytes) -> bytes:
        """One workflow message (or call) to a sidecar of `app_id`; returns its answer once that sidecar
        committed it, raises `WorkflowError` with the status that sidecar refused it with."""
        peers = self.registry.find_app(app_id, self.namespace)
        if not peers:
            raise LookupError(
                f"no sidecar of app {app_id!r} is running on this host ({self.registry.directory})"
            )
        headers = {WORKFLOW_FIELD_PREFIX + k: v for k, v in fields.items()}
        headers[CALLER_APP_HEADER] = self.app_id
        headers["content-type"] = "application/x-protobuf"
        reply = await self.clients.send(peers[0], "POST", f"{INTERNAL_PREFIX}workflows/{what}", body, headers)
        text = reply.body.decode("utf-8", "replace")
        refusal = reply.headers.get(FAILURE_HEADER)
        if refusal is not None and refusal in grpc.StatusCode.__members__:
            raise WorkflowError(grpc.StatusCode[refusal], text)
        if reply.status not in (200, 204):
            raise OSError(f"app {app_id!r} answered {reply.status}: {text}")
        return reply.body

    def forward_actors(self, app: ASGIApp, host: ActorHost) -> ASGIApp:
        return ActorForwarding(app, self.actor_router(host), self.invoker.resiliency)

    def actor_router(self, host: ActorHost) -> ActorRouter:
        return ActorRouter(host, self.registry, self.clients)

    def find_grpc_peer(self, app_id: str) -> tuple[str, int] | None:
        """(host, gRPC API port) of a live sidecar of `app_id` ("id" or "id.namespace"), else None."""
        name, _, namespace = app_id.partition(".")
        peers = self.registry.find_app(name, namespace or self.namespace)
        return (peers[0].host, peers[0].grpc_port) if peers else None

    def join(self, app_id: str, namespace: str, host: str, http_port: int, grpc_port: int) -> None:
        self.app_id, self.namespace = app_id, namespace
        self.registry.register(app_id, namespace, host, http_port, grpc_port)

    def claim_actor_types(self, host: ActorHost) -> None:
        """Record the app's actor types; a type another live sidecar hosts already is dropped here."""
        refused = self.registry.claim_actor_types(sorted(host.config.entities))
        if refused:
            host.config = dataclasses.replace(host.config, entities=host.config.entities - set(refused))

    def leave(self) -> None:
        """Out of the registry first on stop: peers stop sending calls this sidecar will not serve."""
        self.registry.unregister()

    async def close(self) -> None:
        await self.clients.close()
