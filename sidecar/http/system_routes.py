"""Health, metadata and the dev-only clock routes of the sidecar's HTTP API."""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sidecar.clock import ManualClock
from sidecar.errors import error
from sidecar.metadata import metadata_of
from sidecar.supervision import FORCE_SHUTDOWN
from sidecar.timeskip import NotSettled, TimeSkipper

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
        return JSONResponse(metadata_of(sidecar))

    async def metadata_put(request: Request) -> Response:
        key = request.path_params["key"]
        sidecar.extended_metadata[key] = (await request.body()).decode("utf-8", "replace")
        return Response(status_code=204)

    async def shutdown(request: Request) -> Response:
        sidecar.shutdown(force=request.headers.get(FORCE_SHUTDOWN, "").lower() == "true")
        return Response(status_code=204)

    out: list[BaseRoute] = [
        Route("/v1.0/healthz", healthz, methods=["GET"]),
        Route("/v1.0/healthz/outbound", healthz_outbound, methods=["GET"]),
        Route("/v1.0/metadata", metadata_get, methods=["GET"]),
        Route("/v1.0/metadata/{key}", metadata_put, methods=["PUT"]),
        Route("/v1.0/shutdown", shutdown, methods=["POST"]),
    ]
    skipper = sidecar.timeskip
    if isinstance(sidecar.clock, ManualClock) and skipper is not None:
        manual: ManualClock = sidecar.clock
        timeskip: TimeSkipper = skipper

        def state() -> dict[str, Any]:
            return {"now": manual.now(), "offset_seconds": manual.offset, "advancing": timeskip.advancing}

        async def clock_get(request: Request) -> Response:
            return JSONResponse(state())

        async def clock_advance(request: Request) -> Response:
            """Time passes with the engine up: every due thing fires at its instant, in order."""
            seconds, wait, settle_timeout = _advance_request(await request.body())
            if not wait:
                timeskip.advance_in_background(seconds, settle_timeout=settle_timeout)
                return JSONResponse({**state(), "target": manual.now() + seconds}, status_code=202)
            try:
                done = await timeskip.advance(seconds, settle_timeout=settle_timeout)
            except NotSettled as exc:
                body = {"errorCode": "ERR_DEV_CLOCK_NOT_SETTLED", "message": str(exc)}
                return JSONResponse({**body, **exc.result.as_json(), "busy": exc.busy}, status_code=504)
            return JSONResponse({**state(), **done.as_json()})

        out += [
            Route("/v1.0-dev/clock", clock_get, methods=["GET"]),
            Route("/v1.0-dev/clock/advance", clock_advance, methods=["POST"]),
        ]
    return out


def _advance_request(raw: bytes) -> tuple[float, bool, float]:
    """`{"seconds": N, "wait": true, "settle_timeout": 30}` -> its values; DaprError when malformed."""
    try:
        body = json.loads(raw or b"{}")
        if not isinstance(body, dict):
            raise TypeError("the body must be a JSON object")
        numbers: dict[str, float] = {}
        for name in ("seconds", "settle_timeout"):
            value = body.get(name, 30 if name == "settle_timeout" else None)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise TypeError(f"{name} must be a finite number")
            numbers[name] = float(value)
        seconds, settle, wait = numbers["seconds"], numbers["settle_timeout"], body.get("wait", True)
        if not isinstance(wait, bool):
            raise TypeError("wait must be true or false")
        if seconds < 0 or settle <= 0:
            raise ValueError("seconds must be >= 0 and settle_timeout > 0")
    except (ValueError, TypeError) as exc:
        raise error(
            "ERR_MALFORMED_REQUEST",
            f'expected {{"seconds": N}} with N >= 0 (optional "wait": bool, "settle_timeout": s > 0): {exc}',
        ) from exc
    return seconds, wait, settle
