"""The actor state layout: which keys a change writes, and loading back from models or plain JSON."""

from __future__ import annotations

import datetime as dt
import random

from todo_actors.commands import AddTodo, CompleteTodo, CreateList, DeleteTodo, UpdateList
from todo_actors.layout import (
    META_KEY,
    ItemBucket,
    ListMeta,
    bucket_key,
    bucket_of,
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


def test_a_completion_writes_one_bucket_and_meta() -> None:
    state = a_list(500)
    out = complete_todo(state, CompleteTodo(id="item-00001"), T0)
    upserts, deletes = state_changes(state, out.state)
    assert set(upserts) == {META_KEY, "items:57"} and deletes == frozenset()
    bucket = upserts["items:57"]
    assert isinstance(bucket, ItemBucket)
    assert bucket.items["item-00001"].status == "completed"
    assert all(bucket_of(i) == 57 for i in bucket.items)


def test_emptied_buckets_are_deleted_and_meta_tracks_them() -> None:
    state = add_todo(a_list(0), AddTodo(title="only"), T0, "a").state
    out = delete_todo(state, DeleteTodo(id="a"), T0)
    upserts, deletes = state_changes(state, out.state)
    assert deletes == {"items:03"}
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
