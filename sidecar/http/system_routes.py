"""Health, metadata and the dev-only clock routes of the sidecar's HTTP API."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sidecar.clock import ManualClock
from sidecar.errors import error

if TYPE_CHECKING:
    from sidecar.server import Sidecar

__all__ = ["routes"]


def routes(sidecar: Sidecar) -> list[BaseRoute]:
    async def healthz(request: Request) -> Response:
        appid = request.query_params.get("appid")
        if appid is not None and appid != sidecar.config.app_id:
            raise error("ERR_HEALTH_APPID_NOT_MATCH", "dapr app-id does not match")
        if not sidecar.ready.is_set():
            raise error("ERR_HEALTH_NOT_READY", "dapr is not ready")
        return Response(status_code=204)

    async def healthz_outbound(request: Request) -> Response:
        if not sidecar.outbound_ready.is_set():
            raise error("ERR_OUTBOUND_HEALTH_NOT_READY", "dapr outbound is not ready")
        return Response(status_code=204)

    async def metadata_get(request: Request) -> Response:
        return JSONResponse(sidecar.metadata())

    async def metadata_put(request: Request) -> Response:
        key = request.path_params["key"]
        sidecar.extended_metadata[key] = (await request.body()).decode("utf-8", "replace")
        return Response(status_code=204)

    out: list[BaseRoute] = [
        Route("/v1.0/healthz", healthz, methods=["GET"]),
        Route("/v1.0/healthz/outbound", healthz_outbound, methods=["GET"]),
        Route("/v1.0/metadata", metadata_get, methods=["GET"]),
        Route("/v1.0/metadata/{key}", metadata_put, methods=["PUT"]),
    ]
    clock = sidecar.clock
    if isinstance(clock, ManualClock):
        manual: ManualClock = clock

        async def clock_get(request: Request) -> Response:
            return JSONResponse({"now": manual.now(), "offset_seconds": manual.offset})

        async def clock_advance(request: Request) -> Response:
            try:
                body = json.loads(await request.body() or b"{}")
                seconds = float(body["seconds"])
                if seconds < 0 or seconds != seconds:
                    raise ValueError("seconds must be >= 0")
            except (ValueError, KeyError, TypeError) as exc:
                raise error("ERR_MALFORMED_REQUEST", f'expected {{"seconds": N}} with N >= 0: {exc}') from exc
            now = manual.advance(seconds)
            sidecar.save_dev_clock()
            try:
                # Let jobs now due be dispatched before answering, so a test sees their effects.
                await sidecar.scheduler.settled()
            except TimeoutError:
                pass  # a slow app callback must not turn a successful advance into an error
            return JSONResponse({"now": now, "offset_seconds": manual.offset})

        out += [
            Route("/v1.0-dev/clock", clock_get, methods=["GET"]),
            Route("/v1.0-dev/clock/advance", clock_advance, methods=["POST"]),
        ]
    return out
