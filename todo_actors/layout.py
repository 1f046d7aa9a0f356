"""How a `TodoList` is laid out in actor state keys, so a save writes only what changed.

`meta` holds the list fields, the bucket count and which item buckets exist; items live in `items:NN`,
chosen by a stable hash of the item id. One key per item would make activating a 5,000-item list 5,001
sequential state reads through the SDK; buckets cap that at 65 while a change rewrites only one bucket plus
the small `meta`. A small list needs few buckets: the count doubles (1, 2, 4 .. 64) as the list grows past
`ITEMS_PER_BUCKET` per bucket, so activating a list (a read per bucket) stays cheap for the common sizes.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Iterable, Mapping
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict

from todo_actors.due import UtcDatetime, ZoneKey
from todo_actors.model import (
    Description,
    ItemId,
    ListTitle,
    MemberRole,
    Occurrence,
    SeriesId,
    TodoItem,
    TodoList,
    UserId,
    Version,
)

__all__ = [
    "ITEMS_PER_BUCKET",
    "ITEM_BUCKETS",
    "META_KEY",
    "ItemBucket",
    "ListMeta",
    "StateChanges",
    "bucket_count_of",
    "bucket_key",
    "bucket_of",
    "buckets_for",
    "dump_state",
    "item_keys",
    "load",
    "meta_of",
    "state_changes",
]

META_KEY = "meta"
ITEM_BUCKETS = 64
"""The most buckets a list has (and the count of every list stored before the count was kept)."""
ITEMS_PER_BUCKET = 32
"""A list gets more buckets once it has more items than this per bucket."""


class ListMeta(BaseModel):
    """The `meta` state value: a `TodoList` without its items, plus the non-empty bucket numbers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    id: ItemId
    owner: UserId
    title: ListTitle
    description: Description
    tz: ZoneKey
    created_at: UtcDatetime
    updated_at: UtcDatetime
    version: Version
    deleted_series: tuple[tuple[SeriesId, Occurrence], ...] = ()
    members: dict[UserId, MemberRole] = {}
    buckets: tuple[int, ...] = ()
    bucket_count: Literal[1, 2, 4, 8, 16, 32, 64] = 64  # ITEM_BUCKETS; absent in lists stored before it


class ItemBucket(BaseModel):
    """An `items:NN` state value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    items: dict[ItemId, TodoItem]


class StateChanges(NamedTuple):
    """State keys to write (with their values) and to remove, for one actor state transaction."""

    upserts: dict[str, BaseModel]
    deletes: frozenset[str]


@functools.lru_cache(maxsize=65_536)
def _hash_bucket(item_id: str) -> int:
    # crc32, not hash(): the bucket must be the same in every process and after every restart.
    return zlib.crc32(item_id.encode("utf-8")) % ITEM_BUCKETS


def bucket_of(item_id: str, count: int = ITEM_BUCKETS) -> int:
    """The bucket of an item in a list of `count` buckets (a power of two up to 64: the buckets of a
    smaller count are unions of the 64)."""
    return _hash_bucket(item_id) % count


def bucket_key(bucket: int) -> str:
    return f"items:{bucket:02d}"


def buckets_for(items: int) -> int:
    """The bucket count a list of `items` items is laid out in."""
    count = 1
    while count < ITEM_BUCKETS and items > ITEMS_PER_BUCKET * count:
        count *= 2
    return count


_COUNT = "_bucket_count"


def bucket_count_of(state: TodoList) -> int:
    """The bucket count `state` is stored in: as loaded or last saved (kept in the model's `__dict__`, like
    the display order), else what its size asks for (a state not stored yet)."""
    count: int | None = state.__dict__.get(_COUNT)
    return count if count is not None else buckets_for(len(state.items))


def meta_of(state: TodoList, buckets: Iterable[int] | None = None, count: int | None = None) -> ListMeta:
    count = bucket_count_of(state) if count is None else count
    if buckets is None:
        buckets = {bucket_of(i, count) for i in state.items}
    return ListMeta.model_validate(
        {**_list_fields(state), "buckets": tuple(sorted(buckets)), "bucket_count": count}
    )


def item_keys(meta: ListMeta | Mapping[str, Any]) -> list[str]:
    """The bucket keys to read after `meta` to load the whole list."""
    return [bucket_key(b) for b in ListMeta.model_validate(meta).buckets]


def load(meta: ListMeta | Mapping[str, Any], buckets: Iterable[ItemBucket | Mapping[str, Any]]) -> TodoList:
    """Rebuild the list from `meta` and its buckets.

    Accepts the models as saved or plain dicts: the SDK's state manager decodes stored values with
    `data_type=object`, so a value read from the store arrives as a dict.
    """
    m = ListMeta.model_validate(meta)
    items: dict[str, Any] = {}
    for bucket in buckets:
        items.update(ItemBucket.model_validate(bucket).items)
    fields = {name: getattr(m, name) for name in TodoList.model_fields if name != "items"}
    state = TodoList.model_validate({**fields, "items": items})
    state.__dict__[_COUNT] = m.bucket_count
    return state


def dump_state(state: TodoList, count: int | None = None) -> dict[str, BaseModel]:
    """Every state key of the list with its value (what a first save writes), in `count` buckets (default:
    the count `state` is stored in)."""
    count = bucket_count_of(state) if count is None else count
    result: dict[str, BaseModel] = {META_KEY: meta_of(state, count=count)}
    for bucket, items in _group(state.items.values(), count).items():
        result[bucket_key(bucket)] = _bucket(items)
    return result


def state_changes(old: TodoList | None, new: TodoList | None) -> StateChanges:
    """The writes that turn the stored `old` into `new` (None: absent / delete the list)."""
    if new is None:
        return StateChanges({}, frozenset(dump_state(old)) if old is not None else frozenset())
    if old is None:
        new.__dict__[_COUNT] = count = buckets_for(len(new.items))
        return StateChanges(dump_state(new, count), frozenset())
    count = bucket_count_of(old)
    grown = max(count, buckets_for(len(new.items)))
    new.__dict__[_COUNT] = grown
    if grown != count:  # more buckets: every item moves, in the same transaction as the change
        written = dump_state(new, grown)
        return StateChanges(written, frozenset(dump_state(old, count)) - written.keys())
    changed = _changed(old, new)
    touched = {bucket_of(i, count) for i in changed}
    upserts: dict[str, BaseModel] = {}
    deletes: set[str] = set()
    members = _members(old, new, changed, touched, count)
    new_buckets = set(members)
    groups = {b: {i: new.items[i] for i in members[b]} for b in touched if b in members}
    for bucket in touched:
        if bucket in groups:
            upserts[bucket_key(bucket)] = _bucket(groups[bucket])
        else:
            deletes.add(bucket_key(bucket))
    # A bucket untouched by the change exists before iff after; a touched one existed before iff it
    # held an item that did not change or an old version of one that did.
    old_buckets = (new_buckets - touched) | {
        b for b in touched if any(i not in changed for i in groups.get(b, ()))
    }
    old_buckets |= {bucket_of(i, count) for i in changed if i in old.items}
    if _list_fields(old) != _list_fields(new) or old_buckets != new_buckets:
        upserts[META_KEY] = meta_of(new, new_buckets, count)
    return StateChanges(upserts, frozenset(deletes))


def _changed(old: TodoList, new: TodoList) -> set[str]:
    """Ids of the items that differ between `old` and `new`."""
    if old.items is new.items:
        return set()
    hint = new.changed_since(old)
    ids = hint if hint is not None else old.items.keys() | new.items.keys()
    return {
        i for i in ids if old.items.get(i) is not new.items.get(i) and old.items.get(i) != new.items.get(i)
    }


_MEMBERS = "_bucket_members"
_INDEXED_FROM = 256  # items: below this, grouping every item per write is cheaper than keeping an index


def _members(
    old: TodoList, new: TodoList, changed: set[str], touched: set[int], count: int
) -> dict[int, dict[str, None]]:
    """The ids of `new`'s items by bucket (non-empty buckets only), in `new.items` order.

    Kept on large states like `TodoList`'s display order (in `__dict__`, keyed by the items' identity):
    the next state copies the index and redoes only the touched buckets, so a write to a list of
    thousands of items does not hash every id again."""
    cached: tuple[Mapping[str, TodoItem], int, dict[int, dict[str, None]]] | None = old.__dict__.get(_MEMBERS)
    if cached is not None and cached[0] is old.items and cached[1] == count:
        members = dict(cached[2])
        for bucket in touched:
            ids = dict(members.get(bucket, {}))
            for item_id in changed:
                if bucket_of(item_id, count) != bucket:
                    continue
                if item_id not in new.items:
                    ids.pop(item_id, None)
                elif item_id not in ids:
                    ids[item_id] = None
            if ids:
                members[bucket] = ids
            else:
                members.pop(bucket, None)
    else:
        members = {}
        for item_id in new.items:
            members.setdefault(bucket_of(item_id, count), {})[item_id] = None
    if len(new.items) >= _INDEXED_FROM:
        new.__dict__[_MEMBERS] = (new.items, count, members)
    return members


def _list_fields(state: TodoList) -> dict[str, Any]:
    return {name: getattr(state, name) for name in TodoList.model_fields if name != "items"}


def _bucket(items: dict[str, TodoItem]) -> ItemBucket:
    # The items are validated `TodoItem`s of a `TodoList`: validating them again (their model validator
    # runs even for instances) cost as much per write as dumping them.
    return ItemBucket.model_construct(items=items)


def _group(items: Iterable[TodoItem], count: int) -> dict[int, dict[str, TodoItem]]:
    groups: dict[int, dict[str, TodoItem]] = {}
    for item in items:
        groups.setdefault(bucket_of(item.id, count), {})[item.id] = item
    return groups
