"""`/v1/lists`: create, page, read, change and delete the caller's lists.

A list is one actor (id = list id); the caller's owner-index actor knows which lists they own or share. Every
call passes `caller`, so another user's list answers 404 (and a member without the role 403) from the same
actor call that would have served it.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from api.deps import (
    CurrentUser,
    IdempotencyKey,
    IfMatch,
    ListId,
    ListProxy,
    OwnerIndexProxy,
    Resources,
    ResourcesDep,
    if_match_version,
)
from api.openapi import problem_responses
from api.responses import model_response
from api.schemas import ListCreate, ListPage, ListPatch, command, set_fields
from todo_actors.commands import CreateList, DeleteList, UpdateList
from todo_actors.errors import NotFound, TodoError, VersionConflict
from todo_actors.interface import GetList, ListChange, PageRequest
from todo_actors.model import ListSummary

__all__ = ["create_owned_list", "delete_owned_list", "new_list_id", "router"]

log = logging.getLogger("api.routes.lists")

router = APIRouter(
    prefix="/v1/lists", tags=["lists"], responses=problem_responses(400, 401, 403, 404, 422, 429, 502, 503)
)

_LIST_IDS = uuid.UUID("3f0c9d8e-2b47-4f6a-9c1e-5d7b8a6f4e21")


def new_list_id(user: str, idempotency_key: str | None) -> str:
    """A fresh id; with an Idempotency-Key, the same one for every retry (creating is then idempotent
    even if the first attempt died before its response was recorded)."""
    if idempotency_key is None:
        return uuid.uuid4().hex
    return uuid.uuid5(_LIST_IDS, f"{len(user)}:{user}:{idempotency_key}").hex


@router.post(
    "",
    status_code=201,
    response_model=ListSummary,
    responses=problem_responses(409, 413),
    summary="Create a list",
)
async def create_list(
    body: ListCreate,
    user: CurrentUser,
    resources: ResourcesDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    list_id = new_list_id(user, idempotency_key)
    cmd = command(CreateList, owner=user, **body.model_dump())
    summary = await create_owned_list(resources, user, list_id, cmd)
    return model_response(summary, 201, version=summary.version, location=f"/v1/lists/{list_id}")


async def create_owned_list(resources: Resources, user: str, list_id: str, cmd: CreateList) -> ListSummary:
    """Index the list under its owner, then create it (un-indexing it if that fails)."""
    owner_index = resources.owner_index(user)
    resources.shared.owners.record(list_id, user)
    # Index first: it enforces the lists-per-user limit, and a list missing from the index would be
    # invisible in GET /v1/lists. An index entry without a list is skipped when listing.
    (await owner_index.add_list(ListChange(list_id=list_id))).unwrap()
    try:
        summary: ListSummary = (await resources.list_actor(list_id).create_list(cmd)).unwrap()
    except VersionConflict:
        raise  # the id is taken by this user's earlier list (same Idempotency-Key): keep it indexed
    except TodoError:
        (await owner_index.remove_list(ListChange(list_id=list_id))).unwrap()
        raise
    return summary


@router.get(
    "",
    response_model=ListPage,
    summary="The caller's lists, owned and shared with them (`role`), oldest first",
)
async def list_lists(
    user: CurrentUser,
    owner_index: OwnerIndexProxy,
    resources: ResourcesDep,
    limit: Annotated[int | None, Query(ge=1, le=500)] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    request = PageRequest(limit=limit or resources.settings.page_size_default, cursor=cursor)
    page = (await owner_index.lists(request)).unwrap()
    replies = await asyncio.gather(
        *(resources.list_actor(entry.list_id).get_list(GetList(caller=user)) for entry in page.lists)
    )
    items: list[ListSummary] = []
    for reply in replies:
        try:
            items.append(reply.unwrap())
        except NotFound:
            continue  # indexed, but its creation failed or it is being deleted
    return model_response(ListPage(items=items, next_cursor=page.next_cursor))


@router.get("/{list_id:segment}", response_model=ListSummary, summary="One list (ETag = its version)")
async def get_list(list_id: ListId, user: CurrentUser, actor: ListProxy, resources: ResourcesDep) -> Response:
    summary = (await actor.get_list(GetList(caller=user))).unwrap()
    resources.shared.owners.record(list_id, summary.owner)
    return model_response(summary, version=summary.version)


@router.patch(
    "/{list_id:segment}",
    response_model=ListSummary,
    responses=problem_responses(412, 413),
    summary="Change a list's title, description or zone",
)
async def update_list(
    list_id: ListId, body: ListPatch, user: CurrentUser, actor: ListProxy, if_match: IfMatch = None
) -> Response:
    cmd = command(UpdateList, caller=user, expected_version=if_match_version(if_match), **set_fields(body))
    summary = (await actor.update_list(cmd)).unwrap()
    return model_response(summary, version=summary.version)


@router.delete(
    "/{list_id:segment}",
    status_code=204,
    response_class=Response,
    responses=problem_responses(412),
    summary="Delete a list with all its items (its recurring series end, reason `list_deleted`)",
)
async def delete_list(
    request: Request,
    list_id: ListId,
    user: CurrentUser,
    resources: ResourcesDep,
    if_match: IfMatch = None,
) -> Response:
    cmd = DeleteList(caller=user, expected_version=if_match_version(if_match))
    await delete_owned_list(request.app, resources, list_id, cmd)
    return Response(status_code=204)


async def delete_owned_list(app: Any, resources: Resources, list_id: str, cmd: DeleteList) -> None:
    """Delete the list, take it out of its owner's and every member's index and end its recurring series."""
    assert cmd.caller is not None
    ack = (await resources.list_actor(list_id).delete_list(cmd)).unwrap()
    # Its events may still be on their way: the channel routes late ones by this (owner first).
    resources.shared.owners.record(list_id, ack.members[0] if ack.members else cmd.caller)
    change = ListChange(list_id=list_id)
    users = ack.members or (cmd.caller,)
    replies = await asyncio.gather(*(resources.owner_index(u).remove_list(change) for u in users))
    for reply in replies:
        reply.unwrap()
    series = getattr(app.state, "series", None)  # SeriesHandles, when series are enabled
    if series is not None:
        try:
            await series.service.end_for_list(list_id)
        except Exception as exc:  # the list is gone either way; a series left over ends on its next date
            log.warning("could not end the series of deleted list %s: %r", list_id, exc)
