"""Dead letters of the app's subscriptions, kept in the state store so that an operator can see why an event
was never handled, and redrive or discard it (`api.routes.admin`), instead of finding a log line.

Each subscription names a dead-letter topic (`<topic>-dead`, `dead_letter_topic`); daprd (and the embedded
sidecar) publishes the original CloudEvent there when the handler answers DROP or retries run out, and the
app subscribes to it (`api.channel.deliveries`). Layout (keys prefixed with the app id by the sidecar):
`dead-letters|index` lists the kept ones in arrival order (`[seq, id, topic]`, guarded by its ETag), and
`dead-letters|<id>` holds one, `id` being a digest of the event id, so a redelivered dead letter is kept once.
At most `max_kept` are kept: the oldest is evicted (logged) to make room. Calls go through the sidecar's
HTTP state API (`SidecarHttp`), as the change feed's do.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from api.channel.feed import bulk_get
from todo_actors.sidecar_http import SidecarHttp, SidecarHttpError

__all__ = [
    "DEAD_LETTER_SUFFIX",
    "DeadLetter",
    "DeadLetterPage",
    "DeadLetters",
    "Kept",
    "Redriven",
    "dead_letter_topic",
]

log = logging.getLogger("api.channel.dead_letters")

DEAD_LETTER_SUFFIX = "-dead"
_INDEX = "dead-letters|index"
_MAX_ATTEMPTS = 20
_CLOUDEVENT_JSON = {"Content-Type": "application/cloudevents+json"}

Kept = Literal["new", "again", "duplicate"]
"""What `keep` did: a new dead letter, one dead-lettered again after a redrive, or one kept before."""


def dead_letter_topic(topic: str) -> str:
    """The dead-letter topic the app declares for `topic`."""
    return topic + DEAD_LETTER_SUFFIX


def dead_letter_id(event_id: str) -> str:
    """A dead letter's id: URL- and key-safe whatever the event id, and the same for the same event."""
    return hashlib.sha256(event_id.encode("utf-8")).hexdigest()[:40]


class DeadLetter(BaseModel):
    """An event a subscription's handler never accepted, with the CloudEvent daprd dead-lettered."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(description="The dead letter's id (a digest of the event id)")
    cursor: str = Field(description="Its place in arrival order, for `cursor` in the listing")
    event_id: str
    topic: str = Field(description="The topic whose subscription dead-lettered it; a redrive publishes there")
    dead_letter_topic: str
    first_dead_at: dt.datetime
    last_dead_at: dt.datetime
    times: int = Field(description="How often it was dead-lettered (again after each failed redrive)")
    redriving: bool = Field(description="A redrive has published it and not yet removed it")
    event: dict[str, JsonValue] = Field(description="The original CloudEvent")


class DeadLetterPage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    dead_letters: list[DeadLetter]
    next_cursor: str
    has_more: bool


class Redriven(BaseModel):
    """A redrive's outcome: the event is published again; `removed` is false when it was dead-lettered
    again before the dead letter could be removed (it is then still listed, `times` counts it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    event_id: str
    topic: str
    removed: bool


class DeadLetters:
    def __init__(
        self,
        http: SidecarHttp,
        store: str,
        *,
        max_kept: int,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self._http = http
        self._state = f"/v1.0/state/{quote(store, safe='')}"
        self._max = max_kept
        self._now = clock or (lambda: dt.datetime.now(dt.UTC))

    @staticmethod
    def _key(id_: str) -> str:
        return f"dead-letters|{id_}"

    async def keep(self, topic: str, dlq_topic: str, event: dict[str, JsonValue], event_id: str) -> Kept:
        """Keep a dead letter of `topic` (idempotent by `event_id`)."""
        id_ = dead_letter_id(event_id)
        key = self._key(id_)
        now = self._now()
        for _ in range(_MAX_ATTEMPTS):
            found = await self._bulk_get([_INDEX, key])
            if _INDEX not in found:
                await self._create_index()
                continue
            if key in found:
                record, etag = found[key]
                if not record.get("redriving"):
                    return "duplicate"
                # Published again by a redrive and dead-lettered again before it was removed: the
                # redrive sees the ETag change and keeps it.
                record.update(redriving=False, times=record["times"] + 1, last_dead_at=now.isoformat())
                if await self._save(key, record, etag):
                    return "again"
                continue
            index, index_etag = found[_INDEX]
            seq = index["next"]
            entries: list[list[Any]] = [*index["entries"], [seq, id_, topic]]
            evicted, entries = entries[: -self._max], entries[-self._max :]
            record = {
                "id": id_,
                "cursor": str(seq),
                "event_id": event_id,
                "topic": topic,
                "dead_letter_topic": dlq_topic,
                "first_dead_at": now.isoformat(),
                "last_dead_at": now.isoformat(),
                "times": 1,
                "redriving": False,
                "event": event,
            }
            operations = [
                _upsert(_INDEX, {"next": seq + 1, "entries": entries}, index_etag),
                _upsert(key, record),
                *(_delete(self._key(old[1])) for old in evicted),
            ]
            if await self._transact(operations):
                for old in evicted:
                    log.warning("evicted dead letter %s of %s: more than %d kept", old[1], old[2], self._max)
                return "new"
        raise TimeoutError(f"could not keep a dead letter after {_MAX_ATTEMPTS} attempts (contention)")

    async def page(self, cursor: int, limit: int, topic: str | None = None) -> DeadLetterPage:
        """Dead letters after `cursor` in arrival order (of `topic` only, if given), at most `limit`."""
        index = (await self._bulk_get([_INDEX])).get(_INDEX)
        entries = [] if index is None else index[0]["entries"]
        after = [e for e in entries if e[0] > cursor and (topic is None or e[2] == topic)]
        chosen = after[:limit]
        found = await self._bulk_get([self._key(e[1]) for e in chosen]) if chosen else {}
        letters = [DeadLetter.model_validate(found[k][0]) for e in chosen if (k := self._key(e[1])) in found]
        next_cursor = chosen[-1][0] if chosen else cursor
        return DeadLetterPage(dead_letters=letters, next_cursor=str(next_cursor), has_more=len(after) > limit)

    async def get(self, id_: str) -> DeadLetter | None:
        found = (await self._bulk_get([self._key(id_)])).get(self._key(id_))
        return None if found is None else DeadLetter.model_validate(found[0])

    async def discard(self, id_: str) -> bool:
        """Remove a dead letter; False if there is none with this id."""
        return await self._remove(id_, None)

    async def redrive(self, id_: str, pubsub: str) -> Redriven | None:
        """Publish the original event again to its topic, then remove the dead letter (None: no such id).

        The event keeps its id, so handlers that record events once (the feed) stay idempotent."""
        key = self._key(id_)
        for _ in range(_MAX_ATTEMPTS):
            found = (await self._bulk_get([key])).get(key)
            if found is None:
                return None
            record, etag = found
            record["redriving"] = True
            if await self._save(key, record, etag):
                break
        else:
            raise TimeoutError(f"could not redrive dead letter {id_} (contention)")
        marked = (await self._bulk_get([key])).get(key)
        marked_etag = None if marked is None else marked[1]
        topic, event = record["topic"], record["event"]
        try:
            await self._http.request(
                "POST",
                f"/v1.0/publish/{quote(pubsub, safe='')}/{quote(topic, safe='/')}",
                json.dumps(event).encode(),
                headers=_CLOUDEVENT_JSON,
            )
        except Exception:
            # Not published: it stays a plain dead letter (best effort; a later redrive sets it again).
            if marked is not None:
                record["redriving"] = False
                await self._save(key, record, marked_etag)
            raise
        removed = marked_etag is not None and await self._remove(id_, marked_etag)
        log.info(
            "redrove dead letter %s (event %s) to %s; removed: %s", id_, record["event_id"], topic, removed
        )
        return Redriven(id=id_, event_id=record["event_id"], topic=topic, removed=removed)

    async def _remove(self, id_: str, record_etag: str | None) -> bool:
        """Delete a dead letter and its index entry; with `record_etag`, only while it is unchanged."""
        key = self._key(id_)
        for _ in range(_MAX_ATTEMPTS):
            found = await self._bulk_get([_INDEX, key])
            if key not in found or (record_etag is not None and found[key][1] != record_etag):
                return False
            index, index_etag = found.get(_INDEX, ({"next": 1, "entries": []}, None))
            entries = [e for e in index["entries"] if e[1] != id_]
            operations = [
                _upsert(_INDEX, {"next": index["next"], "entries": entries}, index_etag),
                _delete(key, found[key][1]),
            ]
            if await self._transact(operations):
                return True
        raise TimeoutError(f"could not remove dead letter {id_} after {_MAX_ATTEMPTS} attempts (contention)")

    async def _bulk_get(self, keys: list[str]) -> dict[str, tuple[Any, str | None]]:
        return await bulk_get(self._http, self._state, keys)

    async def _save(self, key: str, value: dict[str, Any], etag: str | None) -> bool:
        """Save `value` while `key` still has `etag` (daprd: 409 when it changed)."""
        item: dict[str, Any] = {"key": key, "value": value}
        if etag is not None:
            item["etag"] = etag
        try:
            await self._http.request("POST", self._state, json.dumps([item]).encode())
        except SidecarHttpError as exc:
            if exc.status != 409:
                raise
            return False
        return True

    async def _create_index(self) -> None:
        item = {"key": _INDEX, "value": {"next": 1, "entries": []}, "options": {"concurrency": "first-write"}}
        try:
            await self._http.request("POST", self._state, json.dumps([item]).encode())
        except SidecarHttpError as exc:
            if exc.status != 409:  # 409: someone else created it, fine
                raise

    async def _transact(self, operations: list[dict[str, Any]]) -> bool:
        """Run a state transaction; False when an ETag was stale (every store error of a transaction is
        ERR_STATE_TRANSACTION, so read again and retry)."""
        try:
            body = json.dumps({"operations": operations}).encode()
            await self._http.request("POST", f"{self._state}/transaction", body)
        except SidecarHttpError as exc:
            if exc.error_code != "ERR_STATE_TRANSACTION":
                raise
            log.debug("dead-letter transaction raced: %s", exc)
            return False
        return True


def _upsert(key: str, value: Any, etag: str | None = None) -> dict[str, Any]:
    request: dict[str, Any] = {"key": key, "value": value}
    if etag is not None:
        request["etag"] = etag
    return {"operation": "upsert", "request": request}


def _delete(key: str, etag: str | None = None) -> dict[str, Any]:
    request: dict[str, Any] = {"key": key}
    if etag is not None:
        request["etag"] = etag
    return {"operation": "delete", "request": request}
