"""Each user's change feed, kept in the Dapr state store: the events of the user's lists, in order, with a
per-user cursor that only grows, deduplicated by event id and bounded to the newest `max_events`.

Layout (keys are prefixed with the app id by the sidecar): `feed|<user>|head` holds the last cursor,
`feed|<user>|<cursor>` one event, `feed-seen|<user>|<event id>` (hashed, with a TTL) marks an event as
appended to that user's feed (a shared list's event goes to several feeds). An append
writes all three in one transaction guarded by the head's ETag, so concurrent appenders (deliveries,
replicas) never share a cursor; a redelivered event finds its mark and is dropped. Calls go through the
sidecar's HTTP state API (`SidecarHttp`): appending a batch of events (one bulk delivery), whatever their
users, is two of them: one bulk read of the marks and heads, one transaction.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, NamedTuple
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, JsonValue

from todo_actors.sidecar_http import SidecarHttp, SidecarHttpError

__all__ = ["Feed", "FeedAppend", "FeedCompaction", "FeedEvent", "FeedPage", "bulk_get"]

log = logging.getLogger("api.channel.feed")

_MAX_ATTEMPTS = 20
_COMPACT_PAGE = 200  # entries read or deleted per state call when compacting


class FeedEvent(BaseModel):
    """One change as a client sees it: `cursor` orders it within the user's feed, `id` is the event id."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cursor: str
    id: str
    type: str
    at: dt.datetime | None = None
    list_id: str | None = None
    item_id: str | None = None
    data: dict[str, JsonValue]


class FeedPage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    events: list[FeedEvent]
    next_cursor: str
    has_more: bool


class FeedCompaction(NamedTuple):
    """What `Feed.compact` did: entries deleted, the cursor it reached (every entry up to it is gone) and
    the time of the oldest event kept (None: none is kept)."""

    deleted: int
    floor: int
    oldest: dt.datetime | None


class FeedAppend(NamedTuple):
    """One event to record in `user`'s feed."""

    user: str
    event_id: str
    event_type: str
    data: dict[str, JsonValue]
    at: dt.datetime | None = None
    list_id: str | None = None
    item_id: str | None = None


def _user_key(user: str) -> str:
    # Users are free text; state keys must not contain the store's "||" separator, so hash them.
    return hashlib.sha256(user.encode("utf-8")).hexdigest()[:32]


class Feed:
    def __init__(
        self,
        http: SidecarHttp,
        store: str,
        *,
        max_events: int,
        seen_ttl_seconds: int,
        on_append: Callable[[str], None] | None = None,
    ) -> None:
        self._http = http
        self._store = store
        self._state = f"/v1.0/state/{quote(store, safe='')}"
        self._max = max_events
        self._seen_ttl = str(seen_ttl_seconds)
        self._on_append = on_append
        # One appender per user in this process (others are fenced by the head's ETag); entries are
        # dropped when unused so memory follows the number of users appending right now.
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    def _head(self, user: str) -> str:
        return f"feed|{_user_key(user)}|head"

    def _entry(self, user: str, cursor: int) -> str:
        return f"feed|{_user_key(user)}|{cursor}"

    @staticmethod
    def _seen(user: str, event_id: str) -> str:
        digest = hashlib.sha256(f"{len(user)}:{user}|{event_id}".encode()).hexdigest()[:40]
        return f"feed-seen|{digest}"

    async def append(
        self,
        user: str,
        event_id: str,
        event_type: str,
        data: dict[str, JsonValue],
        *,
        at: dt.datetime | None = None,
        list_id: str | None = None,
        item_id: str | None = None,
    ) -> int | None:
        """Append one event; returns its cursor, or None if this event id was appended before."""
        (cursor,) = await self.append_batch(
            [FeedAppend(user, event_id, event_type, data, at, list_id, item_id)]
        )
        return cursor

    async def append_batch(self, events: Sequence[FeedAppend]) -> list[int | None]:
        """Append `events` in their order, all or none; the cursor of each, None for an event id appended
        before (or earlier in the batch)."""
        if not events:
            return []
        async with AsyncExitStack() as stack:
            for user in sorted({e.user for e in events}):  # one order for every appender: no deadlock
                await stack.enter_async_context(self._user_lock(user))
            cursors = await self._append(events)
        return cursors

    @asynccontextmanager
    async def _user_lock(self, user: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(user, (asyncio.Lock(), 0))
        self._locks[user] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[user]
            if users == 1:
                del self._locks[user]
            else:
                self._locks[user] = (lock, users - 1)

    async def _append(self, events: Sequence[FeedAppend]) -> list[int | None]:
        seen_keys = [self._seen(e.user, e.event_id) for e in events]
        head_keys = {e.user: self._head(e.user) for e in events}
        for _ in range(_MAX_ATTEMPTS):
            found = await self._bulk_get(list(dict.fromkeys([*seen_keys, *head_keys.values()])))
            missing = [key for key in head_keys.values() if found.get(key) is None]
            if missing:
                for key in missing:
                    await self._create_head(key)
                continue
            seq = {user: int(found[key][0]["seq"]) for user, key in head_keys.items()}
            cursors: list[int | None] = []
            entries: list[str] = []
            taken: set[str] = set()
            for event, seen_key in zip(events, seen_keys, strict=True):
                if seen_key in taken or found.get(seen_key) is not None:
                    cursors.append(None)
                    continue
                taken.add(seen_key)
                cursor = seq[event.user] = seq[event.user] + 1
                cursors.append(cursor)
                entries.append(_upsert(self._entry(event.user, cursor), self._event(event, cursor)))
                entries.append(_upsert(seen_key, str(cursor), metadata={"ttlInSeconds": self._seen_ttl}))
                if cursor > self._max:
                    entries.append(_delete(self._entry(event.user, cursor - self._max)))
            if not entries:
                return cursors
            heads = [
                _upsert(key, json.dumps({"seq": seq[user]}), etag=found[key][1])
                for user, key in head_keys.items()
                if seq[user] != int(found[key][0]["seq"])
            ]
            try:
                await self._http.request(
                    "POST",
                    f"{self._state}/transaction",
                    ('{"operations":[' + ",".join(heads + entries) + "]}").encode(),
                )
            except SidecarHttpError as exc:
                # Every store error of a transaction is ERR_STATE_TRANSACTION (500), a stale head ETag
                # (another appender took one of these cursors) included: read again and retry.
                if exc.error_code != "ERR_STATE_TRANSACTION":
                    raise
                log.debug("feed append of %d event(s) raced: %s", len(events), exc)
                continue
            if self._on_append is not None:
                for user in head_keys:
                    self._on_append(user)
            return cursors
        raise TimeoutError(f"could not append to the feed after {_MAX_ATTEMPTS} attempts (contention)")

    @staticmethod
    def _event(event: FeedAppend, cursor: int) -> str:
        return FeedEvent(
            cursor=str(cursor),
            id=event.event_id,
            type=event.event_type,
            at=event.at,
            list_id=event.list_id,
            item_id=event.item_id,
            data=event.data,
        ).model_dump_json()

    async def _bulk_get(self, keys: list[str]) -> dict[str, tuple[Any, str | None]]:
        return await bulk_get(self._http, self._state, keys)

    async def _create_head(self, head_key: str) -> None:
        body = json.dumps(
            [{"key": head_key, "value": {"seq": 0}, "options": {"concurrency": "first-write"}}]
        ).encode()
        try:
            await self._http.request("POST", self._state, body)
        except SidecarHttpError as exc:
            if exc.status != 409:  # 409: someone else created it, fine
                raise

    async def last_cursor(self, user: str) -> int:
        head = (await self._bulk_get([self._head(user)])).get(self._head(user))
        return int(head[0]["seq"]) if head is not None else 0

    async def compact(self, user: str, before: dt.datetime, floor: int) -> FeedCompaction:
        """Delete `user`'s events recorded before `before`, oldest first, from the cursor after `floor` (what
        an earlier compaction reached) or the oldest of the newest `max_events` (appends delete older ones).
        Stops at the first younger event, or one whose time is unknown: cursors grow with time."""
        last = await self.last_cursor(user)
        cursor = max(floor + 1, last - self._max + 1, 1)
        doomed: list[str] = []
        oldest: dt.datetime | None = None
        while cursor <= last and oldest is None:
            end = min(last, cursor + _COMPACT_PAGE - 1)
            found = await self._bulk_get([self._entry(user, c) for c in range(cursor, end + 1)])
            for c in range(cursor, end + 1):
                value = found.get(self._entry(user, c))
                at = None if value is None else FeedEvent.model_validate(value[0]).at
                if value is not None and (at is None or at >= before):
                    oldest = at or before
                    break
                if value is not None:
                    doomed.append(self._entry(user, c))
                cursor = c + 1
        for start in range(0, len(doomed), _COMPACT_PAGE):
            chunk = doomed[start : start + _COMPACT_PAGE]
            body = '{"operations":[' + ",".join(_delete(key) for key in chunk) + "]}"
            await self._http.request("POST", f"{self._state}/transaction", body.encode())
        return FeedCompaction(deleted=len(doomed), floor=cursor - 1, oldest=oldest)

    async def page(self, user: str, since: int, limit: int) -> FeedPage:
        """Events with a cursor above `since`, oldest first, at most `limit`."""
        last = await self.last_cursor(user)
        first = max(since + 1, last - self._max + 1, 1)
        end = min(last, first + limit - 1)
        events: list[FeedEvent] = []
        if end >= first:
            found = await self._bulk_get([self._entry(user, c) for c in range(first, end + 1)])
            events = sorted(
                (FeedEvent.model_validate(value) for value, _ in found.values()),
                key=lambda e: int(e.cursor),
            )
        # A cursor past the end (the store was reset) restarts from the current end.
        next_cursor = end if end >= first else min(since, last)
        return FeedPage(events=events, next_cursor=str(next_cursor), has_more=end < last)


async def bulk_get(http: SidecarHttp, state: str, keys: list[str]) -> dict[str, tuple[Any, str | None]]:
    """The stored keys among `keys` in the store at `state` (`/v1.0/state/<store>`), in one bulk read:
    their decoded JSON value and ETag."""
    body = json.dumps({"keys": keys, "parallelism": len(keys)}).encode()
    _, _, raw = await http.request("POST", f"{state}/bulk", body)
    return {
        item["key"]: (item["data"], item.get("etag"))
        for item in json.loads(raw)
        if item.get("data") is not None
    }


def _upsert(
    key: str, value_json: str, *, etag: str | None = None, metadata: dict[str, str] | None = None
) -> str:
    """One `upsert` operation of a state transaction, `value_json` embedded as it is (no re-encoding)."""
    request = '{"key":' + json.dumps(key) + ',"value":' + value_json
    if etag is not None:
        request += ',"etag":' + json.dumps(etag)
    if metadata:
        request += ',"metadata":' + json.dumps(metadata)
    return '{"operation":"upsert","request":' + request + "}}"


def _delete(key: str) -> str:
    return '{"operation":"delete","request":{"key":' + json.dumps(key) + "}}"
