"""`/v1/series`: recurring tasks. Create, read and list series, edit their rule or template, pause,
resume, skip the next occurrence, cancel, and read every occurrence so far and the workflow steps behind
each (across all of the workflow's runs).

Each series is one durable workflow; the routes call `SeriesService`, which the lifespan opens with
`workflows.hosting.open_series` and puts on `app.state.series`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.responses import Response

from api.deps import ID_PATTERN, CurrentUser, IdempotencyKey
from api.openapi import problem_responses
from api.problems import ApiProblem, ServiceUnavailable
from api.responses import model_response
from api.schemas import PositionCursor
from workflows.errors import SeriesConflict
from workflows.hosting import SeriesHandles
from workflows.series_client import SeriesService
from workflows.views import OccurrencesPage, Series, SeriesHistory, SeriesPage, SeriesPatch, SeriesSpec

__all__ = ["SeriesStateConflict", "conflicts", "handles_of", "router"]

router = APIRouter(
    prefix="/v1/series", tags=["series"], responses=problem_responses(400, 401, 403, 404, 422, 429, 502, 503)
)

_SERIES_IDS = uuid.UUID("8e2f6c1a-43d7-4b9e-a5f0-7c3d2b1e9f64")


class SeriesStateConflict(ApiProblem):
    """The operation does not fit the series' or workflow's current state (409). Not retryable as is."""

    kind, status, title = "conflict", 409, "Conflict with the current state"


@contextmanager
def conflicts() -> Iterator[None]:
    """Answer `SeriesConflict` as 409 problem+json."""
    try:
        yield
    except SeriesConflict as exc:
        raise SeriesStateConflict(exc.message) from exc


def handles_of(request: Request) -> SeriesHandles:
    handles: SeriesHandles | None = getattr(request.app.state, "series", None)
    if handles is None:
        raise ServiceUnavailable("recurring tasks are not enabled in this app")
    return handles


def _service(request: Request) -> SeriesService:
    return handles_of(request).service


ServiceDep = Annotated[SeriesService, Depends(_service)]
SeriesId = Annotated[str, Path(pattern=ID_PATTERN, description="The series' id")]
UpcomingCount = Annotated[int | None, Query(ge=0, le=100, description="How many upcoming dates to show")]


def new_series_id(user: str, idempotency_key: str | None) -> str:
    """A fresh id; with an Idempotency-Key the same one for every retry, so a retried create finds the
    series the first attempt made instead of starting a second one."""
    if idempotency_key is None:
        return uuid.uuid4().hex
    return uuid.uuid5(_SERIES_IDS, f"{len(user)}:{user}:{idempotency_key}").hex


@router.post(
    "",
    status_code=201,
    response_model=Series,
    responses=problem_responses(409, 413),
    summary="Create a recurring task (starts its workflow)",
)
async def create_series(
    body: SeriesSpec, user: CurrentUser, service: ServiceDep, idempotency_key: IdempotencyKey = None
) -> Response:
    series = await service.create(user, body, series_id=new_series_id(user, idempotency_key))
    return model_response(series, 201, location=f"/v1/series/{series.id}")


@router.get(
    "", response_model=SeriesPage, summary="The series the caller made, or those of one list, oldest first"
)
async def list_series(
    user: CurrentUser,
    service: ServiceDep,
    limit: Annotated[int | None, Query(ge=1, le=200)] = None,
    cursor: PositionCursor = None,
    list_id: Annotated[
        str | None,
        Query(pattern=ID_PATTERN, description="Every series on this list (a shared one too), by anyone"),
    ] = None,
) -> Response:
    return model_response(await service.list(user, cursor=cursor, limit=limit, list_id=list_id))


@router.get("/{series_id:segment}", response_model=Series, summary="One series: status and the next dates")
async def get_series(
    series_id: SeriesId, user: CurrentUser, service: ServiceDep, upcoming: UpcomingCount = None
) -> Response:
    return model_response(await service.get(user, series_id, upcoming=upcoming))


@router.patch(
    "/{series_id:segment}",
    response_model=Series,
    responses=problem_responses(409, 413),
    summary="Change the rule and/or template (applies from the next occurrence)",
)
async def edit_series(
    series_id: SeriesId, body: SeriesPatch, user: CurrentUser, service: ServiceDep
) -> Response:
    with conflicts():
        return model_response(await service.edit(user, series_id, body))


@router.post(
    "/{series_id:segment}:pause", response_model=Series, responses=problem_responses(409), summary="Pause"
)
async def pause_series(series_id: SeriesId, user: CurrentUser, service: ServiceDep) -> Response:
    with conflicts():
        return model_response(await service.pause(user, series_id))


@router.post(
    "/{series_id:segment}:resume", response_model=Series, responses=problem_responses(409), summary="Resume"
)
async def resume_series(series_id: SeriesId, user: CurrentUser, service: ServiceDep) -> Response:
    with conflicts():
        return model_response(await service.resume(user, series_id))


@router.post(
    "/{series_id:segment}:skip",
    response_model=Series,
    responses=problem_responses(409),
    summary="Skip the next occurrence",
)
async def skip_next(series_id: SeriesId, user: CurrentUser, service: ServiceDep) -> Response:
    with conflicts():
        return model_response(await service.skip_next(user, series_id))


@router.post(
    "/{series_id:segment}:cancel",
    response_model=Series,
    responses=problem_responses(409),
    summary="Cancel the series (items already created stay)",
)
async def cancel_series(series_id: SeriesId, user: CurrentUser, service: ServiceDep) -> Response:
    with conflicts():
        return model_response(await service.cancel(user, series_id))


@router.get(
    "/{series_id:segment}/occurrences",
    response_model=OccurrencesPage,
    summary="Every occurrence so far (index, times, item) and the upcoming dates",
)
async def list_occurrences(
    series_id: SeriesId,
    user: CurrentUser,
    service: ServiceDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: PositionCursor = None,
    upcoming: UpcomingCount = None,
) -> Response:
    page = await service.occurrences(user, series_id, cursor=cursor, limit=limit, upcoming=upcoming)
    return model_response(page)


@router.get(
    "/{series_id:segment}/history",
    response_model=SeriesHistory,
    summary="The workflow steps of every occurrence (timer, notify, recreate), across all runs",
)
async def series_history(
    series_id: SeriesId,
    user: CurrentUser,
    service: ServiceDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: PositionCursor = None,
) -> Response:
    return model_response(await service.history(user, series_id, cursor=cursor, limit=limit))
