"""The API's actor proxies: the SDK's `ActorProxy`, typed by interface, over the pooled actor client
(`todo_actors.pooled_client`) instead of a new TCP connection per call."""

from __future__ import annotations

import functools
from typing import Any, TypeVar, cast

from dapr.actor import ActorId, ActorInterface, ActorProxy
from dapr.actor.client.proxy import CallableProxy
from dapr.actor.runtime._type_utils import get_dispatchable_attrs_from_interface
from dapr.serializers import Serializer

from todo_actors.pooled_client import PooledActorClient

__all__ = ["ActorProxies", "PooledActorClient"]

P = TypeVar("P", bound=ActorInterface)


@functools.cache
def _dispatchable(interface: type[ActorInterface]) -> dict[str, dict[str, Any]]:
    """The interface's methods as the SDK describes them, worked out once per interface (the SDK's
    `ActorProxy` inspects the whole interface again in every proxy, one per request)."""
    attrs: dict[str, dict[str, Any]] = {}
    get_dispatchable_attrs_from_interface(interface, attrs)
    return attrs


class _InterfaceProxy(ActorProxy):
    """An `ActorProxy` callable by the interface's Python method names (`proxy.add_list(...)`), not
    only by actor method names (`proxy.AddList(...)`), so the typed interface is true at run time.

    Its `CallableProxy`s are not kept on the proxy: the pair made a reference cycle per request, which
    only the cyclic collector could free."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        interface = self._actor_interface
        if interface is None:
            raise ValueError("actor_interface is not set. use invoke method.")
        method = getattr(interface, name, None)
        actor_method = getattr(method, "__actormethod__", None) or name
        call_type = _dispatchable(interface).get(actor_method)
        if call_type is None:
            raise AttributeError(f"{interface.__name__} has no attribute {name}")
        return CallableProxy(self, call_type, self._message_serializer)


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
