"""Domain events a list emits when an item changes, with ids that make redelivery harmless.

The id is derived from (list, item, item creation, item version, type), so publishing the same change
twice (a retried actor turn, an outbox replay) yields the same event id and subscribers drop the copy.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict

from todo_actors.due import UtcDatetime
from todo_actors.model import Role, TodoItem, TodoList

__all__ = [
    "EventType",
    "ListEvent",
    "MemberEvent",
    "MemberEventType",
    "TaskEvent",
    "member_event",
    "task_event",
]

EventType = Literal["created", "updated", "completed", "reopened", "deleted"]
MemberEventType = Literal["member.added", "member.updated", "member.removed"]

_EVENT_NAMESPACE = uuid.UUID("5b0d3f9c-6a53-4f0e-9a55-3c0f1f0a7e21")


class TaskEvent(BaseModel):
    """An item was created, updated, completed, reopened or deleted (`item` is the snapshot after).

    `owner` is the list's owner and `members` its other members when the change happened, so subscribers
    route the event to every user who could read the list at that moment without asking the list.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    type: EventType
    list_id: str
    owner: str
    members: tuple[str, ...] = ()
    item_id: str
    item: TodoItem
    list_version: int
    at: UtcDatetime


class MemberEvent(BaseModel):
    """A list's membership changed: `user` was added, got `role`, or was removed (`role` None).

    `owner` and `members` are the recipients as for `TaskEvent`, the removed user included, so their
    clients learn at once that the list is gone for them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    type: MemberEventType
    list_id: str
    owner: str
    members: tuple[str, ...]
    user: str
    role: Role | None
    list_version: int
    at: UtcDatetime


ListEvent = TaskEvent | MemberEvent
"""Anything a list publishes on the task-events topic."""


def member_event(
    type: MemberEventType,
    state: TodoList,
    user: str,
    role: Role | None,
    list_version: int,
    at: dt.datetime,
    *,
    recipients: tuple[str, ...],
) -> MemberEvent:
    """Build a membership event; the list version is unique per change, so its id is too."""
    key = f"{state.id}/{state.created_at.isoformat()}/{list_version}/{type}/{user}"
    return MemberEvent(
        id=str(uuid.uuid5(_EVENT_NAMESPACE, key)),
        type=type,
        list_id=state.id,
        owner=state.owner,
        members=recipients,
        user=user,
        role=role,
        list_version=list_version,
        at=at,
    )


def task_event(
    type: EventType,
    list_id: str,
    owner: str,
    item: TodoItem,
    list_version: int,
    at: dt.datetime,
    members: tuple[str, ...] = (),
) -> TaskEvent:
    """Build an event; for "deleted", `item` is the last snapshot before deletion."""
    # Each change bumps the item's version and a deletion happens once, so the key is unique per
    # change; created_at tells apart an item re-created under a reused id.
    key = f"{list_id}/{item.id}/{item.created_at.isoformat()}/{item.version}/{type}"
    return TaskEvent(
        id=str(uuid.uuid5(_EVENT_NAMESPACE, key)),
        type=type,
        list_id=list_id,
        owner=owner,
        members=members,
        item_id=item.id,
        item=item,
        list_version=list_version,
        at=at,
    )
