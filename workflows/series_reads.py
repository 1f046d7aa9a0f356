"""`SeriesReads`: what any member of a series' list may read of it; `SeriesService` adds create and controls.

A series is read from its record in the state store (definition, owner, progress) and its workflow instance:
the record for what was defined and done, the instance's input and custom status for what it is doing now.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime

from dapr.aio.clients import DaprClient
from dapr.ext.workflow.aio import DaprWorkflowClient

from todo_actors.errors import InvalidInput, NotFound
from todo_actors.interface import GetList
from todo_actors.model import Role
from workflows.activities import ListActorFactory
from workflows.config import SeriesSettings
from workflows.models import OccurrenceEntry, utc
from workflows.presenting import series_view
from workflows.records import SeriesRecord, page_of
from workflows.runtime import series_instance_id
from workflows.steps import occurrence_history
from workflows.store import SeriesStore
from workflows.views import OccurrencesPage, Series, SeriesHistory, SeriesPage, Upcoming

__all__ = ["SeriesReads"]


class SeriesReads:
    """Series reads for the API, scoped by the list's roles. `clock` is the service's only source of
    "now"; `list_actor` gives the list proxy that decides who may see a series. The constructor is
    `SeriesService`'s too (`on_started` is told of each workflow it starts)."""

    def __init__(
        self,
        workflows: DaprWorkflowClient,
        dapr: DaprClient,
        settings: SeriesSettings,
        *,
        list_actor: ListActorFactory,
        clock: Callable[[], datetime],
        on_started: Callable[[str], None] | None = None,
    ) -> None:
        self.workflows = workflows
        self.store = SeriesStore(dapr, settings.state_store)
        self.settings = settings
        self._list_actor = list_actor
        self._clock = clock
        self._on_started = on_started  # told the workflow's name per instance started (metrics)

    def now(self) -> datetime:
        return utc(self._clock())

    async def get(self, owner: str, series_id: str, *, upcoming: int | None = None) -> Series:
        # The workflow before the record: the workflow writes the record before it moves on, so a record
        # read second is never older than the state it is shown with (no "next 4, missed 0" mix).
        workflow = await self.workflows.get_workflow_state(series_instance_id(series_id), fetch_payloads=True)
        record = await self.owned(owner, series_id)
        return series_view(record, workflow, self._upcoming(upcoming))

    async def list(
        self, owner: str, *, cursor: str | None = None, limit: int | None = None, list_id: str | None = None
    ) -> SeriesPage:
        """The series `owner` made, oldest first, or (`list_id`) every series on a list they may read;
        `cursor` is the `next_cursor` of the previous page."""
        start = _position(cursor)
        limit = limit or self.settings.page_size_default
        if list_id is None:
            ids = [e.id for e in await self.store.owned(owner)]
        else:
            (await self._list_actor(list_id).get_list(GetList(caller=owner))).unwrap()
            ids = list(await self.store.of_list(list_id))
        found = await asyncio.gather(*(self._entry(owner, i) for i in ids[start : start + limit]))
        items = [s for s in found if s is not None]
        more = start + limit < len(ids)
        return SeriesPage(items=items, next_cursor=str(start + limit) if more else None)

    async def _entry(self, owner: str, series_id: str) -> Series | None:
        try:
            return await self.get(owner, series_id, upcoming=0)
        except NotFound:
            return None  # indexed, but its creation did not get as far as the record

    async def owned(self, owner: str, series_id: str, need: Role = "viewer") -> SeriesRecord:
        """The series' record if `owner` has at least the role `need` on its list (Forbidden for a member
        below it); NotFound otherwise, also for a stranger's. Its creator keeps it once the list is gone,
        to read how it ended."""
        record = await self.store.get(series_id)
        if record is None:
            raise NotFound("no such series")
        lists = self._list_actor(record.list_id)
        try:
            (await lists.get_list(GetList(caller=owner, at_least=need))).unwrap()
        except NotFound:
            if record.owner != owner or (await lists.get_list(GetList())).error is None:
                raise NotFound("no such series") from None
        return record

    async def occurrences(
        self,
        owner: str,
        series_id: str,
        *,
        cursor: str | None = None,
        limit: int = 100,
        upcoming: int | None = None,
    ) -> OccurrencesPage:
        """Logged occurrences from index `cursor` on (oldest first); the first page adds upcoming ones."""
        record = await self.owned(owner, series_id)
        items, next_cursor = await self._log(record, cursor, limit)
        next_upcoming: list[Upcoming] = []
        if cursor is None:
            workflow = await self.workflows.get_workflow_state(record.instance_id, fetch_payloads=True)
            next_upcoming = series_view(record, workflow, self._upcoming(upcoming)).upcoming
        return OccurrencesPage(items=list(items), next_cursor=next_cursor, upcoming=next_upcoming)

    async def history(
        self, owner: str, series_id: str, *, cursor: str | None = None, limit: int = 100
    ) -> SeriesHistory:
        """The workflow steps of each occurrence (timer, notify, recreate, skip, completion), across all
        the workflow's runs: recorded by the activities, since the engine keeps only the current run."""
        record = await self.owned(owner, series_id)
        items, next_cursor = await self._log(record, cursor, limit)
        return SeriesHistory(
            series_id=record.id, items=[occurrence_history(e) for e in items], next_cursor=next_cursor
        )

    async def _log(
        self, record: SeriesRecord, cursor: str | None, limit: int
    ) -> tuple[Sequence[OccurrenceEntry], str | None]:
        """Logged occurrences from index `cursor` on (oldest first), at most `limit`, and the next cursor."""
        start = _position(cursor)
        pages = [p for p in record.pages if p >= page_of(start)]
        items: list[OccurrenceEntry] = []
        while pages and len(items) <= limit:
            chunk, pages = pages[:10], pages[10:]
            items += [e for e in await self.store.occurrences(record, chunk) if e.index >= start]
        more = len(items) > limit
        items = items[:limit]
        return items, str(items[-1].index + 1) if more else None

    def _upcoming(self, n: int | None) -> int:
        n = self.settings.upcoming_default if n is None else n
        if not 0 <= n <= self.settings.upcoming_max:
            raise InvalidInput.at("upcoming", f"must be between 0 and {self.settings.upcoming_max}")
        return n


def _position(cursor: str | None) -> int:
    if cursor is None:
        return 0
    if not cursor.isdigit() or len(cursor) > 12:
        raise InvalidInput.at("cursor", "not a cursor this API returned")
    return int(cursor)
