"""Membership as pure transitions: sharing, roles, handover (always one owner), leaving, the role each
change needs, and the member set stamped on the list's events."""

from __future__ import annotations

import datetime as dt

import pytest

from todo_actors.commands import (
    AddMember,
    AddTodo,
    CompleteTodo,
    CreateList,
    DeleteList,
    RemoveMember,
    SetMemberRole,
    UpdateList,
)
from todo_actors.errors import Forbidden, InvalidInput, LimitExceeded, NotFound, VersionConflict
from todo_actors.events import MemberEvent, TaskEvent
from todo_actors.layout import META_KEY, dump_state, load, state_changes
from todo_actors.members import add_member, remove_member, set_member_role
from todo_actors.model import MAX_MEMBERS, TodoList
from todo_actors.notifications import reminder_fired
from todo_actors.transitions import add_todo, complete_todo, create_list, delete_list, update_list

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def shared() -> TodoList:
    """ann's list, shared with bob (editor) and cy (viewer), with one item."""
    state = create_list(None, CreateList(owner="ann", title="home"), "home", T0).state
    state = add_member(state, AddMember(caller="ann", user="bob", role="editor"), T0).state
    state = add_member(state, AddMember(caller="ann", user="cy", role="viewer"), T0).state
    return add_todo(state, AddTodo(caller="ann", title="milk"), T0, "i0").state


def test_sharing_is_idempotent_and_changes_roles_only_by_patch() -> None:
    state = shared()
    assert (state.members, state.version) == ({"bob": "editor", "cy": "viewer"}, 4)
    again = add_member(state, AddMember(caller="ann", user="cy", role="viewer"), T0)
    assert again.state is state and not again.changed and again.events == ()
    with pytest.raises(InvalidInput):
        add_member(state, AddMember(caller="ann", user="cy", role="editor"), T0)
    with pytest.raises(InvalidInput):
        add_member(state, AddMember(caller="ann", user="ann", role="viewer"), T0)
    with pytest.raises(VersionConflict):
        add_member(state, AddMember(caller="ann", user="dee", role="viewer", expected_version=3), T0)


def test_a_list_has_at_most_max_members() -> None:
    state = shared()
    for n in range(MAX_MEMBERS - 2):
        state = add_member(state, AddMember(caller="ann", user=f"u{n}", role="viewer"), T0).state
    with pytest.raises(LimitExceeded):
        add_member(state, AddMember(caller="ann", user="one-more", role="viewer"), T0)


@pytest.mark.parametrize(
    ("caller", "error"),
    [("bob", Forbidden), ("cy", Forbidden), ("stranger", NotFound)],
)
def test_only_the_owner_changes_the_list_and_its_members(caller: str, error: type[Exception]) -> None:
    state = shared()
    with pytest.raises(error):
        update_list(state, UpdateList(caller=caller, title="mine"), T0)
    with pytest.raises(error):
        delete_list(state, DeleteList(caller=caller), T0)
    with pytest.raises(error):
        add_member(state, AddMember(caller=caller, user="dee", role="viewer"), T0)
    with pytest.raises(error):
        set_member_role(state, SetMemberRole(caller=caller, user="cy", role="editor"), T0)


def test_editors_change_items_viewers_do_not() -> None:
    state = shared()
    done = complete_todo(state, CompleteTodo(caller="bob", id="i0"), T0)
    assert done.item is not None and done.item.status == "completed"
    with pytest.raises(Forbidden) as refused:
        add_todo(state, AddTodo(caller="cy", title="eggs"), T0, "i1")
    assert refused.value.details == {"role": "viewer", "needed": "editor"}
    with pytest.raises(NotFound):
        add_todo(state, AddTodo(caller="stranger", title="eggs"), T0, "i1")


def test_handover_keeps_exactly_one_owner() -> None:
    state = shared()
    out = set_member_role(state, SetMemberRole(caller="ann", user="bob", role="owner"), T0)
    new = out.state
    assert (new.owner, new.members) == ("bob", {"ann": "editor", "cy": "viewer"})
    (event,) = out.events
    assert isinstance(event, MemberEvent)
    assert (event.type, event.user, event.role, event.owner) == ("member.updated", "bob", "owner", "bob")
    assert event.members == ("ann", "cy")  # everyone hears of it, the old owner included
    # The old owner is an editor now; the owner keeps the role until they hand over in turn.
    with pytest.raises(Forbidden):
        update_list(new, UpdateList(caller="ann", title="x"), T0)
    with pytest.raises(InvalidInput):
        set_member_role(new, SetMemberRole(caller="bob", user="bob", role="editor"), T0)
    assert not set_member_role(new, SetMemberRole(caller="bob", user="bob", role="owner"), T0).changed
    # The old owner's retry of the handover answers as the handover did (nothing changes again).
    again = SetMemberRole(caller="ann", user="bob", role="owner", expected_version=4)  # its If-Match too
    retry = set_member_role(new, again, T0)
    assert retry.state is new and not retry.changed
    with pytest.raises(NotFound):
        set_member_role(new, SetMemberRole(caller="stranger", user="bob", role="owner"), T0)
    with pytest.raises(NotFound):
        set_member_role(new, SetMemberRole(caller="bob", user="dee", role="viewer"), T0)


def test_members_leave_the_owner_cannot() -> None:
    state = shared()
    left = remove_member(state, RemoveMember(caller="cy", user="cy"), T0)
    assert left.state.members == {"bob": "editor"}
    (event,) = left.events
    assert isinstance(event, MemberEvent)
    assert (event.type, event.user, event.role, event.members) == (
        "member.removed",
        "cy",
        None,
        ("bob", "cy"),
    )
    with pytest.raises(InvalidInput):
        remove_member(state, RemoveMember(caller="ann", user="ann"), T0)
    with pytest.raises(Forbidden):  # a member removes only themself
        remove_member(state, RemoveMember(caller="bob", user="cy"), T0)
    with pytest.raises(NotFound):
        remove_member(left.state, RemoveMember(caller="cy", user="cy"), T0)


def test_events_carry_the_member_set_of_their_change() -> None:
    state = shared()
    out = add_todo(state, AddTodo(caller="bob", title="eggs"), T0, "i1")
    (event,) = out.events
    assert isinstance(event, TaskEvent) and (event.owner, event.members) == ("ann", ("bob", "cy"))
    removed = remove_member(out.state, RemoveMember(caller="ann", user="cy"), T0).state
    (after,) = add_todo(removed, AddTodo(caller="bob", title="tea"), T0, "i2").events
    assert isinstance(after, TaskEvent) and after.members == ("bob",)
    assert reminder_fired(removed, removed.items["i0"], "due", T0).members == ("bob",)
    assert delete_list(removed, DeleteList(caller="ann"), T0).events[0].members == ("bob",)


def test_members_are_saved_with_the_list() -> None:
    state = shared()
    upserts, _ = state_changes(state, remove_member(state, RemoveMember(caller="cy", user="cy"), T0).state)
    assert set(upserts) == {META_KEY}  # a membership change rewrites the list's meta only
    stored = dump_state(state)
    assert load(stored[META_KEY], [v for k, v in stored.items() if k != META_KEY]) == state
    assert state.summary("cy").role == "viewer" and state.summary("stranger").role is None
