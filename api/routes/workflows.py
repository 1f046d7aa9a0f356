"""`/v1/workflows`: generic inspection of the caller's workflow instances (those of their series) -
status, input, output, custom status and failure; a filtered, paginated list; a readable history; and
pause, resume, terminate and purge. Another user's instance answers 404.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.responses import Response

from api.deps import CurrentUser
from api.openapi import problem_responses
from api.responses import model_response
from api.routes.series import conflicts, handles_of
from api.schemas import PositionCursor
from workflows.inspection import STATUS_NAMES, WorkflowInspector
from workflows.views import WorkflowInfo, WorkflowPage, WorkflowTimeline

__all__ = ["router"]

router = APIRouter(
    prefix="/v1/workflows",
    tags=["workflows"],
    responses=problem_responses(400, 401, 403, 404, 422, 429, 502, 503),
)

INSTANCE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"


def _inspector(request: Request) -> WorkflowInspector:
    return handles_of(request).inspector


InspectorDep = Annotated[WorkflowInspector, Depends(_inspector)]
InstanceId = Annotated[str, Path(pattern=INSTANCE_PATTERN, description="The workflow instance id")]


@router.get("", response_model=WorkflowPage, summary="The caller's workflow instances")
async def list_workflows(
    user: CurrentUser,
    inspector: InspectorDep,
    status: Annotated[
        str | None,
        Query(pattern=f"^({'|'.join(sorted(STATUS_NAMES))})$", description="Only instances in this status"),
    ] = None,
    name: Annotated[str | None, Query(max_length=100, description="Workflow name, e.g. `series`")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: PositionCursor = None,
) -> Response:
    page = await inspector.list_workflows(user, status=status, name=name, cursor=cursor, limit=limit)
    return model_response(page)


@router.get("/{instance_id:segment}", response_model=WorkflowInfo, summary="One workflow instance")
async def get_workflow(instance_id: InstanceId, user: CurrentUser, inspector: InspectorDep) -> Response:
    return model_response(await inspector.get_workflow(user, instance_id))


@router.get(
    "/{instance_id:segment}/history",
    response_model=WorkflowTimeline,
    summary="The current generation's history as a timeline",
)
async def workflow_history(instance_id: InstanceId, user: CurrentUser, inspector: InspectorDep) -> Response:
    return model_response(await inspector.history(user, instance_id))


@router.post(
    "/{instance_id:segment}:pause",
    response_model=WorkflowInfo,
    responses=problem_responses(409),
    summary="Suspend",
)
async def pause_workflow(instance_id: InstanceId, user: CurrentUser, inspector: InspectorDep) -> Response:
    with conflicts():
        return model_response(await inspector.pause(user, instance_id))


@router.post(
    "/{instance_id:segment}:resume",
    response_model=WorkflowInfo,
    responses=problem_responses(409),
    summary="Resume",
)
async def resume_workflow(instance_id: InstanceId, user: CurrentUser, inspector: InspectorDep) -> Response:
    with conflicts():
        return model_response(await inspector.resume(user, instance_id))


@router.post(
    "/{instance_id:segment}:terminate",
    response_model=WorkflowInfo,
    responses=problem_responses(409),
    summary="Terminate (for a series: cancel it)",
)
async def terminate_workflow(instance_id: InstanceId, user: CurrentUser, inspector: InspectorDep) -> Response:
    with conflicts():
        return model_response(await inspector.terminate(user, instance_id))


@router.delete(
    "/{instance_id:segment}",
    status_code=204,
    response_class=Response,
    responses=problem_responses(409),
    summary="Purge a finished instance's history",
)
async def purge_workflow(instance_id: InstanceId, user: CurrentUser, inspector: InspectorDep) -> Response:
    with conflicts():
        await inspector.purge(user, instance_id)
    return Response(status_code=204)
