"""Several sidecars on one host: the shared registry, and the calls between sidecars it makes possible."""

from __future__ import annotations

from sidecar.hosts.internal import ActorForwarding, InternalRoutes
from sidecar.hosts.membership import HostMembership
from sidecar.hosts.peers import PeerClients, RegistryResolver
from sidecar.hosts.registry import REGISTRY_DIR_ENV, HostRegistry, SidecarEntry, default_registry_dir

__all__ = [
    "REGISTRY_DIR_ENV",
    "ActorForwarding",
    "HostMembership",
    "HostRegistry",
    "InternalRoutes",
    "PeerClients",
    "RegistryResolver",
    "SidecarEntry",
    "default_registry_dir",
]
