"""Durability: a workflow survives sidecar restarts on the same SQLite file, timers are re-armed, and
an activity lost with its worker's stream is dispatched again."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from dapr.ext.workflow import (
    DaprWorkflowClient,
    DaprWorkflowContext,
    WorkflowActivityContext,
    WorkflowHistoryEventType,
    WorkflowRuntime,
    WorkflowStatus,
)

from sidecar.clock import ManualClock
from tests.sidecar.workflows.support import WorkflowSidecar, eventually, fresh, running_worker

runs: Counter[str] = Counter()
lock = threading.Lock()
release = threading.Event()
entered = threading.Event()


def step(ctx: WorkflowActivityContext, name: str) -> str:
    with lock:
        runs[name] += 1
    return name.upper()


def slow(ctx: WorkflowActivityContext, name: str) -> str:
    with lock:
        runs[name] += 1
        first = runs[name] == 1
    if first:
        entered.set()
        release.wait(10)
    return f"{name} done"


def journey(ctx: DaprWorkflowContext, _: None):  # type: ignore[no-untyped-def]
    a = yield ctx.call_activity("step", input="a1")
    go = yield ctx.wait_for_external_event("go")
    b = yield ctx.call_activity("step", input="a2")
    yield ctx.create_timer(timedelta(hours=1))
    c = yield ctx.call_activity("step", input="a3")
    return [a, go, b, c]


def lingering(ctx: DaprWorkflowContext, name: str):  # type: ignore[no-untyped-def]
    return (yield ctx.call_activity("slow", input=name))


def register(rt: WorkflowRuntime) -> None:
    rt.register_workflow(fresh(journey), name="journey")
    rt.register_workflow(fresh(lingering), name="lingering")
    rt.register_activity(fresh(step), name="step")
    rt.register_activity(fresh(slow), name="slow")


@pytest.fixture()
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "durable.db"


class Generation:
    """One sidecar + worker + client on the shared database file; stopped as a unit."""

    def __init__(self, db_path: Path, clock: ManualClock) -> None:
        self.sidecar = WorkflowSidecar(db_path, clock).start()
        self._worker = running_worker(self.sidecar, register)
        self._worker.__enter__()
        self.client = DaprWorkflowClient(host="127.0.0.1", port=str(self.sidecar.port))

    def stop(self) -> None:
        self.client.close()
        self._worker.__exit__(None, None, None)
        self.sidecar.stop()


@pytest.fixture()
def generations(db_path: Path, clock: ManualClock) -> Iterator[list[Generation]]:
    started: list[Generation] = []
    yield started
    for gen in started:
        gen.sidecar.stop()


def test_workflow_survives_two_restarts(
    db_path: Path, clock: ManualClock, generations: list[Generation]
) -> None:
    generations.append(first := Generation(db_path, clock))
    iid = first.client.schedule_new_workflow("journey", instance_id="journey-1")
    eventually(lambda: runs["a1"] == 1)
    eventually(
        lambda: any(
            e.event_type == WorkflowHistoryEventType.TASK_COMPLETED
            for e in first.client.get_workflow_history(iid)
        )
    )
    first.stop()

    generations.append(second := Generation(db_path, clock))
    state = second.client.get_workflow_state(iid)
    assert state is not None and state.runtime_status == WorkflowStatus.RUNNING
    second.client.raise_workflow_event(iid, "go", data="went")
    eventually(
        lambda: any(
            e.event_type == WorkflowHistoryEventType.TIMER_CREATED
            for e in second.client.get_workflow_history(iid)
        )
    )
    second.stop()

    generations.append(third := Generation(db_path, clock))
    clock.advance(3600)  # the timer armed by the second sidecar fires in the third
    state = third.client.wait_for_workflow_completion(iid, timeout_in_seconds=10)
    assert state is not None and state.runtime_status == WorkflowStatus.COMPLETED
    assert state.serialized_output == '["A1", "went", "A2", "A3"]'
    assert (runs["a1"], runs["a2"], runs["a3"]) == (1, 1, 1)
    third.stop()


def test_activity_lost_with_its_worker_is_redispatched(db_path: Path, clock: ManualClock) -> None:
    sidecar = WorkflowSidecar(db_path, clock).start()
    try:
        first = WorkflowRuntime(host="127.0.0.1", port=str(sidecar.port))
        register(first)
        first.start()
        client = DaprWorkflowClient(host="127.0.0.1", port=str(sidecar.port))
        iid = client.schedule_new_workflow("lingering", input="lost-1")
        assert entered.wait(10)
        stopping = threading.Thread(target=first.shutdown)  # blocks until the activity returns
        stopping.start()
        with running_worker(sidecar, register):
            eventually(lambda: runs["lost-1"] == 2)  # dispatched again to the new worker
            release.set()
            stopping.join(15)
            state = client.wait_for_workflow_completion(iid, timeout_in_seconds=10)
        assert state is not None and state.runtime_status == WorkflowStatus.COMPLETED
        assert state.serialized_output == '"lost-1 done"'
        client.close()
    finally:
        release.set()
        sidecar.stop()
