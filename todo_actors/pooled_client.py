"""`PooledActorClient`: the SDK's actor HTTP API client over keep-alive connection pools, for the actors'
own state, reminder and timer calls and for the API's proxies alike.

The SDK's `DaprActorHttpClient` opens a new TCP connection per call; on a write path of three calls that
is most of the cost. Same wire protocol and error type (`DaprHttpError`). One pool per event loop: the
SDK's actor runtime is one per process, and one registration may be driven from several loops (test
servers in threads, workflow activity loops), while an aiohttp session must stay on the loop it was
made on.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Mapping

import aiohttp
from dapr.clients.base import DAPR_REENTRANCY_ID_HEADER, DaprActorClientBase
from dapr.clients.exceptions import DaprHttpError
from dapr.clients.http.conf import DAPR_API_TOKEN_HEADER, DAPR_USER_AGENT, USER_AGENT_HEADER
from dapr.common.reentrancy_context import reentrancy_ctx
from dapr.serializers import Serializer

__all__ = ["CallCounter", "HeaderSource", "PooledActorClient"]

CallCounter = Callable[[str, str, str], None]
HeaderSource = Callable[[], Mapping[str, str]]


def _no_count(actor_type: str, method: str, outcome: str) -> None:
    return None


class PooledActorClient(DaprActorClientBase):
    """`DaprActorClientBase` over one keep-alive connection pool per event loop to the sidecar's HTTP API.

    `on_call(actor_type, method, outcome)` counts method invocations; `extra_headers()` adds per-call
    headers (the caller's trace context) to every request.
    """

    def __init__(
        self,
        base_url: str,
        serializer: Serializer,
        *,
        api_token: str | None = None,
        timeout_seconds: float = 60.0,
        max_connections: int = 256,
        on_call: CallCounter = _no_count,
        extra_headers: HeaderSource | None = None,
    ) -> None:
        self._base = base_url.rstrip("/") + "/v1.0/actors"
        self._serializer = serializer
        self._headers = {"Content-Type": "application/json", USER_AGENT_HEADER: DAPR_USER_AGENT}
        if api_token:
            self._headers[DAPR_API_TOKEN_HEADER] = api_token
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._max_connections = max_connections
        self._sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aiohttp.ClientSession] = (
            weakref.WeakKeyDictionary()
        )
        self._on_call = on_call
        self._extra_headers = extra_headers

    def _client(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        session = self._sessions.get(loop)
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(limit=self._max_connections, keepalive_timeout=30)
            session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
            self._sessions[loop] = session
        return session

    async def close(self) -> None:
        """Close this loop's pool; pools of loops that are gone are dropped (their sockets went with them)."""
        loop = asyncio.get_running_loop()
        for owner, session in list(self._sessions.items()):
            if owner is loop:
                await session.close()
                del self._sessions[owner]
            elif owner.is_closed():
                del self._sessions[owner]

    async def _send(self, method: str, url: str, data: bytes | None = None) -> bytes:
        headers = self._headers
        reentrancy_id = reentrancy_ctx.get()
        extra = self._extra_headers() if self._extra_headers is not None else None
        if reentrancy_id or extra:
            headers = {**headers, **(extra or {})}
            if reentrancy_id:
                headers[DAPR_REENTRANCY_ID_HEADER] = reentrancy_id
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
