"""`/v1/changes` (a page of the caller's change feed after a cursor) and `/v1/events` (the same feed as
Server-Sent Events: `id` = cursor, resumable with `Last-Event-ID`, with keep-alive comments). A stream that
sends the caller's own `member.removed` sends nothing more of that list, even what was delivered late."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query
from starlette.responses import Response, StreamingResponse

from api.channel.feed import Feed, FeedEvent, FeedPage
from api.channel.feed_signal import FeedSignal
from api.deps import CurrentUser, ResourcesDep
from api.openapi import SSE_EVENT_SCHEMA, problem_responses
from api.responses import model_response

__all__ = ["router"]

log = logging.getLogger("api.events")

router = APIRouter(prefix="/v1", tags=["events"], responses=problem_responses(401, 422, 429, 502, 503))

Cursor = Annotated[str | None, Query(pattern=r"^\d{1,18}$", description="Cursor from a previous page")]

# Events per page of the SSE loop (a reconnecting client catches up in batches).
_SSE_BATCH = 100


@router.get("/changes", response_model=FeedPage, summary="The caller's changes after a cursor, oldest first")
async def changes(
    user: CurrentUser,
    resources: ResourcesDep,
    since: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Response:
    page = await resources.feed.page(user, int(since or 0), limit)
    return model_response(page)


@router.get(
    "/events",
    summary="The caller's changes as Server-Sent Events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {"schema": SSE_EVENT_SCHEMA}}}},
)
async def events(
    user: CurrentUser,
    resources: ResourcesDep,
    since: Annotated[
        str | None,
        Query(pattern=r"^\d{1,18}$", description="Start after this cursor (default: only new events)"),
    ] = None,
    last_event_id: Annotated[str | None, Header(pattern=r"^\d{1,18}$")] = None,
) -> StreamingResponse:
    start = last_event_id if last_event_id is not None else since
    cursor = int(start) if start is not None else await resources.feed.last_cursor(user)
    settings = resources.settings
    stream = _stream(
        resources.feed,
        resources.shared.signal,
        user,
        cursor,
        keepalive=settings.sse_keepalive_seconds,
        poll=settings.sse_poll_seconds,
    )
    return StreamingResponse(
        stream,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _stream(
    feed: Feed, signal: FeedSignal, user: str, cursor: int, *, keepalive: float, poll: float
) -> AsyncIterator[str]:
    # `retry` tells browsers how soon to reconnect; the comment gets the response headers out at once.
    yield f"retry: 3000\n: connected at cursor {cursor}\n\n"
    quiet_since = time.monotonic()
    revoked: set[str] = set()  # lists this user was removed from while the stream ran
    while True:
        # Watch before reading: an append between the read and the wait still wakes us.
        with signal.watch(user) as watch:
            page = await feed.page(user, cursor, _SSE_BATCH)
            for event in page.events:
                if not _still_member(event, user, revoked):
                    continue
                yield f"id: {event.cursor}\nevent: {event.type}\ndata: {event.model_dump_json()}\n\n"
            cursor = int(page.next_cursor)
            if page.events:
                quiet_since = time.monotonic()
            if page.has_more:
                continue
            # Appends by this process ring the signal; polling covers other replicas.
            await watch.wait(min(poll, keepalive))
        if time.monotonic() - quiet_since >= keepalive:
            yield ": keep-alive\n\n"
            quiet_since = time.monotonic()


def _still_member(event: FeedEvent, user: str, revoked: set[str]) -> bool:
    """Whether `event` may go out on `user`'s stream, tracking the lists they were removed from: their own
    removal goes out (so the client drops the list), then nothing of that list until they are added again."""
    if event.list_id is None:
        return True
    if event.data.get("user") == user and event.type in ("member.removed", "member.added"):
        if event.type == "member.removed":
            revoked.add(event.list_id)
        else:
            revoked.discard(event.list_id)
        return True
    return event.list_id not in revoked
