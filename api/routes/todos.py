"""`/v1/lists/{list_id}/items`: add, page and filter, read, change, complete, reopen, reorder, delete.

Each route is one call to the list's actor with `caller` set; item ETags are item versions, the list's
ETag (collection reads, reorder) is the list version.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from starlette.responses import Response

from api.deps import ID_PATTERN, CurrentUser, IdempotencyKey, IfMatch, ListId, ListProxy
from api.openapi import problem_responses
from api.page_relay import relay_page
from api.responses import model_response
from api.schemas import Instant, ItemCreate, ItemPage, ItemPatch, Reorder, command, set_fields
from todo_actors.commands import AddTodo, CompleteTodo, DeleteTodo, ReopenTodo, ReorderTodos, UpdateTodo
from todo_actors.errors import NotFound
from todo_actors.interface import GetTodo, ItemResult, QueryTodos
from todo_actors.model import ListSummary, TodoItem

__all__ = ["item_response", "router"]

router = APIRouter(
    prefix="/v1/lists/{list_id:segment}",
    tags=["items"],
    responses=problem_responses(400, 401, 404, 422, 429, 502, 503),
)

ItemId = Annotated[str, Path(pattern=ID_PATTERN, description="The item's id")]


def item_response(list_id: str, result: ItemResult, status_code: int = 200) -> Response:
    if result.item is None:
        raise NotFound("the item no longer exists")
    item = result.item
    location = f"/v1/lists/{list_id}/items/{item.id}" if status_code == 201 else None
    return model_response(item, status_code, version=item.version, location=location)


@router.post(
    "/items",
    status_code=201,
    response_model=TodoItem,
    responses=problem_responses(409, 413),
    summary="Add an item",
)
async def add_item(
    list_id: ListId,
    body: ItemCreate,
    user: CurrentUser,
    actor: ListProxy,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    result = (await actor.add_todo(command(AddTodo, caller=user, **set_fields(body)))).unwrap()
    return item_response(list_id, result, 201)


@router.get("/items", response_model=ItemPage, summary="A page of items in display order, filtered")
async def list_items(
    list_id: ListId,
    user: CurrentUser,
    actor: ListProxy,
    status: Literal["open", "completed"] | None = None,
    due_before: Annotated[Instant | None, Query(description="due < this instant")] = None,
    due_after: Annotated[Instant | None, Query(description="due >= this instant")] = None,
    label: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    series_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    parent_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
) -> Response:
    query = QueryTodos(
        caller=user,
        status=status,
        due_before=due_before,
        due_after=due_after,
        label=label,
        series_id=series_id,
        parent_id=parent_id,
        limit=limit,
        cursor=cursor,
    )
    return await relay_page(actor, query)


@router.get("/items/{item_id:segment}", response_model=TodoItem, summary="One item (ETag = its version)")
async def get_item(list_id: ListId, item_id: ItemId, user: CurrentUser, actor: ListProxy) -> Response:
    return item_response(list_id, (await actor.get_todo(GetTodo(caller=user, id=item_id))).unwrap())


@router.patch(
    "/items/{item_id:segment}",
    response_model=TodoItem,
    responses=problem_responses(409, 412, 413),
    summary="Change an item",
)
async def update_item(
    list_id: ListId, item_id: ItemId, body: ItemPatch, user: CurrentUser, actor: ListProxy, if_match: IfMatch
) -> Response:
    cmd = command(UpdateTodo, caller=user, expected_version=if_match, id=item_id, **set_fields(body))
    return item_response(list_id, (await actor.update_todo(cmd)).unwrap())


@router.post(
    "/items/{item_id:segment}:complete",
    response_model=TodoItem,
    responses=problem_responses(409, 412),
    summary="Mark an item completed (completing a completed item changes nothing)",
)
async def complete_item(
    list_id: ListId,
    item_id: ItemId,
    user: CurrentUser,
    actor: ListProxy,
    if_match: IfMatch,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    cmd = CompleteTodo(caller=user, expected_version=if_match, id=item_id)
    return item_response(list_id, (await actor.complete_todo(cmd)).unwrap())


@router.post(
    "/items/{item_id:segment}:reopen",
    response_model=TodoItem,
    responses=problem_responses(409, 412),
    summary="Mark a completed item open again",
)
async def reopen_item(
    list_id: ListId,
    item_id: ItemId,
    user: CurrentUser,
    actor: ListProxy,
    if_match: IfMatch,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    cmd = ReopenTodo(caller=user, expected_version=if_match, id=item_id)
    return item_response(list_id, (await actor.reopen_todo(cmd)).unwrap())


@router.delete(
    "/items/{item_id:segment}",
    status_code=204,
    response_class=Response,
    responses=problem_responses(412),
    summary="Delete an item and its subtasks",
)
async def delete_item(
    list_id: ListId, item_id: ItemId, user: CurrentUser, actor: ListProxy, if_match: IfMatch
) -> Response:
    (await actor.delete_todo(DeleteTodo(caller=user, expected_version=if_match, id=item_id))).unwrap()
    return Response(status_code=204)


@router.post(
    "/items:reorder",
    response_model=ListSummary,
    responses=problem_responses(409, 412, 413),
    summary="Put the given items in the given order (If-Match: the list's ETag)",
)
async def reorder_items(
    list_id: ListId,
    body: Reorder,
    user: CurrentUser,
    actor: ListProxy,
    if_match: IfMatch,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    cmd = command(ReorderTodos, caller=user, expected_version=if_match, ids=tuple(body.ids))
    summary = (await actor.reorder_todos(cmd)).unwrap()
    return model_response(summary, version=summary.version)
