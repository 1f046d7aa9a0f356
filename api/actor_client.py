"""The API's actor proxies: the SDK's `ActorProxy`, typed by interface, over the pooled actor client
(`todo_actors.pooled_client`) instead of a new TCP connection per call."""

from __future__ import annotations

from typing import Any, TypeVar, cast

from dapr.actor import ActorId, ActorInterface, ActorProxy
from dapr.serializers import Serializer

from todo_actors.pooled_client import PooledActorClient

__all__ = ["ActorProxies", "PooledActorClient"]

P = TypeVar("P", bound=ActorInterface)


class _InterfaceProxy(ActorProxy):
    """An `ActorProxy` callable by the interface's Python method names (`proxy.add_list(...)`), not
    only by actor method names (`proxy.AddList(...)`), so the typed interface is true at run time."""

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._actor_interface, name, None)
        return super().__getattr__(getattr(method, "__actormethod__", None) or name)


class ActorProxies:
    """Makes typed actor proxies over one client and one serializer (practice 4)."""

    def __init__(self, client: PooledActorClient, serializer: Serializer) -> None:
        self.client = client
        self._serializer = serializer

    def get(self, interface: type[P], actor_type: str, actor_id: str) -> P:
        proxy = _InterfaceProxy(self.client, actor_type, ActorId(actor_id), interface, self._serializer)
        return cast(P, proxy)

    async def close(self) -> None:
        await self.client.close()
