"""`/v1/dev/clock` (only with `--dev-clock`): read and advance the sidecar's manual clock, so reminders
and timers due in a month fire now. The app's clock follows the sidecar's offset."""

from __future__ import annotations

import datetime as dt
import json

import aiohttp
from fastapi import APIRouter
from starlette.responses import Response

from api.deps import CurrentUser, ResourcesDep
from api.openapi import problem_responses
from api.problems import ServiceUnavailable
from api.responses import model_response
from api.schemas import ClockAdvance, ClockState

__all__ = ["router", "sync_clock"]

router = APIRouter(prefix="/v1/dev", tags=["dev"], responses=problem_responses(400, 401, 422, 429, 503))


async def _sidecar_clock(resources: ResourcesDep, method: str, path: str, body: bytes | None) -> ClockState:
    settings = resources.settings
    headers = {"Content-Type": "application/json"}
    if settings.dapr_token:
        headers["dapr-api-token"] = settings.dapr_token
    url = f"{settings.dapr_http_endpoint}{path}"
    try:
        async with resources.http.request(method, url, data=body, headers=headers) as resp:
            text = await resp.read()
            if resp.status != 200:
                raise ServiceUnavailable(f"the sidecar's dev clock answered {resp.status}: {text[:200]!r}")
    except aiohttp.ClientError as exc:
        raise ServiceUnavailable(f"the sidecar's dev clock cannot be reached: {exc}") from exc
    data = json.loads(text)
    offset = float(data["offset_seconds"])
    resources.shared.clock.follow(offset)
    return ClockState(now=dt.datetime.fromtimestamp(float(data["now"]), dt.UTC), offset_seconds=offset)


async def sync_clock(resources: ResourcesDep) -> ClockState:
    """Adopt the sidecar's current offset (it survives sidecar restarts)."""
    return await _sidecar_clock(resources, "GET", "/v1.0-dev/clock", None)


@router.get("/clock", response_model=ClockState, summary="The dev clock")
async def clock(user: CurrentUser, resources: ResourcesDep) -> Response:
    return model_response(await sync_clock(resources))


@router.post("/clock:advance", response_model=ClockState, summary="Move the dev clock forward")
async def advance(body: ClockAdvance, user: CurrentUser, resources: ResourcesDep) -> Response:
    payload = json.dumps({"seconds": body.seconds}).encode()
    # The sidecar fires what became due before it answers, calling our actors: move their clock first.
    resources.shared.clock.follow(resources.shared.clock.offset + body.seconds)
    return model_response(await _sidecar_clock(resources, "POST", "/v1.0-dev/clock/advance", payload))
