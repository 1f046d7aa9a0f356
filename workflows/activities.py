"""The series workflow's activities: `occurrence` (`notify`: publish `occurrence.due`, then `recreate`: add
the occurrence's item to its list) and `record` (log entries and progress), each idempotent by occurrence key.

A retried or replayed activity repeats the same publish (same CloudEvent id, so subscribers drop the copy),
the same `AddTodo` (the list returns the item made the first time) and the same merge into the log.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Callable
from typing import Final

from dapr.aio.clients import DaprClient

from todo_actors.client import ActorProxies, PooledActorClient
from todo_actors.commands import AddTodo
from todo_actors.due import Due
from todo_actors.errors import NotFound, TodoError
from todo_actors.interface import LIST_ACTOR_TYPE, TodoListActorInterface
from todo_actors.publisher import DaprPublisher, EventPublisher
from todo_actors.serializer import PydanticSerializer
from todo_actors.sidecar_http import SidecarHttp, sdk_endpoint
from workflows.config import SeriesSettings
from workflows.models import (
    NotifyInput,
    OccurrenceEntry,
    RecordInput,
    RecreateInput,
    RecreateResult,
    SeriesTemplate,
)
from workflows.store import SeriesStore

__all__ = ["OCCURRENCE_DUE", "ListActorFactory", "SeriesActivities", "list_actors", "occurrence_item"]

log = logging.getLogger("workflows.activities")

OCCURRENCE_DUE: Final = "occurrence.due"
"""CloudEvent type of the notification published when an occurrence falls due."""

ListActorFactory = Callable[[str], TodoListActorInterface]
"""Returns a proxy to the list actor with the given id."""


def list_actors(http: SidecarHttp | None = None) -> ListActorFactory:
    """Typed list actor proxies (`todo_actors.client`, as the API's) over `http`, the process's client to
    its sidecar (default: one on the sidecar the SDK is configured for, `dapr.conf.settings`)."""
    if http is None:
        endpoint, token = sdk_endpoint()
        http = SidecarHttp(endpoint, api_token=token)
    serializer = PydanticSerializer()
    proxies = ActorProxies(PooledActorClient(http, serializer), serializer)
    return functools.partial(proxies.get, TodoListActorInterface, LIST_ACTOR_TYPE)


def occurrence_item(payload: RecreateInput) -> AddTodo:
    """The `AddTodo` for an occurrence: the template, its due, and the `(series_id, occurrence)` key."""
    template: SeriesTemplate = payload.template
    due: Due | None = None
    if template.due == "occurrence":
        due = Due.model_validate({"datetime": payload.local.isoformat(), "tz": payload.tz})
    elif template.due == "all_day":
        due = Due.model_validate({"date": payload.local.date().isoformat()})
    # The engine adds occurrences itself (no caller): on a shared list the series outlives its creator's
    # membership, as the list's other items do; the role check was made when an editor created it.
    return AddTodo(
        caller=None,
        title=template.title,
        notes=template.notes,
        priority=template.priority,
        labels=template.labels,
        due=due,
        reminders=template.reminders,
        series_id=payload.series_id,
        occurrence=payload.index,
    )


class SeriesActivities:
    """The activities, bound to the clients they use (created lazily on the worker's event loop).

    `dapr_address` is the sidecar's gRPC address (default: the SDK settings); `list_actor` returns the
    list actor proxy to add items through (default: `list_actors()`, made on first use); `publisher`
    publishes `occurrence.due` (default: the actors' HTTP publisher on the sidecar of the SDK settings).
    """

    def __init__(
        self,
        settings: SeriesSettings,
        *,
        dapr_address: str | None = None,
        list_actor: ListActorFactory | None = None,
        publisher: EventPublisher | None = None,
    ) -> None:
        self.settings = settings
        self._address = dapr_address
        self._list_actor = list_actor
        self._publisher = publisher if publisher is not None else DaprPublisher()
        self._client: tuple[asyncio.AbstractEventLoop, DaprClient] | None = None

    def _dapr(self) -> DaprClient:
        # A grpc.aio channel belongs to the loop that made it; a restarted worker runs a new loop.
        loop = asyncio.get_running_loop()
        if self._client is None or self._client[0] is not loop:
            self._client = (loop, DaprClient(address=self._address))
        return self._client[1]

    def _store(self) -> SeriesStore:
        return SeriesStore(self._dapr(), self.settings.state_store)

    def _list(self, list_id: str) -> TodoListActorInterface:
        if self._list_actor is None:
            self._list_actor = list_actors()
        return self._list_actor(list_id)

    async def notify(self, payload: NotifyInput) -> None:
        """Publish `occurrence.due` on the reminders topic; the CloudEvent id is the occurrence key."""
        data = {
            "id": payload.key,
            "type": OCCURRENCE_DUE,
            "series_id": payload.series_id,
            "occurrence": payload.index,
            "owner": payload.owner,
            "list_id": payload.list_id,
            "title": payload.title,
            "at": payload.scheduled_at.isoformat(),
            "local": payload.local.isoformat(),
            "tz": payload.tz,
        }
        # Over the sidecar's HTTP publish API, as the list actors publish (a third of the CPU of gRPC's).
        await self._publisher.publish(
            self.settings.pubsub, self.settings.topic, payload.key, OCCURRENCE_DUE, json.dumps(data).encode()
        )

    async def occurrence(self, payload: RecreateInput) -> RecreateResult:
        """Notify, then recreate: a retry after a failed recreate publishes again under the same id."""
        notify = NotifyInput(
            series_id=payload.series_id,
            owner=payload.owner,
            list_id=payload.list_id,
            index=payload.index,
            key=payload.key,
            scheduled_at=payload.scheduled_at,
            local=payload.local,
            tz=payload.tz,
            title=payload.template.title,
        )
        await self.notify(notify)
        return await self.recreate(payload)

    async def recreate(self, payload: RecreateInput) -> RecreateResult:
        """Add the item (idempotent by `(series_id, occurrence)`), then log it with the snapshot."""
        created_at = None
        try:
            reply = await self._list(payload.list_id).add_todo(occurrence_item(payload))
            added = reply.unwrap()
        except NotFound:
            result = RecreateResult(outcome="list_missing", error="the list no longer exists")
        except TodoError as exc:  # a full list, say: retrying cannot help
            result = RecreateResult(outcome="failed", error=exc.message[:500])
        else:
            item = added.item
            if item is None:
                result = RecreateResult(outcome="deleted")
            else:
                result = RecreateResult(outcome="created", item_id=item.id)
                created_at = item.created_at
        entry = OccurrenceEntry(
            index=payload.index,
            key=payload.key,
            scheduled_at=payload.scheduled_at,
            local=payload.local,
            status="created" if result.outcome in ("created", "deleted") else "failed",
            notified_at=payload.notified_at,
            item_id=result.item_id,
            created_at=created_at,
            error=result.error,
            generation=payload.generation,
            timer_set_at=None if payload.timer is None else payload.timer.set_at,
            timer_fires_at=None if payload.timer is None else payload.timer.fires_at,
            timer_fired_at=None if payload.timer is None else payload.timer.fired_at,
            notify_scheduled_at=payload.notify_scheduled_at,
            outcome=result.outcome,
        )
        await self._store().log(payload.series_id, [entry], payload.snapshot, payload.notified_at)
        return result

    async def record(self, payload: RecordInput) -> None:
        """Merge log entries (skips, completions) and store the snapshot (edits, progress, the end)."""
        await self._store().log(payload.series_id, payload.entries, payload.snapshot, payload.at)

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None and client[0] is asyncio.get_running_loop():
            await client[1].close()  # type: ignore[no-untyped-call]
