"""`SeriesService`: what the REST layer calls to create, read and control series.

A series is a record in the state store (definition, owner, progress) plus one workflow instance
(`series-<id>`); reads live in `SeriesReads`, this adds creating it and controlling its instance. A series
follows its list's roles: members read it, editors make and control it; a stranger's series is `NotFound`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from datetime import datetime
from typing import Final

import grpc
from dapr.ext.workflow import WorkflowState, WorkflowStatus
from pydantic import ValidationError

from todo_actors.errors import InvalidInput, NotFound
from todo_actors.interface import GetList
from workflows import cycle
from workflows.completion import raise_control
from workflows.errors import SeriesConflict
from workflows.models import (
    AnyControl,
    EditSeries,
    EndReason,
    EndSeries,
    PauseSeries,
    ResumeSeries,
    SeriesProgress,
    SeriesState,
    SkipNext,
    dump,
)
from workflows.presenting import series_status, series_view, workflow_input
from workflows.records import OwnedSeries, SeriesRecord
from workflows.recurrence import Schedule, occurrence_after
from workflows.rrule_parse import InvalidRule, parse_rule
from workflows.runtime import FINISHED, series_instance_id
from workflows.series import SERIES_WORKFLOW
from workflows.series_reads import SeriesReads
from workflows.views import Series, SeriesPatch, SeriesSpec

__all__ = ["SeriesService"]

log = logging.getLogger("workflows.series_client")

_SETTLE_SECONDS: Final = 5.0


class SeriesService(SeriesReads):
    """Series operations for the API. `clock` is the service's only source of "now"; `list_actor` gives
    the list proxy used to check that a new series' list belongs to its owner."""

    # create --------------------------------------------------------------------------------------

    async def create(self, owner: str, spec: SeriesSpec, *, series_id: str | None = None) -> Series:
        """Validate, record and start a series; `series_id` (say, derived from an Idempotency-Key) makes
        a retried create return the same series instead of a second one."""
        now = self.now()
        schedule = self._schedule(spec.rule, spec.dtstart, spec.tz, spec.exdates, spec.anchor, spec.catch_up)
        if occurrence_after(schedule, now) is None:
            raise InvalidInput.at("rule", "the rule has no occurrence after now (COUNT or UNTIL has passed)")
        (await self._list_actor(spec.list_id).get_list(GetList(caller=owner, at_least="editor"))).unwrap()
        series_id = series_id or uuid.uuid4().hex
        record = SeriesRecord(
            id=series_id,
            owner=owner,
            list_id=spec.list_id,
            instance_id=series_instance_id(series_id),
            template=spec.template,
            rule=schedule.rule,
            dtstart=schedule.dtstart,
            tz=schedule.tz,
            exdates=schedule.exdates,
            anchor=schedule.anchor,
            catch_up=schedule.catch_up,
            grace_seconds=int(self.settings.catch_up_grace.total_seconds()),
            created_at=now,
            updated_at=now,
        )
        # Index first (it enforces the per-user limit); an index entry without a record is skipped.
        await self.store.add_owned(
            owner, OwnedSeries(id=series_id, created_at=now), self.settings.series_per_owner
        )
        await self.store.add_to_list(spec.list_id, series_id)
        stored = await self.store.insert(record)
        if stored.owner != owner:
            raise NotFound("no such series")
        if stored is not record:  # a retried create: start only what never started
            existing = await self.workflows.get_workflow_state(stored.instance_id, fetch_payloads=False)
            if existing is not None or stored.generation >= 0 or stored.cancelled_at is not None:
                return await self.get(owner, series_id)
        await self._start(stored)
        workflow = await self.workflows.get_workflow_state(stored.instance_id, fetch_payloads=True)
        return series_view(stored, workflow, self._upcoming(None))

    async def _start(self, record: SeriesRecord) -> None:
        schedule = self._schedule_of(record)
        state = SeriesState(
            series_id=record.id,
            owner=record.owner,
            list_id=record.list_id,
            template=record.template,
            definition=schedule,
            schedule=schedule,
            cursor_at=record.created_at,
            live_since=record.created_at,
            grace_seconds=record.grace_seconds,
        )
        try:
            await self.workflows.schedule_new_workflow(
                SERIES_WORKFLOW, input=dump(state), instance_id=record.instance_id
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.ALREADY_EXISTS:
                raise
        else:
            if self._on_started is not None:
                self._on_started(SERIES_WORKFLOW)
        log.info(
            "series %s of %s started (%s from %s %s)",
            record.id,
            record.owner,
            record.rule,
            record.dtstart.isoformat(),
            record.tz,
        )

    # controls ------------------------------------------------------------------------------------

    async def edit(self, owner: str, series_id: str, patch: SeriesPatch) -> Series:
        """Change the rule and/or template from the next occurrence on (applied by the workflow)."""
        if patch.rule is None and patch.template is None:
            raise InvalidInput("nothing to change: give 'rule' and/or 'template'")
        record = await self.owned(owner, series_id, "editor")
        await self._live(record, "edited")
        if patch.template is not None:
            try:
                patch.template.apply(record.template)  # refused here, not silently by the workflow
            except ValidationError as exc:
                raise InvalidInput.from_validation_error(exc) from None
        rule = record.rule
        if patch.rule is not None:
            schedule = self._schedule(
                patch.rule, record.dtstart, record.tz, record.exdates, record.anchor, record.catch_up
            )
            if record.anchor == "schedule" and occurrence_after(_unbounded(schedule), self.now()) is None:
                raise InvalidInput.at("rule", "the rule has no occurrence after now")
            rule = schedule.rule
        edit = EditSeries(rule=None if patch.rule is None else rule, template=patch.template)
        await self._apply(record, edit)
        return await self.get(owner, series_id)

    async def pause(self, owner: str, series_id: str) -> Series:
        """Pause: no occurrence that comes due while paused is ever created, whatever the catch-up policy.

        The workflow first applies a pause control (it then waits for a control only: no timer armed),
        then the instance is suspended. Suspending alone would not do: a suspended workflow's timer still
        fires, and on resume the workflow could not tell the pause from an outage."""
        record = await self.owned(owner, series_id, "editor")
        workflow = await self._live(record, "paused")
        state = workflow_input(workflow)
        if state is None or state.paused_at is None:
            await self._apply(record, PauseSeries(at=self.now()), suspend_after=True)
        elif workflow.runtime_status != WorkflowStatus.SUSPENDED:  # applied, but not yet suspended
            await self._suspend(record)
        return await self.get(owner, series_id)

    async def resume(self, owner: str, series_id: str) -> Series:
        """Resume: what came due while paused is dropped; the next occurrence is the first after now."""
        record = await self.owned(owner, series_id, "editor")
        workflow = await self._live(record, "resumed")
        if workflow.runtime_status == WorkflowStatus.SUSPENDED:  # suspended through the engine itself
            await self.workflows.resume_workflow(record.instance_id)
            await self._settle(record.instance_id, {WorkflowStatus.RUNNING, WorkflowStatus.COMPLETED})
        state = workflow_input(workflow)
        if state is not None and state.paused_at is not None:
            await self._apply(record, ResumeSeries(at=self.now()))
        return await self.get(owner, series_id)

    async def skip_next(self, owner: str, series_id: str) -> Series:
        """Skip the next occurrence (it is logged as skipped and never created)."""
        record = await self.owned(owner, series_id, "editor")
        workflow = await self._live(record, "skipped")
        state = workflow_input(workflow)
        if state is None:
            raise SeriesConflict("the series is starting; try again")
        if series_status(record, workflow) == "paused":
            raise SeriesConflict("the series is paused; its next occurrence is known once it is resumed")
        if state.awaiting is not None:
            raise SeriesConflict(
                f"the series waits for occurrence {state.awaiting} to be completed; nothing to skip"
            )
        progress = SeriesProgress.parse(workflow.serialized_custom_status)
        if progress is not None and progress.generation == state.generation:
            if progress.phase != "waiting" or progress.next_index is None:
                raise SeriesConflict("the series is creating an occurrence right now; try again")
            index = progress.next_index
        else:  # the generation just started: its next occurrence follows from its input
            upcoming = cycle.upcoming(state, 1)
            if not upcoming:
                raise SeriesConflict("the series has no next occurrence to skip")
            index = upcoming[0].index
        await self._apply(record, SkipNext(index=index))
        return await self.get(owner, series_id)

    async def cancel(self, owner: str, series_id: str, *, reason: EndReason = "cancelled") -> Series:
        """Terminate the workflow; items already created stay in the list. `reason` is `terminated` when
        the user terminated the workflow through `/v1/workflows`."""
        record = await self.owned(owner, series_id, "editor")
        workflow = await self.workflows.get_workflow_state(record.instance_id, fetch_payloads=False)
        status = series_status(record, workflow)
        if status == "cancelled":
            return await self.get(owner, series_id)
        if status in ("completed", "failed"):
            raise SeriesConflict(f"the series is {status}; there is nothing to cancel")
        await self.workflows.terminate_workflow(record.instance_id, output={reason: True})
        await self._settle(record.instance_id, {WorkflowStatus.TERMINATED, WorkflowStatus.COMPLETED})
        now = self.now()
        await self.store.update(
            series_id,
            lambda r: r.model_copy(
                update={
                    "cancelled_at": now,
                    "ended": r.ended or reason,
                    "ended_at": r.ended_at or now,
                    "updated_at": max(r.updated_at, now),
                }
            ),
        )
        return await self.get(owner, series_id)

    async def end_for_list(self, list_id: str) -> int:
        """End every live series made on list `list_id` (it was just deleted), each with the reason
        `list_deleted`; returns how many were ended."""
        records = await asyncio.gather(*(self.store.get(s) for s in await self.store.of_list(list_id)))
        ended = await asyncio.gather(*(self._end_deleted(r) for r in records if r and r.list_id == list_id))
        return sum(ended)

    async def _end_deleted(self, record: SeriesRecord) -> bool:
        workflow = await self.workflows.get_workflow_state(record.instance_id, fetch_payloads=False)
        if workflow is None or workflow.runtime_status in FINISHED:
            return False
        await self._apply(record, EndSeries(reason="list_deleted", at=self.now()))
        log.info("series %s ended: its list %s was deleted", record.id, record.list_id)
        return True

    # helpers -------------------------------------------------------------------------------------

    async def _live(self, record: SeriesRecord, verb: str) -> WorkflowState:
        workflow = await self.workflows.get_workflow_state(record.instance_id, fetch_payloads=True)
        status = series_status(record, workflow)
        if workflow is None or status not in ("running", "paused"):
            raise SeriesConflict(f"the series is {status}; it cannot be {verb}")
        return workflow

    async def _settle(self, instance_id: str, wanted: set[WorkflowStatus]) -> None:
        """Wait (briefly) until the engine has applied a suspend/resume/terminate."""
        deadline = time.monotonic() + _SETTLE_SECONDS
        while time.monotonic() < deadline:
            state = await self.workflows.get_workflow_state(instance_id, fetch_payloads=False)
            if state is None or state.runtime_status in wanted:
                return
            await asyncio.sleep(0.02)
        log.warning("workflow %s did not reach %s within %.0f s", instance_id, wanted, _SETTLE_SECONDS)

    async def _suspend(self, record: SeriesRecord) -> None:
        await self.workflows.pause_workflow(record.instance_id)
        await self._settle(record.instance_id, {WorkflowStatus.SUSPENDED})

    async def _apply(self, record: SeriesRecord, control: AnyControl, *, suspend_after: bool = False) -> None:
        """Raise `control` and wait (bounded) until the workflow has applied it and is parked again (its
        custom status names the control), so the caller answers with the state after the change.

        A suspended instance (a paused series) applies nothing: it is resumed for the control - harmless,
        as a paused series has no timer armed - and suspended again after it (as with `suspend_after`),
        unless the control ended it."""
        workflow = await self.workflows.get_workflow_state(record.instance_id, fetch_payloads=False)
        if workflow is not None and workflow.runtime_status == WorkflowStatus.SUSPENDED:
            suspend_after = True
            await self.workflows.resume_workflow(record.instance_id)
        control = control.model_copy(update={"id": uuid.uuid4().hex})
        if await raise_control(self.workflows, record.id, control):
            await self._applied(record, control)
        if suspend_after:
            workflow = await self.workflows.get_workflow_state(record.instance_id, fetch_payloads=False)
            if workflow is not None and workflow.runtime_status not in FINISHED:
                await self._suspend(record)

    async def _applied(self, record: SeriesRecord, control: AnyControl) -> None:
        deadline = time.monotonic() + _SETTLE_SECONDS
        while time.monotonic() < deadline:
            workflow = await self.workflows.get_workflow_state(record.instance_id, fetch_payloads=True)
            if workflow is None or workflow.runtime_status in FINISHED:
                return
            state = workflow_input(workflow)
            progress = SeriesProgress.parse(workflow.serialized_custom_status)
            if (
                state is not None
                and progress is not None
                and progress.generation == state.generation
                and progress.applied == control.id
                and progress.phase != "creating"
            ):
                return
            await asyncio.sleep(0.02)
        log.warning(
            "series %s: %s not applied within %.0f s; answering with the state so far",
            record.id,
            control.kind,
            _SETTLE_SECONDS,
        )

    def _schedule(
        self,
        rule: str,
        dtstart: datetime,
        tz: str,
        exdates: object,
        anchor: str,
        catch_up: str,
    ) -> Schedule:
        try:
            parse_rule(rule, min_interval=self.settings.min_interval)
        except InvalidRule as exc:
            raise InvalidInput(str(exc), errors=[{"loc": ["body", "rule"], "msg": str(exc)}]) from None
        try:
            return Schedule.model_validate(
                {
                    "rule": rule,
                    "dtstart": dtstart,
                    "tz": tz,
                    "exdates": exdates,
                    "anchor": anchor,
                    "catch_up": catch_up,
                }
            )
        except ValidationError as exc:
            raise InvalidInput.from_validation_error(exc) from None

    def _schedule_of(self, record: SeriesRecord) -> Schedule:
        return Schedule(
            rule=record.rule,
            dtstart=record.dtstart,
            tz=record.tz,
            exdates=record.exdates,
            anchor=record.anchor,
            catch_up=record.catch_up,
        )


def _unbounded(schedule: Schedule) -> Schedule:
    return schedule.model_copy(update={"rule": str(dataclasses.replace(schedule.parsed_rule, count=None))})
