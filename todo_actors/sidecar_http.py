"""`SidecarHttp`: keep-alive connections to the sidecar's HTTP API, one pool per event loop, shared by the
actor client, the event publisher and the API's change feed.

Plain Dapr HTTP calls, not the SDK's gRPC `DaprClient`, on the paths taken by every write: measured against
the embedded sidecar, a publish costs 110 µs in the caller and 120 µs in the sidecar over HTTP, against
223 µs and 363 µs over `grpc.aio`; a state read 93 + 170 µs against 247 + 457 µs. One pool per loop: an
aiohttp session must stay on the loop that made it, and one process may drive the actors from several
loops (test servers in threads, workflow activity loops).
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import Callable, Mapping

import aiohttp
from dapr.clients.http.conf import DAPR_API_TOKEN_HEADER, DAPR_USER_AGENT, USER_AGENT_HEADER
from multidict import CIMultiDictProxy

__all__ = ["HeaderSource", "SidecarHttp", "SidecarHttpError", "sdk_endpoint"]

HeaderSource = Callable[[], Mapping[str, str]]


class SidecarHttpError(Exception):
    """A non-2xx answer from the sidecar; `error_code` is daprd's `errorCode` when the body has one."""

    def __init__(self, status: int, body: bytes, what: str) -> None:
        self.status = status
        self.body = body
        self.error_code = ""
        message = body.decode("utf-8", errors="replace")[:300]
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            self.error_code = str(parsed.get("errorCode") or "")
            message = str(parsed.get("message") or message)
        super().__init__(f"{what}: {status} {self.error_code} {message}".replace("  ", " "))


def sdk_endpoint() -> tuple[str, str | None]:
    """The sidecar's HTTP endpoint and API token as the SDK resolves them (`dapr.conf.settings`)."""
    from dapr.conf import settings

    endpoint = settings.DAPR_HTTP_ENDPOINT or f"http://{settings.DAPR_RUNTIME_HOST}:{settings.DAPR_HTTP_PORT}"
    return str(endpoint), settings.DAPR_API_TOKEN


class SidecarHttp:
    """Requests to one sidecar's HTTP API (`base_url`, e.g. `http://127.0.0.1:3500`).

    Every request carries `dapr-api-token` when one is set and, from `extra_headers()`, the caller's
    per-request headers (its trace context).
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_token: str | None = None,
        timeout_seconds: float = 60.0,
        max_connections: int = 256,
        extra_headers: HeaderSource | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.headers = {"Content-Type": "application/json", USER_AGENT_HEADER: DAPR_USER_AGENT}
        if api_token:
            self.headers[DAPR_API_TOKEN_HEADER] = api_token
        self.extra_headers = extra_headers
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._max_connections = max_connections
        self._sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aiohttp.ClientSession] = (
            weakref.WeakKeyDictionary()
        )

    def session(self) -> aiohttp.ClientSession:
        """This event loop's pool (made on first use)."""
        loop = asyncio.get_running_loop()
        session = self._sessions.get(loop)
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(limit=self._max_connections, keepalive_timeout=30)
            session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
            self._sessions[loop] = session
        return session

    async def request(
        self,
        method: str,
        path: str,
        data: bytes | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> tuple[int, CIMultiDictProxy[str], bytes]:
        """Send one request to `path` (under `base_url`); returns status, headers and body of a 2xx
        answer, raises `SidecarHttpError` for any other status."""
        sent = self.headers
        extra = self.extra_headers() if self.extra_headers is not None else None
        if extra or headers:
            sent = {**sent, **(extra or {}), **(headers or {})}
        async with self.session().request(
            method, self.base_url + path, data=data, headers=sent, params=params
        ) as resp:
            body = await resp.read()
            if 200 <= resp.status < 300:
                return resp.status, resp.headers, body
            raise SidecarHttpError(resp.status, body, f"{method} {path}")

    async def close(self) -> None:
        """Close this loop's pool; pools of loops that are gone are dropped (their sockets went with them)."""
        loop = asyncio.get_running_loop()
        for owner, session in list(self._sessions.items()):
            if owner is loop:
                await session.close()
                del self._sessions[owner]
            elif owner.is_closed():
                del self._sessions[owner]
