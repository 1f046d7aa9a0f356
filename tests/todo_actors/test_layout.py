"""The actor state layout: which keys a change writes, and loading back from models or plain JSON."""

from __future__ import annotations

import datetime as dt
import random

from todo_actors.commands import AddTodo, CompleteTodo, CreateList, DeleteTodo, UpdateList
from todo_actors.layout import (
    META_KEY,
    ItemBucket,
    ListMeta,
    bucket_count_of,
    bucket_key,
    bucket_of,
    buckets_for,
    dump_state,
    item_keys,
    load,
    state_changes,
)
from todo_actors.model import TodoList
from todo_actors.transitions import add_todo, complete_todo, create_list, delete_todo, update_list

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def a_list(n: int) -> TodoList:
    state = create_list(None, CreateList(owner="ann", title="l"), "l", T0).state
    for i in range(n):
        state = add_todo(state, AddTodo(title=f"t{i}"), T0, f"item-{i:05d}").state
    return state


def test_bucket_numbers_never_change() -> None:
    # Stored lists depend on these: a different hash would orphan every saved item.
    assert [bucket_of(i) for i in ["a", "item-00001", "0b7c2a4e"]] == [3, 57, 13]
    assert bucket_key(3) == "items:03"


def test_bucket_counts_by_size() -> None:
    assert [buckets_for(n) for n in (0, 1, 32, 33, 64, 65, 1024, 1025, 2048, 2049, 10**6)] == [
        1, 1, 1, 2, 2, 4, 32, 64, 64, 64, 64
    ]  # fmt: skip
    assert [bucket_of("item-00001", c) for c in (64, 16, 1)] == [57, 9, 0]


def test_a_completion_writes_one_bucket_and_meta() -> None:
    state = a_list(500)
    assert bucket_count_of(state) == 16
    out = complete_todo(state, CompleteTodo(id="item-00001"), T0)
    upserts, deletes = state_changes(state, out.state)
    assert set(upserts) == {META_KEY, "items:09"} and deletes == frozenset()
    bucket = upserts["items:09"]
    assert isinstance(bucket, ItemBucket)
    assert bucket.items["item-00001"].status == "completed"
    assert all(bucket_of(i, 16) == 9 for i in bucket.items)


def test_emptied_buckets_are_deleted_and_meta_tracks_them() -> None:
    state = add_todo(a_list(0), AddTodo(title="only"), T0, "a").state
    out = delete_todo(state, DeleteTodo(id="a"), T0)
    upserts, deletes = state_changes(state, out.state)
    assert deletes == {"items:00"}
    meta = upserts[META_KEY]
    assert isinstance(meta, ListMeta) and meta.buckets == () and item_keys(meta) == []


def test_list_field_changes_write_meta_only() -> None:
    state = a_list(3)
    out = update_list(state, UpdateList(title="renamed"), T0)
    assert set(state_changes(state, out.state).upserts) == {META_KEY}
    assert state_changes(state, state) == ({}, frozenset())


def test_create_and_delete_whole_list() -> None:
    state = a_list(5)
    created = state_changes(None, state)
    assert created.upserts == dump_state(state) and created.deletes == frozenset()
    gone = state_changes(state, None)
    assert gone.upserts == {} and gone.deletes == set(dump_state(state))
    assert state_changes(None, None) == ({}, frozenset())


def test_load_accepts_models_or_plain_json() -> None:
    state = a_list(20)
    saved = dump_state(state)
    meta = saved[META_KEY]
    assert isinstance(meta, ListMeta)
    buckets = [b for k, b in saved.items() if isinstance(b, ItemBucket)]
    assert {bucket_key(b) for b in meta.buckets} == set(saved) - {META_KEY} == set(item_keys(meta))
    assert load(meta, buckets) == state
    plain = {k: v.model_dump(mode="json") for k, v in saved.items()}
    assert load(plain[META_KEY], [plain[k] for k in item_keys(plain[META_KEY])]) == state


def test_a_large_list_carries_its_bucket_index_and_writes_the_same() -> None:
    """Past a few hundred items each state keeps an index of item ids by bucket for the next one; the
    writes it gives must be the ones computed from scratch, over adds, changes and deletes that fill
    and empty buckets."""
    rng = random.Random(7)
    state = a_list(300)
    store = {k: v.model_dump_json() for k, v in dump_state(state).items()}
    next_id = 300
    for step in range(400):
        ids = sorted(state.items)
        roll = rng.random()
        if roll < 0.4 or len(ids) < 260:
            out = add_todo(state, AddTodo(title=f"n{step}"), T0, f"item-{next_id:05d}")
            next_id += 1
        elif roll < 0.7:
            out = complete_todo(state, CompleteTodo(id=rng.choice(ids)), T0)
        else:
            out = delete_todo(state, DeleteTodo(id=rng.choice(ids)), T0)
        new = out.state
        assert new is not None
        carried = state_changes(state, new)
        # The same states in copies with their own items dicts, which no carried index or diff matches:
        # the writes from scratch.
        fresh = state_changes(
            state.model_copy(update={"items": dict(state.items)}),
            new.model_copy(update={"items": dict(new.items)}),
        )
        assert carried.deletes == fresh.deletes
        assert {k: v.model_dump_json() for k, v in carried.upserts.items()} == {
            k: v.model_dump_json() for k, v in fresh.upserts.items()
        }
        for key in carried.deletes:
            del store[key]
        store.update({k: v.model_dump_json() for k, v in carried.upserts.items()})
        state = new
    assert store == {k: v.model_dump_json() for k, v in dump_state(state).items()}


def test_a_growing_list_doubles_its_buckets_in_the_change_that_needs_it() -> None:
    """Every write applied to a store gives the layout a save from scratch gives, the bucket count
    doubles exactly when a list passes 32 items per bucket, and the store loads back as the list."""
    state = a_list(0)
    store = {k: v.model_dump_json() for k, v in state_changes(None, state).upserts.items()}
    counts = []
    for i in range(2100):
        new = add_todo(state, AddTodo(title=f"t{i}"), T0, f"item-{i:05d}").state
        upserts, deletes = state_changes(state, new)
        assert META_KEY in upserts or bucket_count_of(new) == bucket_count_of(state)
        for key in deletes:
            del store[key]
        store.update({k: v.model_dump_json() for k, v in upserts.items()})
        state = new
        counts.append(bucket_count_of(state))
        if i % 97 == 0 or counts[-1] != counts[-2 if i else -1]:
            assert store == {k: v.model_dump_json() for k, v in dump_state(state).items()}
    assert sorted(set(counts)) == [1, 2, 4, 8, 16, 32, 64]
    assert counts.index(2) == 32 and counts.index(64) == 1024  # the 33rd and the 1025th item
    meta = ListMeta.model_validate_json(store[META_KEY])
    assert meta.bucket_count == 64 and len(item_keys(meta)) == 64
    loaded = load(meta, [ItemBucket.model_validate_json(store[k]) for k in item_keys(meta)])
    assert loaded == state and bucket_count_of(loaded) == 64


def test_a_list_stored_before_the_count_keeps_its_64_buckets() -> None:
    saved = dump_state(a_list(3), 64)
    legacy = {k: v.model_dump(mode="json") for k, v in saved.items()}
    del legacy[META_KEY]["bucket_count"]
    state = load(legacy[META_KEY], [legacy[k] for k in item_keys(legacy[META_KEY])])
    assert bucket_count_of(state) == 64
    out = add_todo(state, AddTodo(title="more"), T0, "a")
    upserts, deletes = state_changes(state, out.state)
    assert set(upserts) == {META_KEY, "items:03"} and deletes == frozenset()
    meta = upserts[META_KEY]
    assert isinstance(meta, ListMeta) and meta.bucket_count == 64
