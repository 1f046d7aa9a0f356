"""Calling the actors from the app: `PooledActorClient`, the SDK's actor client over the process's one
client to its sidecar (`SidecarHttp`), and `ActorProxies`, the typed proxies the API and the workflow
activities both call the actors through.

The SDK's `DaprActorHttpClient` opens a new TCP connection per call; on a write path of three calls that
is most of the cost. Same wire protocol and error type (`DaprHttpError`). Only public SDK seams: an
`ActorProxy` made on a `DaprActorClientBase`, and its `invoke_method`.
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Callable
from typing import Any, TypeVar, cast
from urllib.parse import quote

from dapr.actor import ActorId, ActorInterface, ActorProxy
from dapr.clients.base import DAPR_REENTRANCY_ID_HEADER, DaprActorClientBase
from dapr.clients.exceptions import DaprHttpError
from dapr.common.reentrancy_context import reentrancy_ctx
from dapr.serializers import Serializer

from todo_actors.sidecar_http import SidecarHttp, SidecarHttpError

__all__ = ["ActorProxies", "CallCounter", "PooledActorClient"]

CallCounter = Callable[[str, str, str], None]

P = TypeVar("P", bound=ActorInterface)

_ACTORS = "/v1.0/actors"


def _no_count(actor_type: str, method: str, outcome: str) -> None:
    return None


class PooledActorClient(DaprActorClientBase):
    """`DaprActorClientBase` over `http` (its keep-alive pools; `http` is for other Dapr HTTP calls too).

    `on_call(actor_type, method, outcome)` counts method invocations.
    """

    def __init__(
        self, http: SidecarHttp, serializer: Serializer, *, on_call: CallCounter = _no_count
    ) -> None:
        self.http = http
        self._serializer = serializer
        self._on_call = on_call

    async def close(self) -> None:
        """Close the running loop's connections (see `SidecarHttp.close`)."""
        await self.http.close()

    async def _send(self, method: str, path: str, data: bytes | None = None) -> bytes:
        reentrancy_id = reentrancy_ctx.get()
        headers = {DAPR_REENTRANCY_ID_HEADER: reentrancy_id} if reentrancy_id else None
        try:
            _, _, body = await self.http.request(method, _ACTORS + path, data, headers=headers)
        except SidecarHttpError as exc:
            raise DaprHttpError(self._serializer, exc.body, exc.status, None) from None
        return body

    async def invoke_method(
        self, actor_type: str, actor_id: str, method: str, data: bytes | None = None
    ) -> bytes:
        outcome = "error"
        try:
            body = await self._send("POST", f"/{actor_type}/{_segment(actor_id)}/method/{method}", data)
            outcome = "ok"
            return body
        finally:
            self._on_call(actor_type, method, outcome)

    async def save_state_transactionally(self, actor_type: str, actor_id: str, data: bytes) -> None:
        await self._send("PUT", f"/{actor_type}/{_segment(actor_id)}/state", data)

    async def get_state(self, actor_type: str, actor_id: str, name: str) -> bytes:
        return await self._send("GET", f"/{actor_type}/{_segment(actor_id)}/state/{name}")

    async def register_reminder(self, actor_type: str, actor_id: str, name: str, data: bytes) -> None:
        await self._send("PUT", f"/{actor_type}/{_segment(actor_id)}/reminders/{name}", data)

    async def unregister_reminder(self, actor_type: str, actor_id: str, name: str) -> None:
        await self._send("DELETE", f"/{actor_type}/{_segment(actor_id)}/reminders/{name}")

    async def register_timer(self, actor_type: str, actor_id: str, name: str, data: bytes) -> None:
        await self._send("PUT", f"/{actor_type}/{_segment(actor_id)}/timers/{name}", data)

    async def unregister_timer(self, actor_type: str, actor_id: str, name: str) -> None:
        await self._send("DELETE", f"/{actor_type}/{_segment(actor_id)}/timers/{name}")


def _segment(actor_id: str) -> str:
    # An actor id is any string (the owner index's is a user id): one escaped path segment, decoded back
    # by the sidecar, so `?`, `#` and `%` in it stay part of the id.
    return quote(actor_id, safe="")


@functools.cache
def _methods(interface: type[ActorInterface]) -> dict[str, tuple[str, Any]]:
    """name -> (actor method, return type), by Python name and by actor method name, once per interface
    (the SDK's `ActorProxy` inspects the whole interface again in every proxy, one per request)."""
    methods: dict[str, tuple[str, Any]] = {}
    for name, member in vars(interface).items():
        if name.startswith("_") or not callable(member):
            continue
        actor_method = getattr(member, "__actormethod__", None) or name
        methods[name] = methods[actor_method] = (actor_method, typing.get_type_hints(member).get("return"))
    return methods


class _Call:
    """One actor method of a proxy: serializes the argument, invokes, deserializes the reply (as the
    SDK's `CallableProxy`, without keeping a reference cycle with its proxy)."""

    __slots__ = ("_method", "_proxy", "_returns", "_serializer")

    def __init__(self, proxy: ActorProxy, method: str, returns: Any, serializer: Serializer) -> None:
        self._proxy, self._method, self._returns, self._serializer = proxy, method, returns, serializer

    async def __call__(self, arg: object = None) -> Any:
        data = arg if arg is None or isinstance(arg, bytes) else self._serializer.serialize(arg)
        reply = await self._proxy.invoke_method(self._method, data)
        return self._serializer.deserialize(reply, self._returns or object)


class _TypedProxy(ActorProxy):
    """An `ActorProxy` callable by the interface's Python method names (`proxy.add_todo(...)`) as well as
    by actor method names (`proxy.AddTodo(...)`), so the typed interface is true at run time."""

    def __init__(
        self,
        client: DaprActorClientBase,
        actor_type: str,
        actor_id: str,
        interface: type[ActorInterface],
        serializer: Serializer,
    ) -> None:
        super().__init__(client, actor_type, ActorId(actor_id), interface, serializer)
        self._typed = (_methods(interface), serializer, interface.__name__)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        methods, serializer, interface = self._typed
        found = methods.get(name)
        if found is None:
            raise AttributeError(f"{interface} has no attribute {name}")
        return _Call(self, found[0], found[1], serializer)


class ActorProxies:
    """Makes typed actor proxies over one actor client and one serializer (practice 4)."""

    def __init__(self, client: PooledActorClient, serializer: Serializer) -> None:
        self.client = client
        self._serializer = serializer

    def get(self, interface: type[P], actor_type: str, actor_id: str) -> P:
        return cast(P, _TypedProxy(self.client, actor_type, actor_id, interface, self._serializer))

    async def close(self) -> None:
        await self.client.close()
