"""A list as an iCalendar feed (RFC 5545 VTODOs), a revocable secret URL for calendar apps that cannot send a
bearer token, and import of other clients' VTODOs. The conversion itself is `todo_actors.ical`.

The feed secret is kept only as its SHA-256 in the state store, one record per list (`calendar-feed|<list>`,
with the user who made it: the list's owner then); the token the caller sees once is `<list id>.<secret>`,
so a lookup reads that one record and compares digests in constant time. Creating a feed again replaces the
secret; deleting revokes it. The feed reads the list as its maker, so it ends when they leave the list.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field, ValidationError
from starlette.responses import Response

from api.deps import ID_PATTERN, CurrentUser, IdempotencyKey, ListId, ListProxy, ResourcesDep
from api.openapi import problem_responses
from api.problems import ApiProblem, RateLimited
from api.responses import model_response
from todo_actors.commands import AddTodo, CompleteTodo
from todo_actors.errors import Forbidden, NotFound, TodoError
from todo_actors.ical import InvalidCalendar, ParsedTodo, export_calendar, parse_calendar
from todo_actors.interface import GetList, QueryTodos, TodoListActorInterface
from todo_actors.model import TodoItem

__all__ = ["router"]

log = logging.getLogger("api.routes.calendar")

router = APIRouter(tags=["calendar"], responses=problem_responses(400, 401, 403, 404, 422, 429, 502, 503))

CALENDAR = "text/calendar"
_ICS_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The list as an iCalendar stream: one VTODO per item",
        "content": {CALENDAR: {"schema": {"type": "string", "pattern": "^BEGIN:VCALENDAR"}}},
    }
}
_PAGE = 500
_SECRET = re.compile(r"^[A-Za-z0-9_-]{43}$")
_TOKEN_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\.[A-Za-z0-9_-]{43}$"


class CalendarFeed(BaseModel):
    url: str = Field(description="The secret feed URL; shown only now (create the feed again for a new one)")


class ImportedItem(BaseModel):
    uid: str | None = Field(description="The VTODO's UID")
    item: TodoItem
    dropped: list[str] = Field(description="What of the VTODO was not kept, and why")


class SkippedTodo(BaseModel):
    uid: str | None
    reason: str = Field(description="Why no item was made of this VTODO")
    dropped: list[str]


class ImportReport(BaseModel):
    created: list[ImportedItem]
    skipped: list[SkippedTodo]


class UnsupportedMediaType(ApiProblem):
    kind, status, title = "unsupported-media-type", 415, "Unsupported media type"


class InvalidCalendarProblem(ApiProblem):
    kind, status, title = "invalid-calendar", 400, "Not a readable iCalendar stream"


async def _all_items(actor: TodoListActorInterface, caller: str) -> list[TodoItem]:
    items: list[TodoItem] = []
    cursor: str | None = None
    while True:
        page = (await actor.query_todos(QueryTodos(caller=caller, limit=_PAGE, cursor=cursor))).unwrap()
        items.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            return items


async def _series_rules(request: Request, owner: str, items: list[TodoItem]) -> dict[str, str]:
    series = getattr(request.app.state, "series", None)  # SeriesHandles, when series are enabled
    rules: dict[str, str] = {}
    if series is None:
        return rules
    for series_id in {i.series_id for i in items if i.series_id is not None}:
        try:
            rules[series_id] = (await series.service.owned(owner, series_id)).rule
        except NotFound:
            continue  # the series ended and its record is gone; its occurrences stay plain items
    return rules


async def _calendar(request: Request, list_id: str, owner: str, resources: ResourcesDep) -> Response:
    actor = resources.list_actor(list_id)
    summary = (await actor.get_list(GetList(caller=owner))).unwrap()
    items = await _all_items(actor, owner)
    rules = await _series_rules(request, owner, items)
    body = export_calendar(summary, items, rules, resources.shared.clock.now())
    return Response(body, media_type=f"{CALENDAR}; charset=utf-8", headers={"Cache-Control": "no-store"})


@router.get(
    "/v1/lists/{list_id:segment}/calendar.ics",
    response_class=Response,
    responses=_ICS_RESPONSE,
    summary="The list as iCalendar VTODOs",
)
async def list_calendar(
    request: Request, list_id: ListId, user: CurrentUser, resources: ResourcesDep
) -> Response:
    return await _calendar(request, list_id, user, resources)


def _feed_key(list_id: str) -> str:
    return f"calendar-feed|{list_id}"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


@router.post(
    "/v1/lists/{list_id:segment}/calendar-feed",
    status_code=201,
    response_model=CalendarFeed,
    summary="Make a secret feed URL for the list (replaces an earlier one); the URL is shown only once",
)
async def create_feed(
    request: Request,
    list_id: ListId,
    user: CurrentUser,
    actor: ListProxy,
    resources: ResourcesDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    # The URL lets anyone holding it read the list: the owner's call (404 for a stranger, 403 for members).
    (await actor.get_list(GetList(caller=user, at_least="owner"))).unwrap()
    secret = secrets.token_urlsafe(32)
    record = json.dumps({"owner": user, "sha256": _digest(secret)})
    await resources.dapr.save_state(resources.settings.state_store, _feed_key(list_id), record)
    url = f"{str(request.base_url).rstrip('/')}/v1/calendar-feeds/{list_id}.{secret}.ics"
    return model_response(CalendarFeed(url=url), 201)


@router.delete(
    "/v1/lists/{list_id:segment}/calendar-feed",
    status_code=204,
    response_class=Response,
    summary="Revoke the list's feed URL (its URL answers 404 from now on)",
)
async def delete_feed(
    list_id: ListId, user: CurrentUser, actor: ListProxy, resources: ResourcesDep
) -> Response:
    (await actor.get_list(GetList(caller=user, at_least="owner"))).unwrap()
    await resources.dapr.delete_state(resources.settings.state_store, _feed_key(list_id))
    return Response(status_code=204)


FeedToken = Annotated[str, Path(pattern=_TOKEN_PATTERN, description="`<list id>.<secret>` from the feed URL")]


@router.get(
    "/v1/calendar-feeds/{token:segment}.ics",
    response_class=Response,
    responses=_ICS_RESPONSE,
    summary="The list of a feed URL as iCalendar VTODOs, without a bearer token",
    openapi_extra={"security": []},
)
async def feed_calendar(request: Request, token: FeedToken, resources: ResourcesDep) -> Response:
    list_id, _, secret = token.rpartition(".")
    wait = resources.limiter.take(f"calendar-feed:{list_id}")
    if wait:
        raise RateLimited(wait)
    if not (_SECRET.fullmatch(secret) and re.fullmatch(ID_PATTERN, list_id)):
        raise NotFound("no such calendar feed")
    found = await resources.dapr.get_state(resources.settings.state_store, _feed_key(list_id))
    record: dict[str, str] = json.loads(found.data) if found.data else {}
    stored = record.get("sha256", "")
    if not (stored and hmac.compare_digest(stored, _digest(secret))):
        raise NotFound("no such calendar feed")
    return await _calendar(request, list_id, record["owner"], resources)


def _parents_first(todos: list[ParsedTodo]) -> list[ParsedTodo]:
    """The VTODOs with every parent (by UID, within this calendar) before its children; cycles keep
    the file's order."""
    by_uid = {t.uid: t for t in todos if t.uid is not None}
    ordered: list[ParsedTodo] = []
    placed: set[int] = set()

    def place(todo: ParsedTodo, seen: frozenset[int]) -> None:
        if id(todo) in placed or id(todo) in seen:
            return
        parent = by_uid.get(todo.parent_uid) if todo.parent_uid is not None else None
        if parent is not None:
            place(parent, seen | {id(todo)})
        placed.add(id(todo))
        ordered.append(todo)

    for todo in todos:
        place(todo, frozenset())
    return ordered


@router.post(
    "/v1/lists/{list_id:segment}/import",
    response_model=ImportReport,
    responses=problem_responses(409, 413, 415),
    summary="Add the VTODOs of an iCalendar stream as items; the report says what was made and dropped",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {CALENDAR: {"schema": {"type": "string", "description": "A VCALENDAR with VTODOs"}}},
        }
    },
)
async def import_calendar(
    request: Request,
    list_id: ListId,
    user: CurrentUser,
    actor: ListProxy,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != CALENDAR:
        raise UnsupportedMediaType(f"send the calendar as {CALENDAR}, not {media_type or 'nothing'}")
    # 404 (a stranger) or 403 (a viewer) before reading the import.
    (await actor.get_list(GetList(caller=user, at_least="editor"))).unwrap()
    try:
        todos = parse_calendar(await request.body())
    except InvalidCalendar as exc:
        raise InvalidCalendarProblem(str(exc)) from None
    report = ImportReport(created=[], skipped=[])
    ids: dict[str, str] = {}
    for todo in _parents_first(todos):
        fields = dict(todo.fields)
        dropped = list(todo.dropped)
        if todo.parent_uid is not None:
            if todo.parent_uid in ids:
                fields["parent_id"] = ids[todo.parent_uid]
            else:
                dropped.append(f"RELATED-TO: parent {todo.parent_uid!r} is not among the imported items")
        try:
            result = (await actor.add_todo(AddTodo(caller=user, **fields))).unwrap()
            item = result.item
            assert item is not None  # a plain add always makes its item
            if todo.completed:
                done = (await actor.complete_todo(CompleteTodo(caller=user, id=item.id))).unwrap()
                item = done.item or item
        except ValidationError as exc:
            reason = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            report.skipped.append(SkippedTodo(uid=todo.uid, reason=reason, dropped=dropped))
            continue
        except TodoError as exc:
            if isinstance(exc, NotFound | Forbidden):
                raise  # the list, or the caller's role on it, went away mid-import
            report.skipped.append(SkippedTodo(uid=todo.uid, reason=str(exc), dropped=dropped))
            continue
        if todo.uid is not None:
            ids[todo.uid] = item.id
        report.created.append(ImportedItem(uid=todo.uid, item=item, dropped=dropped))
    log.info("imported %d of %d VTODOs into list %s", len(report.created), len(todos), list_id)
    return model_response(report)
