"""Membership of a shared list as pure transitions, like the item ones: the role check and the change it
guards happen in one actor turn, so a member removed by one call cannot slip a change in with the next.
"""

from __future__ import annotations

import datetime as dt

from todo_actors.change import Outcome, check_list_version, require
from todo_actors.commands import AddMember, RemoveMember, SetMemberRole
from todo_actors.errors import InvalidInput, LimitExceeded, NotFound
from todo_actors.events import MemberEvent, MemberEventType, member_event
from todo_actors.model import MAX_MEMBERS, MemberRole, Role, TodoList

__all__ = ["add_member", "remove_member", "set_member_role"]


def add_member(state: TodoList | None, cmd: AddMember, now: dt.datetime) -> Outcome:
    """Share the list; adding a member again with the same role is a no-op (a retried POST)."""
    state = _owner_turn(state, cmd.caller, cmd.expected_version)
    if cmd.user == state.owner:
        raise InvalidInput.at("user", "is the list's owner")
    known = state.members.get(cmd.user)
    if known == cmd.role:
        return Outcome(state, changed=False)
    if known is not None:
        raise InvalidInput.at("user", f"is already a member ({known}); change the role with PATCH")
    if len(state.members) >= MAX_MEMBERS:
        raise LimitExceeded(
            f"a list has at most {MAX_MEMBERS} members", limit_name="members_per_list", limit=MAX_MEMBERS
        )
    members = {**state.members, cmd.user: cmd.role}
    return _changed(state, now, state.owner, members, "member.added", cmd.user, cmd.role)


def set_member_role(state: TodoList | None, cmd: SetMemberRole, now: dt.datetime) -> Outcome:
    """Change a member's role; `owner` hands the list over (the old owner becomes an editor).

    Handing the list to its owner changes nothing, for any member: a retried handover comes from the old
    owner, an editor by then, and must answer as the first did so that the API repairs both indexes."""
    if state is not None and cmd.role == "owner" and cmd.user == state.owner:
        return Outcome(require(state, cmd.caller, "viewer"), changed=False)
    state = _owner_turn(state, cmd.caller, cmd.expected_version)
    if cmd.user == state.owner:
        raise InvalidInput.at("user", "is the owner, who keeps the role 'owner' until handing the list over")
    known = state.members.get(cmd.user)
    if known is None:
        raise NotFound(f"{cmd.user!r} is not a member of this list")
    if known == cmd.role:
        return Outcome(state, changed=False)
    if cmd.role == "owner":
        members: dict[str, MemberRole] = {u: r for u, r in state.members.items() if u != cmd.user}
        members[state.owner] = "editor"
        return _changed(state, now, cmd.user, members, "member.updated", cmd.user, "owner")
    members = {**state.members, cmd.user: cmd.role}
    return _changed(state, now, state.owner, members, "member.updated", cmd.user, cmd.role)


def remove_member(state: TodoList | None, cmd: RemoveMember, now: dt.datetime) -> Outcome:
    """Remove a member, or (caller = user) leave the list; the owner cannot leave, only hand over."""
    leaving = cmd.caller is not None and cmd.caller == cmd.user
    if leaving:
        state = require(state, cmd.caller, "viewer")
        check_list_version(state, cmd.expected_version)
    else:
        state = _owner_turn(state, cmd.caller, cmd.expected_version)
    if cmd.user == state.owner:
        raise InvalidInput.at("user", "the owner cannot leave: hand the list over first")
    if cmd.user not in state.members:
        raise NotFound(f"{cmd.user!r} is not a member of this list")
    members = {u: r for u, r in state.members.items() if u != cmd.user}
    return _changed(state, now, state.owner, members, "member.removed", cmd.user, None)


def _owner_turn(state: TodoList | None, caller: str | None, expected_version: int | None) -> TodoList:
    state = require(state, caller, "owner")
    check_list_version(state, expected_version)
    return state


def _changed(
    state: TodoList,
    now: dt.datetime,
    owner: str,
    members: dict[str, MemberRole],
    type: MemberEventType,
    user: str,
    role: Role | None,
) -> Outcome:
    now = now.astimezone(dt.UTC)
    new = state.with_items({}, version=state.version + 1, updated_at=now, owner=owner, members=members)
    # Everyone who had or now has access hears of it: the removed user and, on a handover, both owners.
    recipients = tuple(sorted((set(state.members) | set(members) | {state.owner, owner}) - {owner}))
    event: MemberEvent = member_event(type, new, user, role, new.version, now, recipients=recipients)
    return Outcome(new, events=(event,))
