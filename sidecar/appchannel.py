"""The sidecar's HTTP client to the app channel (actor calls, `/dapr/config`, `/dapr/subscribe`, deliveries).
The gRPC app channel (`--app-protocol grpc`) is `sidecar.appchannel_grpc`; both share `ChannelBase`.

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

__all__ = ["AppChannel", "AppResponse", "AppUnhealthy", "ChannelBase"]

log = logging.getLogger("sidecar.appchannel")


@dataclass(frozen=True)
class AppResponse:
    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


class AppUnhealthy(ConnectionError):
    """A call refused because app health checks report the app unhealthy (daprd's ErrAppUnhealthy); a
    ConnectionError, so callers treat it like an app that cannot be reached."""

    def __init__(self) -> None:
        super().__init__("app is not in a healthy state")


class ChannelBase:
    """What both app channels share: the app's address, the in-flight count and extra headers the dev
    clock relies on, the wait for the app's port, and the health probe's contract."""

    protocol = "http"

    def __init__(
        self,
        address: str,
        port: int | None,
        *,
        app_token: str | None,
        timeout: float,
        max_concurrency: int | None = None,
    ) -> None:
        self.address = address
        self.port = port
        self._token = app_token
        self._timeout = timeout
        self.in_flight = 0  # requests sent and not yet answered: the dev clock waits for them
        # With the dev clock: extra headers for every call (the clock the app's handlers must see).
        self.extra_headers: Callable[[], Mapping[str, str]] | None = None
        # Set by app health checks (sidecar.health): False refuses invocations and job triggers.
        self.healthy: Callable[[], bool] = lambda: True
        # --app-max-concurrency: calls into the app at once; the rest wait for a slot, as in daprd
        self._slots = asyncio.Semaphore(max_concurrency) if max_concurrency else None
        self._in_flight = _InFlight(self)

    @property
    def configured(self) -> bool:
        return self.port is not None

    @property
    def base_url(self) -> str:
        return f"{self.protocol}://{self.address}:{self.port}"

    def _call_headers(self, headers: Mapping[str, str] | None) -> dict[str, str]:
        hdrs = dict(headers or {})
        if self._token:
            hdrs["dapr-api-token"] = self._token
        if self.extra_headers is not None:
            hdrs.update(self.extra_headers())
        return hdrs

    async def probe_health(self, timeout: float) -> str | None:
        """One app health probe: None when healthy, else why not."""
        raise NotImplementedError

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
        raise NotImplementedError


class AppChannel(ChannelBase):
    """HTTP calls from the sidecar into the app at `http://<address>:<port>`."""

    def __init__(
        self,
        address: str,
        port: int | None,
        *,
        app_token: str | None = None,
        timeout: float = 60.0,
        max_connections: int = 256,
        health_path: str = "/healthz",
        max_concurrency: int | None = None,
    ) -> None:
        super().__init__(address, port, app_token=app_token, timeout=timeout, max_concurrency=max_concurrency)
        self._max_connections = max_connections
        self._http: Http1Client | None = None
        self.health_path = health_path

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
        hdrs = self._call_headers(headers)
        if self._http is None:
            self._http = Http1Client(
                self.address, self.port, timeout=self._timeout, max_connections=self._max_connections
            )
        async with self._in_flight:
            reply = await self._http.request(
                method, path, body, hdrs, timeout=self._timeout if timeout is None else timeout
            )
        return AppResponse(reply.status, reply.body, reply.headers)

    async def probe_health(self, timeout: float) -> str | None:
        """daprd's HTTP probe: `GET <--app-health-check-path>`, healthy on any 2xx."""
        try:
            resp = await self.request("GET", self.health_path, timeout=timeout)
        except (OSError, TimeoutError) as exc:
            return f"health probe failed: {type(exc).__name__}: {exc}"
        if 200 <= resp.status <= 299:
            return None
        return f"health probe returned status code {resp.status}"

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None


class _InFlight:
    """`async with`: count one call to the app while it is sent and answered, within the concurrency
    limit (a plain class: a generator-based context manager cost more than the count itself)."""

    __slots__ = ("_channel",)

    def __init__(self, channel: ChannelBase) -> None:
        self._channel = channel

    async def __aenter__(self) -> None:
        channel = self._channel
        channel.in_flight += 1
        if channel._slots is not None:
            try:
                await channel._slots.acquire()
            except BaseException:
                channel.in_flight -= 1
                raise

    async def __aexit__(self, *_: object) -> None:
        channel = self._channel
        if channel._slots is not None:
            channel._slots.release()
        channel.in_flight -= 1
