"""Connecting to the sidecar from an app's lifespan: the process's one HTTP client to it, waiting for it
without blocking the loop, then the gRPC `DaprClient` (whose constructor probes health synchronously, so it
must find the sidecar up)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import grpc
from dapr.aio.clients import DaprClient
from dapr.clients.exceptions import DaprInternalError

from api.middleware.tracing import outgoing_headers
from api.process.settings import Settings
from api.process.shared import Shared
from sidecar.wire.http1 import WireError
from todo_actors.sidecar_http import SidecarHttp, SidecarHttpError

__all__ = [
    "SidecarError",
    "actor_host_http",
    "grpc_status",
    "open_dapr_client",
    "sidecar_http",
    "wait_for_sidecar",
]

SidecarError = (grpc.RpcError, DaprInternalError, SidecarHttpError, WireError)
"""What a call to the sidecar raises when the sidecar refuses or fails it, or cannot be reached: a gRPC
`DaprClient` call or a `SidecarHttp` request."""

log = logging.getLogger("api.sidecar")

_made = threading.Lock()


def sidecar_http(settings: Settings, shared: Shared) -> SidecarHttp:
    """The process's client to its sidecar's HTTP API for callers, kept on `shared` (the public app and the
    channel share its connections; each loop has its own). Closing it closes the running loop's."""
    with _made:
        if shared.sidecar is None:
            shared.sidecar = _client(settings)
        return shared.sidecar


def actor_host_http(settings: Settings) -> SidecarHttp:
    """The hosted actors' own client to the sidecar (their state, reminder, timer and publish calls), apart
    from `sidecar_http`'s.

    A call that waits for an actor turn (a public request, a delivery's owner lookup, a workflow activity)
    holds a connection of its pool until the turn is done, and the turn needs a connection for its state.
    In one pool, as many waiting callers as the pool has connections would leave no turn a connection,
    and every caller would wait for its timeout. The turns' calls never wait for a turn, so their own pool
    always drains."""
    return _client(settings)


def _client(settings: Settings) -> SidecarHttp:
    return SidecarHttp(
        settings.dapr_http_endpoint,
        api_token=settings.dapr_token,
        extra_headers=outgoing_headers,
        max_connections=settings.sidecar_connections,
    )


async def wait_for_sidecar(settings: Settings, http: SidecarHttp) -> None:
    """Return once the sidecar's outbound health answers 2xx; RuntimeError after `sidecar_wait_seconds`."""
    deadline = time.monotonic() + settings.sidecar_wait_seconds
    delay = 0.05
    while True:
        try:
            await http.request("GET", "/v1.0/healthz/outbound", timeout=2)
            return
        except (SidecarHttpError, WireError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"the Dapr sidecar at {settings.dapr_http_endpoint} did not become healthy "
                f"within {settings.sidecar_wait_seconds:.0f} s"
            )
        await asyncio.sleep(delay)
        delay = min(delay * 2, 1.0)


def open_dapr_client(settings: Settings) -> DaprClient:
    return DaprClient(address=settings.dapr_grpc_address)


def grpc_status(exc: BaseException) -> grpc.StatusCode | None:
    """The gRPC status behind a `DaprClient` error. Most calls raise `DaprGrpcError` (an `RpcError`);
    `save_state` raises `DaprInternalError` with the `AioRpcError` as its cause."""
    for candidate in (exc, exc.__cause__):
        if isinstance(candidate, grpc.RpcError):
            code = candidate.code()
            return code if isinstance(code, grpc.StatusCode) else None
    return None
