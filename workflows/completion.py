"""How the rest of the app reaches a running series: control events raised on its workflow instance.

Completing an occurrence's item must reach its series (anchor=completion computes the next occurrence
from it): whoever sees the item's `completed` task event calls `raise_completed` (the app channel's
`task-events` handler, with `completion_of(event_data)`). Raising twice is harmless: the workflow applies
a completion once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import grpc
from dapr.ext.workflow.aio import DaprWorkflowClient
from pydantic import ValidationError

from workflows.models import AnyControl, OccurrenceCompleted, dump, utc
from workflows.runtime import series_instance_id
from workflows.series import CONTROL_EVENT

__all__ = ["completion_of", "forward_completion", "raise_completed", "raise_control"]

log = logging.getLogger("workflows.completion")


async def raise_control(client: DaprWorkflowClient, series_id: str, control: AnyControl) -> bool:
    """Deliver a control event to the series' workflow; False if the instance does not exist (purged)."""
    try:
        await client.raise_workflow_event(series_instance_id(series_id), CONTROL_EVENT, data=dump(control))
    except grpc.aio.AioRpcError as exc:
        if "no such instance" in (exc.details() or "") or exc.code() == grpc.StatusCode.NOT_FOUND:
            log.info("series %s: no workflow instance; %s event dropped", series_id, control.kind)
            return False
        raise
    return True


async def raise_completed(
    client: DaprWorkflowClient,
    series_id: str,
    occurrence: int,
    completed_at: datetime,
    *,
    list_id: str,
    item_id: str | None = None,
) -> bool:
    """Tell series `series_id` that occurrence `occurrence`'s item (in `list_id`) was completed."""
    event = OccurrenceCompleted(
        index=occurrence, completed_at=utc(completed_at), list_id=list_id, item_id=item_id
    )
    return await raise_control(client, series_id, event)


def completion_of(data: Mapping[str, Any]) -> tuple[str, OccurrenceCompleted] | None:
    """The series and occurrence completion a `task-events` payload (`TaskEvent` JSON) reports, if any:
    a `completed` event of an item that a series made. None for every other event."""
    if data.get("type") != "completed":
        return None
    item = data.get("item")
    if not isinstance(item, Mapping):
        return None
    series_id, index = item.get("series_id"), item.get("occurrence")
    if not isinstance(series_id, str) or index is None:
        return None
    try:
        event = OccurrenceCompleted.model_validate(
            {
                "index": index,
                "completed_at": item.get("completed_at") or data.get("at"),
                "list_id": data.get("list_id"),
                "item_id": item.get("id"),
            }
        )
    except ValidationError:
        log.warning("ignoring a malformed completion event for series %r", series_id)
        return None
    return series_id, event


async def forward_completion(client: DaprWorkflowClient, data: Mapping[str, Any]) -> bool:
    """If the task event `data` completes an occurrence, tell its series; True if an event was raised.

    Meant for the app channel's `task-events` subscriber (pub/sub redelivery is harmless)."""
    found = completion_of(data)
    if found is None:
        return False
    series_id, event = found
    return await raise_control(client, series_id, event)
