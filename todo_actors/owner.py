"""The owner index actor: which lists a user owns or shares, since actors cannot be queried (actor id =
user id). The list actor is the truth about membership; the API updates this index after it, idempotently.

Entries live in 16 buckets chosen by a stable hash of the list id, so adding or removing a list rewrites
one bucket (about 1/16 of the user's lists) and a small `meta`, never one blob of every list.
"""

from __future__ import annotations

import asyncio
import bisect
import datetime as dt
import zlib
from typing import Any, Literal

from dapr.actor import Actor, ActorId
from dapr.actor.runtime.context import ActorRuntimeContext
from pydantic import AwareDatetime, BaseModel, ConfigDict

from todo_actors.config import ActorsConfig
from todo_actors.errors import InvalidInput, LimitExceeded
from todo_actors.interface import (
    Ack,
    AckReply,
    ListChange,
    OwnedList,
    OwnerIndexActorInterface,
    OwnerLists,
    OwnerListsReply,
    PageRequest,
)
from todo_actors.model import Role
from todo_actors.query import decode_cursor, encode_cursor
from todo_actors.replies import reply

__all__ = ["OWNER_BUCKETS", "OwnerBucket", "OwnerIndexActor", "OwnerMeta", "owner_bucket_key"]

OWNER_BUCKETS = 16
_META_KEY = "meta"


class OwnerMeta(BaseModel):
    """The `meta` state value: a version bumped on every change and the non-empty bucket numbers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    version: int = 0
    buckets: tuple[int, ...] = ()


class OwnerBucket(BaseModel):
    """A `lists:NN` state value: list id -> when the list was created (or shared); `roles` holds the
    user's role on the lists shared with them (absent: owned)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lists: dict[str, AwareDatetime]
    roles: dict[str, Role] = {}


def _bucket_of(list_id: str) -> int:
    return zlib.crc32(list_id.encode("utf-8")) % OWNER_BUCKETS


def owner_bucket_key(bucket: int) -> str:
    return f"lists:{bucket:02d}"


def _sort_key(entry: OwnedList) -> tuple[dt.datetime, str]:
    return (entry.created_at, entry.list_id)


class OwnerIndexActor(Actor, OwnerIndexActorInterface):
    """One user's lists, oldest first; the class name is the actor type (`OWNER_ACTOR_TYPE`)."""

    def __init__(self, ctx: ActorRuntimeContext, actor_id: ActorId, config: ActorsConfig) -> None:
        super().__init__(ctx, actor_id)
        self._config = config
        self._meta = OwnerMeta()
        self._lists: dict[str, OwnedList] | None = None

    async def add_list(self, change: ListChange) -> AckReply:
        """Record a list with the user's role; adding a recorded list again with the same role changes
        nothing (a retried create), with another role records the new one (a membership change)."""

        async def run() -> Any:
            lists = await self._load()
            known = lists.get(change.list_id)
            if known is not None:
                if known.role == change.role:
                    return Ack(version=self._meta.version)
                return await self._write(change.list_id, known.model_copy(update={"role": change.role}))
            # Owned and shared lists count apart: sharing with someone never uses up their own lists.
            limit = self._config.lists_per_owner
            owned = change.role == "owner"
            if sum(1 for e in lists.values() if (e.role == "owner") == owned) >= limit:
                what = "owns" if owned else "is a member of"
                raise LimitExceeded(
                    f"a user {what} at most {limit} lists", limit_name="lists_per_owner", limit=limit
                )
            created_at = change.created_at or self._config.now()
            entry = OwnedList(
                list_id=change.list_id, created_at=created_at.astimezone(dt.UTC), role=change.role
            )
            return await self._write(change.list_id, entry)

        return await reply(AckReply, run)

    async def remove_list(self, change: ListChange) -> AckReply:
        """Forget a list; removing one that is not recorded changes nothing (a retried delete)."""

        async def run() -> Any:
            lists = await self._load()
            if change.list_id not in lists:
                return Ack(version=self._meta.version)
            return await self._write(change.list_id, None)

        return await reply(AckReply, run)

    async def lists(self, page: PageRequest) -> OwnerListsReply:
        """A page of the user's lists, oldest first; the cursor is the last entry's sort key."""

        async def run() -> Any:
            entries = sorted((await self._load()).values(), key=_sort_key)
            start = 0
            if page.cursor is not None:
                start = bisect.bisect_right(entries, _cursor_key(page.cursor), key=_sort_key)
            chunk = entries[start : start + page.limit]
            more = start + page.limit < len(entries)
            next_cursor = None
            if more and chunk:
                last = chunk[-1]
                next_cursor = encode_cursor([last.created_at.isoformat(), last.list_id])
            return OwnerLists(lists=chunk, next_cursor=next_cursor)

        return await reply(OwnerListsReply, run)

    async def _load(self) -> dict[str, OwnedList]:
        if self._lists is None:
            state = self._state_manager
            found, meta = await state.try_get_state(_META_KEY)
            self._meta = OwnerMeta.model_validate(meta) if found else OwnerMeta()
            reads = await asyncio.gather(
                *(state.try_get_state(owner_bucket_key(b)) for b in self._meta.buckets)
            )
            lists: dict[str, OwnedList] = {}
            for bucket_no, (ok, value) in zip(self._meta.buckets, reads, strict=True):
                if not ok:
                    raise RuntimeError(f"owner {self.id}: bucket {bucket_no} named by meta is missing")
                stored = OwnerBucket.model_validate(value)
                for list_id, created_at in stored.lists.items():
                    role = stored.roles.get(list_id, "owner")
                    lists[list_id] = OwnedList(list_id=list_id, created_at=created_at, role=role)
            self._lists = lists
        return self._lists

    async def _write(self, list_id: str, entry: OwnedList | None) -> Ack:
        """Put (or with None remove) one entry: rewrite its bucket and `meta` in one transaction."""
        assert self._lists is not None
        lists = dict(self._lists)
        if entry is None:
            lists.pop(list_id, None)
        else:
            lists[list_id] = entry
        bucket = _bucket_of(list_id)
        members = {i: e for i, e in lists.items() if _bucket_of(i) == bucket}
        buckets = set(self._meta.buckets)
        meta = self._meta.model_copy(update={"version": self._meta.version + 1})
        state = self._state_manager
        try:
            if members:
                stored = OwnerBucket(
                    lists={i: e.created_at for i, e in members.items()},
                    roles={i: e.role for i, e in members.items() if e.role != "owner"},
                )
                await state.set_state(owner_bucket_key(bucket), stored)
                buckets.add(bucket)
            else:
                await state.try_remove_state(owner_bucket_key(bucket))
                buckets.discard(bucket)
            meta = meta.model_copy(update={"buckets": tuple(sorted(buckets))})
            await state.set_state(_META_KEY, meta)
            await state.save_state()
        except BaseException:
            # The SDK's tracker already counts these writes as saved: start over from the store.
            await state.clear_cache()
            self._lists = None
            raise
        self._lists, self._meta = lists, meta
        return Ack(version=meta.version)


def _cursor_key(cursor: str) -> tuple[dt.datetime, str]:
    parts = decode_cursor(cursor)
    try:
        created_at, list_id = parts
        key = (dt.datetime.fromisoformat(created_at), str(list_id))
    except (TypeError, ValueError):
        raise InvalidInput.at("cursor", "not a cursor this API returned") from None
    if key[0].tzinfo is None:
        raise InvalidInput.at("cursor", "not a cursor this API returned")
    return key
