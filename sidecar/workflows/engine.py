"""The durable workflow engine behind `TaskHubSidecarService`: turns, activities, timers, client calls
(those in instances.py).

Every state change (a completed turn, an activity result, a fired timer, a client request) is atomic
in SQLite, and changes that arrive together share one commit (sidecar.groupcommit); only after the commit
does the engine dispatch, arm timers or wake long-polls. On start it re-queues whatever was in
flight when the previous process stopped or was killed.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any

import grpc

from sidecar.clock import Clock
from sidecar.db import Database
from sidecar.groupcommit import GroupCommit
from sidecar.scheduler import Scheduler
from sidecar.workflows import crossapp, store
from sidecar.workflows.control import WorkflowError
from sidecar.workflows.courier import Courier, Transport
from sidecar.workflows.dispatch import Dispatcher
from sidecar.workflows.history import STALLED, event, pb
from sidecar.workflows.instances import InstanceRequests
from sidecar.workflows.lifecycle import Effects, post
from sidecar.workflows.status import Waiters
from sidecar.workflows.streams import ActivityWork, HistoryTraffic, Turn, WorkerStream
from sidecar.workflows.timers import TimerBridge
from sidecar.workflows.turns import TurnInput, commit_turn, load_turn

__all__ = ["WorkflowEngine", "WorkflowError"]

log = logging.getLogger("sidecar.workflows.engine")


class WorkflowEngine(InstanceRequests):
    """Owns the workflow tables, the worker streams and the timers of one sidecar.

    `max_concurrent_workflows` / `max_concurrent_activities` bound the turns / activities in flight
    across all workers (None = unlimited). Work a worker accepted but did not answer within
    `turn_timeout` / `activity_timeout` seconds (Clock time) is dispatched again. Worker results
    are acknowledged when accepted and committed right after (daprd's behaviour); with
    `ack_after_commit` the worker is answered only after the commit. `app_id` (the sidecar's app)
    labels the history a workflow propagates to its activities and children.
    """

    def __init__(
        self,
        db: Database,
        scheduler: Scheduler,
        clock: Clock,
        *,
        max_concurrent_workflows: int | None = None,
        max_concurrent_activities: int | None = None,
        turn_timeout: float = 300.0,
        activity_timeout: float = 3600.0,
        health_ping_interval: float = 10.0,
        start_wait: float = 10.0,
        ack_after_commit: bool = False,
        app_id: str = "app",
    ) -> None:
        self._db = db
        self._tx = GroupCommit(db)
        self._clock = clock
        self._start_wait = start_wait
        self._ack_after_commit = ack_after_commit
        self._app_id = app_id
        self._waiters = Waiters()
        self._timers = TimerBridge(db, self._tx, scheduler, clock, self._apply)
        self._dispatch = Dispatcher(
            clock,
            self._load_turns,
            max_turns=max_concurrent_workflows,
            max_activities=max_concurrent_activities,
            turn_timeout=turn_timeout,
            activity_timeout=activity_timeout,
            health_ping_interval=health_ping_interval,
        )
        self._dispatch.on_stream_open = self._on_stream_open
        self._courier = Courier(db, app_id)
        # (fields: method, deadline; request) -> response: a client request another app routed here
        self.routed_requests: Callable[[Mapping[str, str], bytes], Awaitable[bytes]] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._started = False

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Create tables, re-queue in-flight work, re-arm timers, register the timer handler."""
        await self._db.run(store.create_schema)

        def recover(conn: sqlite3.Connection) -> tuple[list[str], list[store.ActivityRow]]:
            return store.ready_ids(conn), store.activities(conn)

        ready, activities = await self._db.run(recover)
        self._timers.register()
        self._dispatch.start()
        self._dispatch.mark_ready(ready)
        self._dispatch.add_activities(activities)
        armed = await self._timers.rearm()
        self._courier.start()
        self._started = True
        log.info(
            "workflow engine started: %d instance(s) ready, %d activity(ies) re-queued, %d timer(s) armed",
            len(ready),
            len(activities),
            armed,
        )

    async def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        await self._courier.stop()
        await self._dispatch.stop()
        if self._background:  # let accepted results reach the database
            await asyncio.wait(list(self._background), timeout=5.0)
        for task in list(self._background):
            task.cancel()
        self._waiters.notify_all()
        log.info("workflow engine stopped")

    # -- worker side -----------------------------------------------------------------------------

    def open_stream(self, health_ping: bool, stateful_history: bool = False) -> WorkerStream:
        return self._dispatch.open_stream(health_ping, stateful_history)

    @property
    def app_id(self) -> str:
        """The app this sidecar serves; client requests routed to any other app are refused (routing.py)."""
        return self._app_id

    def connect_apps(self, transport: Transport) -> None:
        """Reach other apps' sidecars (the host registry): activities and children routed to them."""
        self._courier.transport = transport
        self._courier.wake()

    async def receive_remote(self, caller: str, what: str, fields: Mapping[str, str], body: bytes) -> bytes:
        """A workflow message of app `caller` (crossapp.py); returns once it is committed (the ack). Calls
        answer: "purge" (a child of `caller`'s workflow, with its descendants) a PurgeInstancesResponse,
        "client" (a client request `caller` routed here) the method's response."""
        if not self._started:
            raise WorkflowError(grpc.StatusCode.UNAVAILABLE, "the workflow engine is not running")
        if what == "client" and self.routed_requests is not None:
            return await self.routed_requests(fields, body)
        if what == "purge":
            request = pb.PurgeInstancesRequest(
                instanceId=fields.get("instance", ""), recursive=True, force=fields.get("force") == "true"
            )
            count, _ = await self.purge(request)
            return bytes(pb.PurgeInstancesResponse(deletedInstanceCount=count).SerializeToString())
        extra = base64.b64decode(fields["extra"]) if fields.get("extra") else None
        instance_id, execution_id = fields.get("instance", ""), fields.get("execution", "")
        now = self._clock.now()

        def record(conn: sqlite3.Connection) -> Effects:
            fx = Effects()
            crossapp.receive(conn, fx, caller, what, instance_id, execution_id, body, extra, now)
            return fx

        await self._apply(await self._tx.run(record))
        return b""

    async def call_app(self, app_id: str, method: str, request: bytes, deadline: float | None) -> bytes:
        """A client request (`method` of TaskHubSidecarService) for an instance of app `app_id`, run by that
        app's sidecar as daprd's workflow actor of that app runs it: its serialized response. `deadline`
        (seconds left of the client's) goes with it, so a wait there ends when the client stops waiting."""
        fields = {"method": method}
        if deadline is not None:
            fields["deadline"] = f"{max(deadline, 0.0):.3f}"
        doing = f"failed to route {method} to app {app_id!r}"
        return await self._courier.call(app_id, "client", fields, request, doing)

    @property
    def history_traffic(self) -> HistoryTraffic:
        """History sent to workers so far (full and delta turns, bytes, GetInstanceHistory calls)."""
        return self._dispatch.traffic

    def close_stream(self, stream: WorkerStream) -> None:
        self._dispatch.close_stream(stream)

    def busy(self) -> str | None:
        """Work queued, in flight with a worker, or being stored; None when the engine is quiet."""
        if self._background:
            return f"{len(self._background)} workflow result(s) being stored"
        if self._courier.sending:
            return "a workflow message being sent to another app"
        return self._dispatch.busy()

    async def next_item(self, stream: WorkerStream) -> Any | None:
        return await self._dispatch.next_item(stream)

    async def complete_turn(self, response: Any) -> None:
        """CompleteOrchestratorTask: accept the result, commit it in one transaction, dispatch.

        As in daprd (durabletask-go grpcExecutor), the worker is answered once the result is
        accepted; the commit follows. A crash before it commits loses nothing: the turn's events
        stay in the inbox and the (deterministic) turn is dispatched again.
        """
        turn = self._dispatch.claim_turn(response.instanceId, response.completionToken)
        if turn is None:
            log.debug("ignoring stale workflow result for %s", response.instanceId)
            return
        await self._acknowledge(self._commit_turn(turn, response))

    async def _commit_turn(self, turn: Turn, response: Any) -> None:
        now = self._clock.now()

        def commit(conn: sqlite3.Connection) -> Effects:
            return commit_turn(
                conn,
                instance_id=turn.instance_id,
                generation=turn.generation,
                inbox_ords=turn.inbox_ords,
                new_blobs=turn.new_blobs,
                response=response,
                now=now,
                app_id=self._app_id,
            )

        try:
            fx = await self._tx.run(commit)
        except Exception as exc:
            log.exception("could not commit the turn of %s; re-dispatching", turn.instance_id)
            self._dispatch.finish_turn(turn, failed=True)
            raise WorkflowError(grpc.StatusCode.INTERNAL, "could not store the workflow result") from exc
        self._dispatch.finish_turn(turn)
        await self._apply(fx)

    async def complete_activity(self, response: Any) -> None:
        """CompleteActivityTask: queue TaskCompleted/TaskFailed unless the result is stale.

        Answered once accepted, like the turn results; if the process dies before the result is
        stored, the activity is still recorded as outstanding and runs again (at-least-once).
        """
        work = self._dispatch.claim_activity(response.completionToken, response.instanceId, response.taskId)
        if work is None:
            log.debug("ignoring stale activity result %s#%d", response.instanceId, response.taskId)
            return
        await self._acknowledge(self._store_activity_result(work, response))

    async def _store_activity_result(self, work: ActivityWork, response: Any) -> None:
        row = work.row
        execution_id = pb.ActivityRequest.FromString(row.request).taskExecutionId
        now = self._clock.now()
        if response.HasField("failureDetails"):
            ev = event(
                now,
                taskFailed=pb.TaskFailedEvent(
                    taskScheduledId=row.task_id,
                    failureDetails=response.failureDetails,
                    taskExecutionId=execution_id,
                ),
            )
        else:
            done = pb.TaskCompletedEvent(taskScheduledId=row.task_id, taskExecutionId=execution_id)
            if response.HasField("result"):
                done.result.CopyFrom(response.result)
            ev = event(now, taskCompleted=done)

        def deliver(conn: sqlite3.Connection) -> Effects:
            fx = Effects()
            if crossapp.answer_activity(conn, fx, row, ev):
                return fx
            if store.take_activity(conn, row.instance_id, row.generation, row.task_id):
                post(conn, fx, row.instance_id, ev)
            return fx

        try:
            fx = await self._tx.run(deliver)
        except Exception as exc:
            log.exception("could not store an activity result of %s", row.instance_id)
            self._dispatch.retry_activity(work)
            raise WorkflowError(grpc.StatusCode.INTERNAL, "could not store the activity result") from exc
        await self._apply(fx)

    async def _acknowledge(self, storing: Coroutine[Any, Any, None]) -> None:
        """Store a worker's result in the background, or first when `ack_after_commit` is set."""
        task = asyncio.create_task(storing)
        self._background.add(task)
        task.add_done_callback(self._finished_background)
        if self._ack_after_commit:
            await asyncio.shield(task)

    def _finished_background(self, task: asyncio.Task[None]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.debug("background store failed: %s", task.exception())

    # -- internals -------------------------------------------------------------------------------

    async def _load_turns(
        self, batch: list[tuple[str, bool, tuple[int, int] | None]]
    ) -> list[TurnInput | None]:
        def load(conn: sqlite3.Connection) -> list[TurnInput | None]:
            return [load_turn(conn, instance_id, retry, held) for instance_id, retry, held in batch]

        return await self._db.run(load)

    async def _apply(self, fx: Effects) -> None:
        """Act on a committed transaction: dispatch, wake waiters, (dis)arm timers."""
        for instance_id, generation in fx.cancel:
            self._dispatch.cancel(instance_id, generation)
        self._dispatch.add_activities(fx.activities)
        self._dispatch.mark_ready(fx.ready)
        self._waiters.notify(fx.changed)
        if fx.sent:
            self._courier.wake()
        try:
            await self._timers.drop(fx.drop_jobs)
            await self._timers.arm(fx.timers, fx.starts)
        except Exception:
            # The timer rows are committed; start() arms them again after a restart.
            log.exception("could not update workflow timers in the scheduler")

    def _on_stream_open(self) -> None:
        """A (new) worker may know the workflow version a stalled instance needs: retry them."""
        if not self._started:
            return

        async def retry_stalled() -> None:
            ids = await self._db.run(lambda c: store.stalled_ids(c, STALLED))
            if ids:
                log.info("retrying %d stalled workflow(s) on a new worker", len(ids))
                self._dispatch.mark_ready(ids, retry=True)

        task = asyncio.create_task(retry_stalled())
        self._background.add(task)
        task.add_done_callback(self._background.discard)
