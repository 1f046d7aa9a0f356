"""`SidecarHttp`: keep-alive connections to the sidecar's HTTP API, one pool per event loop, shared by the
actor client, the event publisher and the API's change feed.

Plain Dapr HTTP calls, not the SDK's gRPC `DaprClient`, on the paths taken by every write: measured against
the embedded sidecar, a publish costs 110 µs in the caller and 120 µs in the sidecar over HTTP, against
223 µs and 363 µs over `grpc.aio`; a state read 93 + 170 µs against 247 + 457 µs. The connections are
`HttpPool`'s, one pool per event loop: a connection belongs to the loop that made it, and one process may
drive the actors from several loops (test servers in threads, workflow activity loops).
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import Callable, Mapping
from urllib.parse import quote, urlencode, urlsplit

from dapr.clients.http.conf import DAPR_API_TOKEN_HEADER, DAPR_USER_AGENT, USER_AGENT_HEADER

from todo_actors.http_pool import HttpPool

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
        url = urlsplit(self.base_url)
        if url.scheme != "http" or not url.hostname:
            raise ValueError(f"the sidecar's HTTP endpoint must be http://host:port, not {base_url!r}")
        self._host, self._port, self._prefix = url.hostname, url.port or 80, url.path
        self.headers = {"Content-Type": "application/json", USER_AGENT_HEADER: DAPR_USER_AGENT}
        if api_token:
            self.headers[DAPR_API_TOKEN_HEADER] = api_token
        self.extra_headers = extra_headers
        self._timeout = timeout_seconds
        self._max_connections = max_connections
        self._pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, HttpPool] = (
            weakref.WeakKeyDictionary()
        )

    def _pool(self) -> HttpPool:
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is None or pool.closed:
            pool = HttpPool(
                self._host, self._port, max_connections=self._max_connections, timeout_seconds=self._timeout
            )
            self._pools[loop] = pool
        return pool

    async def request(
        self,
        method: str,
        path: str,
        data: bytes | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> tuple[int, Mapping[str, str], bytes]:
        """Send one request to `path` (under `base_url`); returns status, headers (lower-case names) and
        body of a 2xx answer, raises `SidecarHttpError` for any other status and aiohttp's
        `ClientConnectionError` when the sidecar cannot be reached."""
        sent = self.headers
        extra = self.extra_headers() if self.extra_headers is not None else None
        if extra or headers:
            sent = {**sent, **(extra or {}), **(headers or {})}
        target = quote(self._prefix + path, safe=_PATH_SAFE)
        if params:
            target += "?" + urlencode(params, quote_via=quote)
        response = await self._pool().request(method, target, data, sent)
        if 200 <= response.status < 300:
            return response.status, response.headers, response.body
        raise SidecarHttpError(response.status, response.body, f"{method} {path}")

    async def close(self) -> None:
        """Close this loop's pool; pools of loops that are gone are dropped (their sockets went with them)."""
        loop = asyncio.get_running_loop()
        for owner, pool in list(self._pools.items()):
            if owner is loop:
                await pool.close()
                del self._pools[owner]
            elif owner.is_closed():
                del self._pools[owner]


# Characters left as they are in a request path (RFC 3986 pchar and "/"; "%" keeps escapes made by callers).
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"
