"""The owner index actor: a user's lists, idempotent add/remove, cursor pages, the per-user limit, and a
bucketed layout where one change rewrites one small bucket."""

from __future__ import annotations

import datetime as dt

from tests.todo_actors.actors.conftest import OWNER_LIMIT, Stack, new_id
from todo_actors.interface import OWNER_ACTOR_TYPE, ListChange, OwnerLists, PageRequest
from todo_actors.owner import OWNER_BUCKETS, owner_bucket_key

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


async def test_add_remove_and_page(stack: Stack) -> None:
    user = new_id("u")
    owner = stack.owner_proxy(user)
    versions = []
    for n in range(7):
        ack = (
            await owner.AddList(ListChange(list_id=f"list{n}", created_at=T0 + dt.timedelta(days=n)))
        ).unwrap()
        versions.append(ack.version)
    assert versions == list(range(1, 8))
    # Adding a recorded list again (a retried create) changes nothing.
    assert (await owner.AddList(ListChange(list_id="list3"))).unwrap().version == 7

    pages: list[list[str]] = []
    cursor = None
    while True:
        page: OwnerLists = (await owner.Lists(PageRequest(limit=3, cursor=cursor))).unwrap()
        pages.append([e.list_id for e in page.lists])
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == [["list0", "list1", "list2"], ["list3", "list4", "list5"], ["list6"]]

    assert (await owner.RemoveList(ListChange(list_id="list1"))).unwrap().version == 8
    assert (await owner.RemoveList(ListChange(list_id="list1"))).unwrap().version == 8  # already gone
    stack.deactivate(OWNER_ACTOR_TYPE, user)
    listed = (await owner.Lists(PageRequest())).unwrap()
    assert [e.list_id for e in listed.lists] == ["list0", "list2", "list3", "list4", "list5", "list6"]
    assert listed.lists[0].created_at == T0 and listed.next_cursor is None

    bad = await owner.Lists(PageRequest(cursor="bm90IGEgY3Vyc29y"))
    assert bad.error is not None and bad.error.kind == "invalid_input"


async def test_a_user_owns_a_bounded_number_of_lists(stack: Stack) -> None:
    user = new_id("u")
    owner = stack.owner_proxy(user)
    for n in range(OWNER_LIMIT):
        (await owner.AddList(ListChange(list_id=f"l{n}"))).unwrap()
    over = await owner.AddList(ListChange(list_id="one-too-many"))
    assert over.error is not None and over.error.kind == "limit_exceeded"
    assert over.error.details == {"limit": "lists_per_owner", "max": OWNER_LIMIT}
    (await owner.RemoveList(ListChange(list_id="l0"))).unwrap()
    (await owner.AddList(ListChange(list_id="one-too-many"))).unwrap()


async def test_a_change_rewrites_one_bucket(stack: Stack) -> None:
    user = new_id("u")
    owner = stack.owner_proxy(user)
    for n in range(20):
        (await owner.AddList(ListChange(list_id=f"list{n}", created_at=T0))).unwrap()
    meta = await stack.state(user, "meta", OWNER_ACTOR_TYPE)
    buckets = {
        b: await stack.state(user, owner_bucket_key(b), OWNER_ACTOR_TYPE) for b in range(OWNER_BUCKETS)
    }
    stored = {b: v for b, v in buckets.items() if v is not None}
    assert tuple(meta["buckets"]) == tuple(sorted(stored))
    assert sum(len(v["lists"]) for v in stored.values()) == 20
    assert max(len(v["lists"]) for v in stored.values()) < 20
