"""`/v1/dev/clock` (only with `--dev-clock`): read and advance the sidecar's manual clock. An advance is
time passing with the engine up: the sidecar steps through every due reminder, timer and job in order and
answers once the engine is quiet. The app's clock follows the offset the sidecar sends with each call."""

from __future__ import annotations

import datetime as dt
import json

from fastapi import APIRouter
from starlette.responses import Response

from api.deps import CurrentUser, ResourcesDep
from api.openapi import problem_responses
from api.problems import ClockNotSettled, ServiceUnavailable
from api.responses import model_response
from api.schemas import ClockAdvance, ClockState
from sidecar.wire.http1 import WireError
from todo_actors.sidecar_http import SidecarHttpError

__all__ = ["router", "sync_clock"]

router = APIRouter(prefix="/v1/dev", tags=["dev"], responses=problem_responses(400, 401, 422, 429, 503, 504))


async def _sidecar_clock(resources: ResourcesDep, method: str, path: str, body: bytes | None) -> ClockState:
    # An advance takes as long as the work it makes due; each instant is bounded by its settle timeout.
    try:
        status, _, text = await resources.http.request(method, path, body, timeout=None)
    except SidecarHttpError as exc:
        if exc.status == 504:
            raise ClockNotSettled(_message(exc.body)) from None
        raise ServiceUnavailable(
            f"the sidecar's dev clock answered {exc.status}: {exc.body[:200]!r}"
        ) from None
    except WireError as exc:
        raise ServiceUnavailable(f"the sidecar's dev clock cannot be reached: {exc}") from exc
    if status not in (200, 202):
        raise ServiceUnavailable(f"the sidecar's dev clock answered {status}: {text[:200]!r}")
    data = json.loads(text)
    offset = float(data["offset_seconds"])
    resources.shared.clock.follow(offset)
    target = data.get("target")
    return ClockState(
        now=_instant(data["now"]),
        offset_seconds=offset,
        advancing=bool(data.get("advancing", False)),
        steps=data.get("steps"),
        target=None if target is None else _instant(target),
    )


def _instant(epoch: object) -> dt.datetime:
    return dt.datetime.fromtimestamp(float(str(epoch)), dt.UTC)


def _message(text: bytes) -> str:
    try:
        return str(json.loads(text)["message"])
    except (ValueError, KeyError, TypeError):
        return text[:500].decode("utf-8", "replace")


async def sync_clock(resources: ResourcesDep) -> ClockState:
    """Adopt the sidecar's current offset (it survives sidecar restarts)."""
    return await _sidecar_clock(resources, "GET", "/v1.0-dev/clock", None)


@router.get("/clock", response_model=ClockState, summary="The dev clock")
async def clock(user: CurrentUser, resources: ResourcesDep) -> Response:
    return model_response(await sync_clock(resources))


@router.post(
    "/clock:advance",
    response_model=ClockState,
    summary="Let time pass: every due reminder, occurrence and job fires on its instant, in order",
    responses={202: {"model": ClockState, "description": "advancing in the background (`wait: false`)"}},
)
async def advance(body: ClockAdvance, user: CurrentUser, resources: ResourcesDep) -> Response:
    payload = json.dumps(body.model_dump()).encode()
    state = await _sidecar_clock(resources, "POST", "/v1.0-dev/clock/advance", payload)
    return model_response(state, status_code=200 if body.wait else 202)
