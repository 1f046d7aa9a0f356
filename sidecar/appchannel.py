"""The sidecar's HTTP client to the app channel (actor calls, `/dapr/config`, `/dapr/subscribe`, deliveries).

Pooled keep-alive connections (`sidecar.wire.http1`, the app's client too): every actor turn and event
delivery reuses a connection instead of paying TCP setup. Adds `dapr-api-token: <APP_API_TOKEN>` to every
call when configured, as daprd does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from sidecar.wire.http1 import Http1Client

__all__ = ["AppChannel", "AppResponse"]

log = logging.getLogger("sidecar.appchannel")


@dataclass(frozen=True)
class AppResponse:
    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


class AppChannel:
    """HTTP calls from the sidecar into the app at `http://<address>:<port>`."""

    def __init__(
        self,
        address: str,
        port: int | None,
        *,
        app_token: str | None = None,
        timeout: float = 60.0,
        max_connections: int = 256,
    ) -> None:
        self.address = address
        self.port = port
        self._token = app_token
        self._timeout = timeout
        self._max_connections = max_connections
        self._http: Http1Client | None = None
        self.in_flight = 0  # requests sent and not yet answered: the dev clock waits for them
        # With the dev clock: extra headers for every call (the clock the app's handlers must see).
        self.extra_headers: Callable[[], Mapping[str, str]] | None = None

    @property
    def configured(self) -> bool:
        return self.port is not None

    @property
    def base_url(self) -> str:
        return f"http://{self.address}:{self.port}"

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> AppResponse:
        """Send one request to the app; failures propagate as `sidecar.wire.http1.WireError` (an `OSError`;
        `ConnectionError` when the app cannot be reached, `TimeoutError` for a timeout)."""
        if self.port is None:
            raise ConnectionError("no app port configured")
        hdrs = dict(headers or {})
        if self._token:
            hdrs["dapr-api-token"] = self._token
        if self.extra_headers is not None:
            hdrs.update(self.extra_headers())
        if self._http is None:
            self._http = Http1Client(
                self.address, self.port, timeout=self._timeout, max_connections=self._max_connections
            )
        self.in_flight += 1
        try:
            reply = await self._http.request(
                method, path, body, hdrs, timeout=self._timeout if timeout is None else timeout
            )
        finally:
            self.in_flight -= 1
        return AppResponse(reply.status, reply.body, reply.headers)

    async def wait_until_listening(self, poll: float = 0.1) -> None:
        """Wait until the app port accepts TCP connections (daprd polls every 100 ms)."""
        if self.port is None:
            return
        while True:
            try:
                _, writer = await asyncio.open_connection(self.address, self.port)
            except OSError:
                await asyncio.sleep(poll)
                continue
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass
            return

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None
