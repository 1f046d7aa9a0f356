"""Work items streamed to connected workers: one turn in flight per instance, activities, re-dispatch.

There is no Abandon RPC, so the sidecar owns re-delivery: whatever was sent on a stream that closes,
or was not answered within its timeout, is queued again under a fresh completion token, and results
carrying a superseded token are ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from sidecar.clock import Clock
from sidecar.workflows.history import event, pack_repeated, pb, string_value
from sidecar.workflows.store import ActivityRow
from sidecar.workflows.streams import ActivityWork, HistoryTraffic, Turn, WarmHistories, WorkerStream
from sidecar.workflows.turns import TurnInput

__all__ = ["Dispatcher"]

log = logging.getLogger("sidecar.workflows.dispatch")

# (instance, retry a stalled instance, what the chosen worker holds of its history) -> next turns
TurnLoader = Callable[[list[tuple[str, bool, tuple[int, int] | None]]], Awaitable[list[TurnInput | None]]]

_BATCH = 64  # turns loaded from the database in one call
_REAPER_PERIOD = 1.0


_RESERVED = object()  # a turn being loaded from the database


def _answers(work: ActivityWork, instance_id: str, task_id: int) -> bool:
    """Whether a worker's result for (instance, task) is this work's; an activity run for another app is
    keyed by `crossapp.remote_key`, which ends with the instance id after a separator."""
    key = work.row.instance_id
    return work.row.task_id == task_id and (key == instance_id or key.endswith("\x1f" + instance_id))


class Dispatcher:
    """Owns the ready queue, the activity queue and everything in flight; runs on the event loop."""

    def __init__(
        self,
        clock: Clock,
        load_turns: TurnLoader,
        *,
        max_turns: int | None,
        max_activities: int | None,
        turn_timeout: float,
        activity_timeout: float,
        health_ping_interval: float,
    ) -> None:
        self._clock = clock
        self._load_turns = load_turns
        self._max_turns = max_turns
        self._max_activities = max_activities
        self._turn_timeout = turn_timeout
        self._activity_timeout = activity_timeout
        self._ping_interval = health_ping_interval
        self._streams: dict[int, WorkerStream] = {}
        self._next_stream = 0
        self._ready: dict[str, bool] = {}  # instance -> retry a stalled instance
        self._again: dict[str, bool] = {}  # marked ready while a turn is in flight
        self._turns: dict[str, Turn | object] = {}
        self._activities: deque[ActivityWork] = deque()
        self._unfinished: dict[str, set[ActivityWork]] = {}  # queued or in flight, by instance
        self._in_flight: dict[str, ActivityWork] = {}
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.on_stream_open: Callable[[], None] = lambda: None
        # Completion tokens: unique per dispatch and per process, so results meant for an earlier
        # dispatch (or an earlier sidecar process) never match.
        self._token_prefix = uuid.uuid4().hex[:12]
        self._token_seq = itertools.count(1)
        self.traffic = HistoryTraffic()

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._pump(), name="wf-dispatch"),
            asyncio.create_task(self._reaper(), name="wf-reaper"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for stream in list(self._streams.values()):
            stream.queue.put_nowait(None)  # ends the GetWorkItems call; the worker reconnects

    # -- streams ---------------------------------------------------------------------------------

    def open_stream(self, health_ping: bool, stateful_history: bool = False) -> WorkerStream:
        """A new stream starts cold: its worker holds no history yet (the SDK resets its cache)."""
        self._next_stream += 1
        stream = WorkerStream(self._next_stream, health_ping, WarmHistories(stateful_history))
        self._streams[stream.id] = stream
        log.info(
            "worker stream %d connected (health pings: %s, stateful history: %s)",
            stream.id,
            health_ping,
            stateful_history,
        )
        self.on_stream_open()
        self._wake.set()
        return stream

    def close_stream(self, stream: WorkerStream) -> None:
        """Re-queue everything the stream was given and has not answered."""
        if self._streams.pop(stream.id, None) is None:
            return
        requeued = 0
        for instance_id in list(stream.turns):
            turn = self._turns.get(instance_id)
            if isinstance(turn, Turn) and turn.stream is stream and not turn.committing:
                self._end_turn(instance_id, again=True)
                requeued += 1
        for token in list(stream.activities):
            work = self._in_flight.pop(token, None)
            if work is not None and work.cancelled:
                self._forget(work)
            elif work is not None:
                self._requeue(work)
                requeued += 1
        log.info("worker stream %d closed; %d work item(s) re-queued", stream.id, requeued)
        self._wake.set()

    async def next_item(self, stream: WorkerStream) -> Any | None:
        """The next WorkItem for this stream (a HealthPing when idle), or None when shut down."""
        while True:
            try:
                if not stream.queue.empty():
                    entry = stream.queue.get_nowait()
                elif stream.health_ping:
                    entry = await asyncio.wait_for(stream.queue.get(), self._ping_interval)
                else:
                    entry = await stream.queue.get()
            except TimeoutError:
                return pb.WorkItem(healthPing=pb.HealthPing())
            if entry is None:
                return None
            what, key, item = entry
            if what == "turn":
                turn = self._turns.get(key)
                if isinstance(turn, Turn) and turn.token == item.completionToken:
                    return item
            elif key in self._in_flight:
                return item

    @property
    def connected(self) -> bool:
        return bool(self._streams)

    def busy(self) -> str | None:
        """What is queued or in flight (turns, activities), or None when nothing is."""
        turns = len(self._ready) + len(self._again) + len(self._turns)
        activities = len(self._activities) + len(self._in_flight)
        if not (turns or activities):
            return None
        worker = "" if self._streams else " (no worker connected)"
        return f"{turns} orchestration turn(s) and {activities} activity(ies) pending{worker}"

    # -- work coming in --------------------------------------------------------------------------

    def mark_ready(self, instance_ids: Iterable[str], retry: bool = False) -> None:
        for instance_id in instance_ids:
            target = self._again if instance_id in self._turns else self._ready
            target[instance_id] = retry or target.get(instance_id, False)
        self._wake.set()

    def add_activities(self, rows: Iterable[ActivityRow]) -> None:
        for row in rows:
            work = ActivityWork(row)
            self._unfinished.setdefault(row.instance_id, set()).add(work)
            self._requeue(work, front=False)
        self._wake.set()

    def cancel(self, instance_id: str, generation: int) -> None:
        """Stop (re-)dispatching an instance generation's activities (it ended or moved on)."""
        for work in self._unfinished.get(instance_id, ()):
            if work.row.generation == generation:
                work.cancelled = True

    # -- results ---------------------------------------------------------------------------------

    def claim_turn(self, instance_id: str, token: str) -> Turn | None:
        """The in-flight turn this response answers, now being committed; None if stale."""
        turn = self._turns.get(instance_id)
        if not isinstance(turn, Turn) or turn.committing or (token and token != turn.token):
            return None
        turn.committing = True
        turn.stream.turns.discard(instance_id)
        return turn

    def finish_turn(self, turn: Turn, *, failed: bool = False) -> None:
        """The turn's commit finished (or failed: then it is dispatched again)."""
        if self._turns.get(turn.instance_id) is turn:
            self._end_turn(turn.instance_id, again=failed)

    def claim_activity(self, token: str, instance_id: str, task_id: int) -> ActivityWork | None:
        work = self._in_flight.get(token)
        if work is None and not token:
            work = next((w for w in self._in_flight.values() if _answers(w, instance_id, task_id)), None)
        if work is None or not _answers(work, instance_id, task_id):
            return None
        self._in_flight.pop(work.token, None)
        if work.stream is not None:
            work.stream.activities.discard(work.token)
        self._forget(work)
        self._wake.set()
        return None if work.cancelled else work  # its instance ended or moved on

    def retry_activity(self, work: ActivityWork) -> None:
        """Its result could not be stored; run it again."""
        self._unfinished.setdefault(work.row.instance_id, set()).add(work)
        self._requeue(work)
        self._wake.set()

    # -- internals -------------------------------------------------------------------------------

    def _end_turn(self, instance_id: str, *, again: bool) -> None:
        turn = self._turns.pop(instance_id, None)
        if isinstance(turn, Turn):
            turn.stream.turns.discard(instance_id)
        retry = self._again.pop(instance_id, None)
        if retry is not None or again:
            self._ready[instance_id] = bool(retry) or self._ready.get(instance_id, False)
        self._wake.set()

    def _requeue(self, work: ActivityWork, front: bool = True) -> None:
        work.token, work.stream = "", None
        if front:
            self._activities.appendleft(work)
        else:
            self._activities.append(work)

    def _forget(self, work: ActivityWork) -> None:
        unfinished = self._unfinished.get(work.row.instance_id)
        if unfinished is not None:
            unfinished.discard(work)
            if not unfinished:
                del self._unfinished[work.row.instance_id]

    def _new_token(self) -> str:
        return f"{self._token_prefix}-{next(self._token_seq)}"

    def _pick_stream(self) -> WorkerStream | None:
        if not self._streams:
            return None
        return min(self._streams.values(), key=lambda s: s.load)

    def _warm_stream(self, instance_id: str) -> WorkerStream | None:
        """The stream whose worker holds the instance's history: its turns stay there (affinity, as in
        durabletask-go) so they can be sent as deltas."""
        return next((s for s in self._streams.values() if s.warm.holds(instance_id)), None)

    async def _pump(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                self._dispatch_activities()
                while await self._dispatch_turns():
                    self._dispatch_activities()
            except Exception:
                log.exception("workflow dispatch failed; retrying")
                await asyncio.sleep(0.5)
                self._wake.set()

    def _dispatch_activities(self) -> None:
        while self._activities and self._streams:
            if self._max_activities is not None and len(self._in_flight) >= self._max_activities:
                return
            work = self._activities.popleft()
            if work.cancelled:
                self._forget(work)
                continue
            stream = self._pick_stream()
            assert stream is not None
            work.token = self._new_token()
            work.stream = stream
            work.dispatched_at = self._clock.now()
            self._in_flight[work.token] = work
            stream.activities.add(work.token)
            request = pb.ActivityRequest.FromString(work.row.request)
            item = pb.WorkItem(activityRequest=request, completionToken=work.token)
            stream.queue.put_nowait(("activity", work.token, item))

    async def _dispatch_turns(self) -> bool:
        """Dispatch one batch of ready instances; True if more may be waiting."""
        if not self._ready or not self._streams:
            return False
        room = _BATCH
        if self._max_turns is not None:
            room = min(room, self._max_turns - len(self._turns))
        if room <= 0:
            return False
        batch: list[tuple[str, bool, WorkerStream | None]] = []
        while self._ready and len(batch) < room:
            instance_id, retry = next(iter(self._ready.items()))
            del self._ready[instance_id]
            self._turns[instance_id] = _RESERVED
            batch.append((instance_id, retry, self._warm_stream(instance_id)))
        try:
            loaded = await self._load_turns([(i, r, w.warm.holds(i) if w else None) for i, r, w in batch])
        except Exception:
            for instance_id, retry, _ in batch:
                self._turns.pop(instance_id, None)
                self._ready[instance_id] = retry
            raise
        for (instance_id, retry, warm), inp in zip(batch, loaded, strict=True):
            stream = warm if warm is not None and warm.id in self._streams else None
            if stream is None and inp is not None and not inp.cached:
                stream = self._pick_stream()  # a full send may go anywhere
            if inp is None or stream is None:
                # Nothing to run, or loaded as a delta for a stream that has closed since (reloaded
                # in full on the next pass), or no worker left.
                self._turns.pop(instance_id, None)
                again = self._again.pop(instance_id, None)
                if again is not None or (inp is not None and stream is None):
                    self._ready[instance_id] = retry or bool(again)
                continue
            self._send_turn(inp, stream)
        return bool(self._ready)

    def _send_turn(self, inp: TurnInput, stream: WorkerStream) -> None:
        now = self._clock.now()
        started = event(now, workflowStarted=pb.WorkflowStartedEvent()).SerializeToString()
        new_blobs = [started] + [blob for _, blob in inp.inbox]
        request = pb.WorkflowRequest(instanceId=inp.instance_id, executionId=string_value(inp.execution_id))
        request.MergeFromString(pack_repeated(3, inp.history) + pack_repeated(4, new_blobs))
        if inp.cached:
            request.cachedHistory.eventCount = inp.cached
        if inp.propagated is not None:
            request.propagatedHistory.ParseFromString(inp.propagated)
        stream.warm.sent(inp.instance_id, inp.generation, inp.history_len)
        self.traffic.count(inp.history, delta=bool(inp.cached))
        token = self._new_token()
        turn = Turn(
            instance_id=inp.instance_id,
            generation=inp.generation,
            token=token,
            inbox_ords=[o for o, _ in inp.inbox],
            new_blobs=new_blobs,
            stream=stream,
            dispatched_at=now,
        )
        self._turns[inp.instance_id] = turn
        stream.turns.add(inp.instance_id)
        item = pb.WorkItem(workflowRequest=request, completionToken=token)
        stream.queue.put_nowait(("turn", inp.instance_id, item))

    async def _reaper(self) -> None:
        """Re-dispatch work a worker accepted and never answered."""
        while True:
            await self._clock.wait_until(self._clock.now() + _REAPER_PERIOD)
            now = self._clock.now()
            for instance_id, turn in list(self._turns.items()):
                if (
                    isinstance(turn, Turn)
                    and not turn.committing
                    and now - turn.dispatched_at >= self._turn_timeout
                ):
                    log.warning("turn of %s not answered in time; re-dispatching", instance_id)
                    self._end_turn(instance_id, again=True)
            for token, work in list(self._in_flight.items()):
                if now - work.dispatched_at >= self._activity_timeout:
                    log.warning(
                        "activity %s#%d not answered in time; re-dispatching",
                        work.row.instance_id,
                        work.row.task_id,
                    )
                    del self._in_flight[token]
                    if work.stream is not None:
                        work.stream.activities.discard(token)
                    if work.cancelled:
                        self._forget(work)
                    else:
                        self._requeue(work)
                    self._wake.set()
