"""What every transition of a list shares: the guard it passes first (the caller's role, the If-Match
version) and the `Outcome` it returns, plus `apply_many` folding several into one save. Item, list and
member transitions all build on this; it knows none of them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from todo_actors.errors import Forbidden, NotFound, TodoError, VersionConflict
from todo_actors.events import ListEvent, TaskEvent
from todo_actors.model import Role, TodoItem, TodoList
from todo_actors.reminders import NO_REMINDER_CHANGES, ReminderChanges

__all__ = [
    "Deletion",
    "Many",
    "Outcome",
    "Transition",
    "apply_many",
    "check_list_version",
    "check_version",
    "require",
]


@dataclass(frozen=True)
class Outcome:
    """Result of a transition. `changed` is False for a no-op (nothing to save, no events)."""

    state: TodoList
    item: TodoItem | None = None
    events: tuple[ListEvent, ...] = ()
    reminders: ReminderChanges = NO_REMINDER_CHANGES
    changed: bool = True


@dataclass(frozen=True)
class Deletion:
    """Result of deleting a whole list: what to publish and which reminders to remove."""

    events: tuple[TaskEvent, ...]
    reminders: ReminderChanges


Transition = Callable[[TodoList | None, dt.datetime], Outcome]
"""One change bound to its command: (state, now) -> outcome, raising a `TodoError` when invalid."""


@dataclass(frozen=True)
class Many:
    """Result of `apply_many`: the state after every change that succeeded, their effects in order, and
    per change its `Outcome` or the `TodoError` that refused it."""

    state: TodoList | None
    results: tuple[Outcome | TodoError, ...]
    events: tuple[ListEvent, ...] = ()
    reminders: ReminderChanges = NO_REMINDER_CHANGES
    changed: bool = False


def apply_many(state: TodoList | None, changes: Sequence[Transition], now: dt.datetime) -> Many:
    """Apply `changes` in order, each to the state the previous ones left. Each stands on its own (as
    Todoist's batched commands do): one that fails changes nothing and the next ones still apply, so
    the caller saves `state_changes(state, many.state)` with all the effects once."""
    current = state
    results: list[Outcome | TodoError] = []
    events: list[ListEvent] = []
    reminders, changed = NO_REMINDER_CHANGES, False
    for change in changes:
        try:
            outcome = change(current, now)
        except TodoError as exc:
            results.append(exc)
            continue
        results.append(outcome)
        if outcome.changed:
            current, changed = outcome.state, True
            events.extend(outcome.events)
            reminders = reminders.then(outcome.reminders)
    return Many(current, tuple(results), tuple(events), reminders, changed)


_RANK: dict[Role, int] = {"viewer": 0, "editor": 1, "owner": 2}


def require(state: TodoList | None, caller: str | None, need: Role) -> TodoList:
    """The list if `caller` (None: the engine itself) has at least the role `need` on it.

    A stranger's list answers exactly like a missing one (NotFound), so ids cannot be probed; a member
    whose role is too low gets Forbidden."""
    if state is None:
        raise NotFound("no such list")
    if caller is None:
        return state
    role = state.role_of(caller)
    if role is None:
        raise NotFound("no such list")
    if _RANK[role] < _RANK[need]:
        raise Forbidden(
            f"this needs the role {need!r} on the list; yours is {role!r}", role=role, needed=need
        )
    return state


def check_list_version(state: TodoList, expected: int | None) -> None:
    """`expected` (If-Match) against the list's version: a membership change is a change of the list."""
    check_version("list", expected, state.version)


def check_version(what: str, expected: int | None, actual: int) -> None:
    """`expected` (If-Match) against `actual`, the version of the list or item that `what` names."""
    if expected is not None and expected != actual:
        raise VersionConflict(
            f"the {what} is at version {actual}, not {expected}", expected=expected, actual=actual
        )
