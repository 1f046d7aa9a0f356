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
from todo_actors.model import TodoItem

__all__ = ["EventType", "TaskEvent", "task_event"]

EventType = Literal["created", "updated", "completed", "reopened", "deleted"]

_EVENT_NAMESPACE = uuid.UUID("5b0d3f9c-6a53-4f0e-9a55-3c0f1f0a7e21")


class TaskEvent(BaseModel):
    """An item was created, updated, completed, reopened or deleted (`item` is the snapshot after).

    `owner` is the list's owner, so subscribers route the event to a user without asking the list.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    type: EventType
    list_id: str
    owner: str
    item_id: str
    item: TodoItem
    list_version: int
    at: UtcDatetime


def task_event(
    type: EventType, list_id: str, owner: str, item: TodoItem, list_version: int, at: dt.datetime
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
        item_id=item.id,
        item=item,
        list_version=list_version,
        at=at,
    )
