"""Connecting to the sidecar from an app's lifespan: wait for it without blocking the loop, then open the
gRPC `DaprClient` (whose constructor probes health synchronously, so it must find the sidecar up)."""

from __future__ import annotations

import asyncio
import logging
import time

import aiohttp
import grpc
from dapr.aio.clients import DaprClient
from dapr.clients.exceptions import DaprInternalError

from api.process.settings import Settings
from todo_actors.sidecar_http import SidecarHttpError

__all__ = ["SidecarError", "grpc_status", "open_dapr_client", "wait_for_sidecar"]

SidecarError = (grpc.RpcError, DaprInternalError, SidecarHttpError, aiohttp.ClientError)
"""What a call to the sidecar raises when the sidecar refuses or fails it, or cannot be reached: a gRPC
`DaprClient` call or a `SidecarHttp` request."""

log = logging.getLogger("api.sidecar")


async def wait_for_sidecar(settings: Settings, http: aiohttp.ClientSession) -> None:
    """Return once the sidecar's outbound health answers 2xx; RuntimeError after `sidecar_wait_seconds`."""
    url = f"{settings.dapr_http_endpoint}/v1.0/healthz/outbound"
    deadline = time.monotonic() + settings.sidecar_wait_seconds
    delay = 0.05
    while True:
        try:
            async with http.get(url, timeout=aiohttp.ClientTimeout(total=2)) as resp:
                if 200 <= resp.status < 300:
                    return
        except (aiohttp.ClientError, TimeoutError):
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
