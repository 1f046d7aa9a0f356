"""How a `TodoList` is laid out in actor state keys, so a save writes only what changed.

`meta` holds the list fields and which item buckets exist; items live in `items:NN`, 64 buckets chosen
by a stable hash of the item id. One key per item would make activating a 5,000-item list 5,001
sequential state reads through the SDK; buckets cap that at 65 while a change rewrites only ~1/64 of
the items (one bucket) plus the small `meta`.
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
    "ITEM_BUCKETS",
    "META_KEY",
    "ItemBucket",
    "ListMeta",
    "StateChanges",
    "bucket_key",
    "bucket_of",
    "dump_state",
    "item_keys",
    "load",
    "meta_of",
    "state_changes",
]

META_KEY = "meta"
ITEM_BUCKETS = 64


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


class ItemBucket(BaseModel):
    """An `items:NN` state value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    items: dict[ItemId, TodoItem]


class StateChanges(NamedTuple):
    """State keys to write (with their values) and to remove, for one actor state transaction."""

    upserts: dict[str, BaseModel]
    deletes: frozenset[str]


@functools.lru_cache(maxsize=65_536)
def bucket_of(item_id: str) -> int:
    # crc32, not hash(): the bucket must be the same in every process and after every restart.
    return zlib.crc32(item_id.encode("utf-8")) % ITEM_BUCKETS


def bucket_key(bucket: int) -> str:
    return f"items:{bucket:02d}"


def meta_of(state: TodoList, buckets: Iterable[int] | None = None) -> ListMeta:
    if buckets is None:
        buckets = {bucket_of(i) for i in state.items}
    return ListMeta.model_validate({**_list_fields(state), "buckets": tuple(sorted(buckets))})


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
    return TodoList.model_validate({**fields, "items": items})


def dump_state(state: TodoList) -> dict[str, BaseModel]:
    """Every state key of the list with its value (what a first save writes)."""
    result: dict[str, BaseModel] = {META_KEY: meta_of(state)}
    for bucket, items in _group(state.items.values()).items():
        result[bucket_key(bucket)] = ItemBucket(items=items)
    return result


def state_changes(old: TodoList | None, new: TodoList | None) -> StateChanges:
    """The writes that turn the stored `old` into `new` (None: absent / delete the list)."""
    if new is None:
        return StateChanges({}, frozenset(dump_state(old)) if old is not None else frozenset())
    if old is None:
        return StateChanges(dump_state(new), frozenset())
    changed = _changed(old, new)
    touched = {bucket_of(i) for i in changed}
    upserts: dict[str, BaseModel] = {}
    deletes: set[str] = set()
    members = _members(old, new, changed, touched)
    new_buckets = set(members)
    groups = {b: {i: new.items[i] for i in members[b]} for b in touched if b in members}
    for bucket in touched:
        if bucket in groups:
            upserts[bucket_key(bucket)] = ItemBucket(items=groups[bucket])
        else:
            deletes.add(bucket_key(bucket))
    # A bucket untouched by the change exists before iff after; a touched one existed before iff it
    # held an item that did not change or an old version of one that did.
    old_buckets = (new_buckets - touched) | {
        b for b in touched if any(i not in changed for i in groups.get(b, ()))
    }
    old_buckets |= {bucket_of(i) for i in changed if i in old.items}
    if _list_fields(old) != _list_fields(new) or old_buckets != new_buckets:
        upserts[META_KEY] = meta_of(new, new_buckets)
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
    old: TodoList, new: TodoList, changed: set[str], touched: set[int]
) -> dict[int, dict[str, None]]:
    """The ids of `new`'s items by bucket (non-empty buckets only), in `new.items` order.

    Kept on large states like `TodoList`'s display order (in `__dict__`, keyed by the items' identity):
    the next state copies the index and redoes only the touched buckets, so a write to a list of
    thousands of items does not hash every id again."""
    cached: tuple[Mapping[str, TodoItem], dict[int, dict[str, None]]] | None = old.__dict__.get(_MEMBERS)
    if cached is not None and cached[0] is old.items:
        members = dict(cached[1])
        for bucket in touched:
            ids = dict(members.get(bucket, {}))
            for item_id in changed:
                if bucket_of(item_id) != bucket:
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
            members.setdefault(bucket_of(item_id), {})[item_id] = None
    if len(new.items) >= _INDEXED_FROM:
        new.__dict__[_MEMBERS] = (new.items, members)
    return members


def _list_fields(state: TodoList) -> dict[str, Any]:
    return {name: getattr(state, name) for name in TodoList.model_fields if name != "items"}


def _group(items: Iterable[TodoItem]) -> dict[int, dict[str, TodoItem]]:
    groups: dict[int, dict[str, TodoItem]] = {}
    for item in items:
        groups.setdefault(bucket_of(item.id), {})[item.id] = item
    return groups
