"""`/health/live` (the process answers), `/health/ready` (the sidecar is healthy and the store takes a
write) and `/metrics` (Prometheus text). None needs a token: probes and scrapers carry none."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter
from pydantic import BaseModel
from starlette.responses import Response

from api.deps import ResourcesDep
from api.process.sidecar_link import SidecarError
from api.responses import model_response
from sidecar.wire.http1 import WireError
from todo_actors.sidecar_http import SidecarHttpError

__all__ = ["router"]

log = logging.getLogger("api.health")

router = APIRouter(tags=["health"])

_PROBE_TIMEOUT = 2.0


class Health(BaseModel):
    status: str
    checks: dict[str, str] = {}


@router.get("/health/live", response_model=Health, summary="Liveness: the process serves requests")
async def live() -> Response:
    return model_response(Health(status="ok"))


@router.get(
    "/health/ready",
    response_model=Health,
    responses={503: {"model": Health, "description": "Not ready; `checks` says what failed"}},
    summary="Readiness: sidecar healthy (app channel initialised) and state store writable",
)
async def ready(resources: ResourcesDep) -> Response:
    checks = dict(
        zip(("sidecar", "store"), await asyncio.gather(_sidecar(resources), _store(resources)), strict=True)
    )
    ok = all(v == "ok" for v in checks.values())
    return model_response(Health(status="ready" if ok else "unavailable", checks=checks), 200 if ok else 503)


async def _sidecar(resources: ResourcesDep) -> str:
    try:
        status, _, _ = await resources.http.request("GET", "/v1.0/healthz", timeout=_PROBE_TIMEOUT)
    except SidecarHttpError as exc:
        return f"sidecar answered {exc.status}"
    except WireError as exc:
        return f"unreachable: {type(exc).__name__}"
    return "ok" if status == 204 else f"sidecar answered {status}"


async def _store(resources: ResourcesDep) -> str:
    settings = resources.settings
    try:
        await asyncio.wait_for(
            resources.dapr.save_state(
                settings.state_store, "health|probe", b"1", state_metadata={"ttlInSeconds": "60"}
            ),
            _PROBE_TIMEOUT,
        )
        return "ok"
    except (*SidecarError, TimeoutError) as exc:
        log.warning("readiness: state store write failed: %r", exc)
        return f"write failed: {type(exc).__name__}"


@router.get("/metrics", include_in_schema=False)
async def metrics(resources: ResourcesDep) -> Response:
    return resources.metrics.response()
