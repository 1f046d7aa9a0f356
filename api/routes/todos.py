"""`/v1/lists/{list_id}/items`: add, page and filter, read, change, complete, reopen, reorder, delete.

Each route is one call to the list's actor with `caller` set; item ETags are item versions, the list's
ETag (collection reads, reorder) is the list version.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from api.deps import (
    ID_PATTERN,
    IF_MATCH_DESCRIPTION,
    IF_MATCH_MAX_LENGTH,
    CurrentUser,
    IdempotencyKey,
    IfMatch,
    ListId,
    ListProxy,
    authenticate,
    if_match_version,
    resources_of,
)
from api.middleware.idempotency import KEY_PATTERN
from api.openapi import problem_responses
from api.page_relay import relay_page
from api.plain_endpoint import Operation, json_body, plain_route, query_values, validated
from api.responses import model_response
from api.schemas import Instant, ItemCreate, ItemPage, ItemPatch, Reorder, command, set_fields
from todo_actors.commands import AddTodo, CompleteTodo, DeleteTodo, ReopenTodo, ReorderTodos, UpdateTodo
from todo_actors.errors import NotFound
from todo_actors.interface import GetTodo, ItemResult, QueryTodos
from todo_actors.model import ListSummary, TodoItem

__all__ = ["item_response", "plain_routes", "router"]

router = APIRouter(
    prefix="/v1/lists/{list_id:segment}",
    tags=["items"],
    responses=problem_responses(400, 401, 403, 404, 422, 429, 502, 503),
)

ItemId = Annotated[str, Path(pattern=ID_PATTERN, description="The item's id")]


def item_response(list_id: str, result: ItemResult, status_code: int = 200) -> Response:
    if result.item is None:
        raise NotFound("the item no longer exists")
    item = result.item
    location = f"/v1/lists/{list_id}/items/{item.id}" if status_code == 201 else None
    return model_response(item, status_code, version=item.version, location=location)


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
    list_id: ListId,
    item_id: ItemId,
    body: ItemPatch,
    user: CurrentUser,
    actor: ListProxy,
    if_match: IfMatch = None,
) -> Response:
    cmd = command(
        UpdateTodo, caller=user, expected_version=if_match_version(if_match), id=item_id, **set_fields(body)
    )
    return item_response(list_id, (await actor.update_todo(cmd)).unwrap())


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
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    cmd = ReopenTodo(caller=user, expected_version=if_match_version(if_match), id=item_id)
    return item_response(list_id, (await actor.reopen_todo(cmd)).unwrap())


@router.delete(
    "/items/{item_id:segment}",
    status_code=204,
    response_class=Response,
    responses=problem_responses(412),
    summary="Delete an item and its subtasks",
)
async def delete_item(
    list_id: ListId, item_id: ItemId, user: CurrentUser, actor: ListProxy, if_match: IfMatch = None
) -> Response:
    cmd = DeleteTodo(caller=user, expected_version=if_match_version(if_match), id=item_id)
    (await actor.delete_todo(cmd)).unwrap()
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
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    cmd = command(ReorderTodos, caller=user, expected_version=if_match_version(if_match), ids=tuple(body.ids))
    summary = (await actor.reorder_todos(cmd)).unwrap()
    return model_response(summary, version=summary.version)


# The three requests nearly all of a todo client's traffic is made of (a page, an add, a complete) are
# plain endpoints (`plain_routes`, first in the app's router, the read first): FastAPI's per-request
# dependency and parameter solving, and its search through included routers, cost more than their work.


class ItemsPath(BaseModel):
    list_id: str = Field(pattern=ID_PATTERN, title="List Id", description="The list's id")


class ItemPath(ItemsPath):
    item_id: str = Field(pattern=ID_PATTERN, title="Item Id", description="The item's id")


class ItemQuery(BaseModel):
    status: Literal["open", "completed"] | None = None
    due_before: Instant | None = Field(None, description="due < this instant")
    due_after: Instant | None = Field(None, description="due >= this instant")
    label: str | None = Field(None, min_length=1, max_length=64)
    series_id: str | None = Field(None, pattern=ID_PATTERN)
    parent_id: str | None = Field(None, pattern=ID_PATTERN)
    limit: int = Field(50, ge=1, le=500)
    cursor: str | None = Field(None, max_length=2000)


class CompleteHeaders(BaseModel):
    if_match: str | None = Field(None, alias="if-match", max_length=IF_MATCH_MAX_LENGTH)


_ERRORS = (400, 401, 403, 404, 422, 429, 502, 503)
_IDEMPOTENCY_HEADER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Retrying a POST with the same key returns the first response and changes nothing twice",
    "schema": {"type": "string", "pattern": KEY_PATTERN},
}
_IF_MATCH_HEADER = {
    "name": "if-match",
    "in": "header",
    "required": False,
    "description": IF_MATCH_DESCRIPTION,
    "schema": {"type": "string", "maxLength": IF_MATCH_MAX_LENGTH},
}


async def _list_items(request: Request) -> Response:
    resources = resources_of(request)
    user = authenticate(resources, request.headers.get("authorization"))
    errors: list[dict[str, Any]] = []
    path = validated("path", ItemsPath, request.path_params, errors)
    query = validated("query", ItemQuery, query_values(request), errors)
    if path is None or query is None:
        raise RequestValidationError(errors)
    return await relay_page(resources.list_actor(path.list_id), QueryTodos(caller=user, **set_fields(query)))


async def _add_item(request: Request) -> Response:
    data = await json_body(request)  # first, as FastAPI reads a route's body before its dependencies
    resources = resources_of(request)
    user = authenticate(resources, request.headers.get("authorization"))
    errors: list[dict[str, Any]] = []
    path = validated("path", ItemsPath, request.path_params, errors)
    body = validated("body", ItemCreate, data, errors)
    if path is None or body is None:
        raise RequestValidationError(errors)
    actor = resources.list_actor(path.list_id)
    result = (await actor.add_todo(command(AddTodo, caller=user, **set_fields(body)))).unwrap()
    return item_response(path.list_id, result, 201)


async def _complete_item(request: Request) -> Response:
    resources = resources_of(request)
    user = authenticate(resources, request.headers.get("authorization"))
    errors: list[dict[str, Any]] = []
    path = validated("path", ItemPath, request.path_params, errors)
    headers = validated("header", CompleteHeaders, {"if-match": request.headers.get("if-match")}, errors)
    if path is None or headers is None:
        raise RequestValidationError(errors)
    cmd = CompleteTodo(caller=user, expected_version=if_match_version(headers.if_match), id=path.item_id)
    result = (await resources.list_actor(path.list_id).complete_todo(cmd)).unwrap()
    return item_response(path.list_id, result)


_ITEMS = router.prefix + "/items"
plain_routes: list[BaseRoute] = [
    plain_route(
        _ITEMS,
        "GET",
        _list_items,
        Operation(
            "list_items",
            "A page of items in display order, filtered",
            ("items",),
            ItemsPath,
            ItemPage,
            query=ItemQuery,
            errors=problem_responses(*_ERRORS),
        ),
    ),
    plain_route(
        _ITEMS,
        "POST",
        _add_item,
        Operation(
            "add_item",
            "Add an item",
            ("items",),
            ItemsPath,
            TodoItem,
            status=201,
            body=ItemCreate,
            headers=(_IDEMPOTENCY_HEADER,),
            errors=problem_responses(*_ERRORS, 409, 413),
        ),
    ),
    plain_route(
        _ITEMS + "/{item_id:segment}:complete",
        "POST",
        _complete_item,
        Operation(
            "complete_item",
            "Mark an item completed (completing a completed item changes nothing)",
            ("items",),
            ItemPath,
            TodoItem,
            headers=(_IDEMPOTENCY_HEADER, _IF_MATCH_HEADER),
            errors=problem_responses(*_ERRORS, 409, 412),
        ),
    ),
]
