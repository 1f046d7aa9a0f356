"""The API's actor proxies: the SDK's `ActorProxy` over one pooled aiohttp session instead of a new one
(a new TCP connection) per call, which is what the SDK's `DaprActorHttpClient` does.

Same wire protocol and the same error type (`DaprHttpError`) as the SDK's client; every call is counted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import aiohttp
from dapr.actor import ActorId, ActorInterface, ActorProxy
from dapr.clients.base import DAPR_REENTRANCY_ID_HEADER, DaprActorClientBase
from dapr.clients.exceptions import DaprHttpError
from dapr.clients.http.conf import DAPR_API_TOKEN_HEADER, DAPR_USER_AGENT, USER_AGENT_HEADER
from dapr.common.reentrancy_context import reentrancy_ctx
from dapr.serializers import Serializer

__all__ = ["ActorProxies", "PooledActorClient"]

P = TypeVar("P", bound=ActorInterface)

CallCounter = Callable[[str, str, str], None]


def _no_count(actor_type: str, method: str, outcome: str) -> None:
    return None


class PooledActorClient(DaprActorClientBase):
    """`DaprActorClientBase` over a keep-alive connection pool to the sidecar's HTTP API."""

    def __init__(
        self,
        base_url: str,
        serializer: Serializer,
        *,
        api_token: str | None = None,
        timeout_seconds: float = 60.0,
        max_connections: int = 256,
        on_call: CallCounter = _no_count,
    ) -> None:
        self._base = base_url.rstrip("/") + "/v1.0/actors"
        self._serializer = serializer
        self._headers = {"Content-Type": "application/json", USER_AGENT_HEADER: DAPR_USER_AGENT}
        if api_token:
            self._headers[DAPR_API_TOKEN_HEADER] = api_token
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._on_call = on_call

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._max_connections, keepalive_timeout=30)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _send(self, method: str, url: str, data: bytes | None = None) -> bytes:
        headers = self._headers
        reentrancy_id = reentrancy_ctx.get()
        if reentrancy_id:
            headers = {**headers, DAPR_REENTRANCY_ID_HEADER: reentrancy_id}
        async with self._client().request(method, url, data=data, headers=headers) as resp:
            body = await resp.read()
            if 200 <= resp.status < 300:
                return body
            raise DaprHttpError(self._serializer, body, resp.status, resp.reason)

    async def invoke_method(
        self, actor_type: str, actor_id: str, method: str, data: bytes | None = None
    ) -> bytes:
        outcome = "error"
        try:
            body = await self._send("POST", f"{self._base}/{actor_type}/{actor_id}/method/{method}", data)
            outcome = "ok"
            return body
        finally:
            self._on_call(actor_type, method, outcome)

    async def save_state_transactionally(self, actor_type: str, actor_id: str, data: bytes) -> None:
        await self._send("PUT", f"{self._base}/{actor_type}/{actor_id}/state", data)

    async def get_state(self, actor_type: str, actor_id: str, name: str) -> bytes:
        return await self._send("GET", f"{self._base}/{actor_type}/{actor_id}/state/{name}")

    async def register_reminder(self, actor_type: str, actor_id: str, name: str, data: bytes) -> None:
        await self._send("PUT", f"{self._base}/{actor_type}/{actor_id}/reminders/{name}", data)

    async def unregister_reminder(self, actor_type: str, actor_id: str, name: str) -> None:
        await self._send("DELETE", f"{self._base}/{actor_type}/{actor_id}/reminders/{name}")

    async def register_timer(self, actor_type: str, actor_id: str, name: str, data: bytes) -> None:
        await self._send("PUT", f"{self._base}/{actor_type}/{actor_id}/timers/{name}", data)

    async def unregister_timer(self, actor_type: str, actor_id: str, name: str) -> None:
        await self._send("DELETE", f"{self._base}/{actor_type}/{actor_id}/timers/{name}")


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
