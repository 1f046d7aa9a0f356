"""One sidecar's membership of the host: what the server does with the shared registry at each step of its
lifecycle (join once listening, claim the app's actor types, leave first on stop), kept here so the server
only calls it."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from sidecar.actors.runtime import ActorHost
from sidecar.hosts.internal import ActorForwarding, InternalRoutes
from sidecar.hosts.peers import PeerClients, RegistryResolver
from sidecar.hosts.registry import HostRegistry
from sidecar.invoke import Invoker, LocalResolver

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

    def http_app(self, api: ASGIApp, local: ASGIApp) -> ASGIApp:
        """The peers' internal routes in front of `api` (which checks the API token); `local` is below it."""
        return InternalRoutes(api, local, self.invoker, self.registry.secret)

    def forward_actors(self, app: ASGIApp, host: ActorHost) -> ASGIApp:
        return ActorForwarding(app, host, self.registry, self.clients)

    def join(self, app_id: str, namespace: str, host: str, http_port: int, grpc_port: int) -> None:
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
