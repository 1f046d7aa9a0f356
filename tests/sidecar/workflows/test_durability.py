"""Durability: a workflow survives sidecar restarts on the same SQLite file, timers are re-armed, and
an activity lost with its worker's stream is dispatched again."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import grpc
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
from tests.sidecar.workflows.support import (
    WorkflowSidecar,
    close_client,
    eventually,
    fresh,
    running_worker,
    start_worker,
    stop_worker,
)

REPO = Path(__file__).resolve().parents[3]

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


def count(client: DaprWorkflowClient, iid: str, kind: WorkflowHistoryEventType) -> int:
    return sum(e.event_type == kind for e in client.get_workflow_history(iid))


class Generation:
    """One sidecar + worker + client on the shared database file; stopped as a unit."""

    def __init__(self, db_path: Path, clock: ManualClock) -> None:
        self.sidecar = WorkflowSidecar(db_path, clock).start()
        self._worker = running_worker(self.sidecar, register)
        self._worker.__enter__()
        self.client = DaprWorkflowClient(host="127.0.0.1", port=str(self.sidecar.port))

        self._stopped = False

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        close_client(self.client)
        self._worker.__exit__(None, None, None)
        self.sidecar.stop()


@pytest.fixture()
def generations() -> Iterator[list[Generation]]:
    started: list[Generation] = []
    yield started
    for gen in started:
        gen.stop()


def test_workflow_survives_two_restarts(
    db_path: Path, clock: ManualClock, generations: list[Generation]
) -> None:
    generations.append(first := Generation(db_path, clock))
    iid = first.client.schedule_new_workflow("journey", instance_id="journey-1")
    eventually(lambda: count(first.client, iid, WorkflowHistoryEventType.TASK_COMPLETED) == 1)
    first.stop()

    generations.append(second := Generation(db_path, clock))
    state = second.client.get_workflow_state(iid)
    assert state is not None and state.runtime_status == WorkflowStatus.RUNNING
    second.client.raise_workflow_event(iid, "go", data="went")
    # The indefinite event wait recorded a (sentinel) timer too: wait for the one-hour timer.
    eventually(lambda: count(second.client, iid, WorkflowHistoryEventType.TIMER_CREATED) == 2)
    second.stop()
    # As if the process died after the turn committed but before the scheduler stored the job:
    # the engine must arm the timer again from its own tables.
    with closing(sqlite3.connect(db_path)) as conn, conn:
        assert conn.execute("DELETE FROM scheduler_jobs").rowcount >= 1

    generations.append(third := Generation(db_path, clock))
    clock.advance(3600)  # the timer armed by the second sidecar fires in the third
    state = third.client.wait_for_workflow_completion(iid, timeout_in_seconds=10)
    assert state is not None and state.runtime_status == WorkflowStatus.COMPLETED
    assert state.serialized_output == '["A1", "went", "A2", "A3"]'
    assert (runs["a1"], runs["a2"], runs["a3"]) == (1, 1, 1)


def test_activity_lost_with_its_worker_is_redispatched(db_path: Path, clock: ManualClock) -> None:
    entered.clear()
    release.clear()
    sidecar = WorkflowSidecar(db_path, clock).start()
    try:
        first = start_worker(sidecar, register)
        client = DaprWorkflowClient(host="127.0.0.1", port=str(sidecar.port))
        iid = client.schedule_new_workflow("lingering", input="lost-1")
        assert entered.wait(10)
        stopping = threading.Thread(target=stop_worker, args=(first,))  # blocks until the activity returns
        stopping.start()
        with running_worker(sidecar, register):
            eventually(lambda: runs["lost-1"] == 2)  # dispatched again to the new worker
            release.set()
            stopping.join(15)
            state = client.wait_for_workflow_completion(iid, timeout_in_seconds=10)
        assert state is not None and state.runtime_status == WorkflowStatus.COMPLETED
        assert state.serialized_output == '"lost-1 done"'
        close_client(client)
    finally:
        release.set()
        sidecar.stop()


def test_activity_in_flight_at_shutdown_runs_again_after_restart(db_path: Path, clock: ManualClock) -> None:
    entered.clear()
    release.clear()
    sidecar = WorkflowSidecar(db_path, clock).start()
    first = start_worker(sidecar, register)
    client = DaprWorkflowClient(host="127.0.0.1", port=str(sidecar.port))
    iid = client.schedule_new_workflow("lingering", input="lost-2")
    close_client(client)
    assert entered.wait(10)
    sidecar.stop()  # the activity's result can no longer be delivered to this sidecar
    release.set()
    stop_worker(first)

    restarted = WorkflowSidecar(db_path, clock).start()
    try:
        with running_worker(restarted, register):
            client = DaprWorkflowClient(host="127.0.0.1", port=str(restarted.port))
            state = client.wait_for_workflow_completion(iid, timeout_in_seconds=10)
            close_client(client)
        assert state is not None and state.runtime_status == WorkflowStatus.COMPLETED
        assert runs["lost-2"] == 2
    finally:
        restarted.stop()


def ver_one(ctx: DaprWorkflowContext, _: None):  # type: ignore[no-untyped-def]
    yield ctx.wait_for_external_event("go")
    return "v1"


def ver_two(ctx: DaprWorkflowContext, _: None):  # type: ignore[no-untyped-def]
    yield ctx.wait_for_external_event("go")
    return "v2"


def versions(*which: str) -> Callable[[WorkflowRuntime], None]:
    def register_versions(rt: WorkflowRuntime) -> None:
        for name, fn in (("v1", ver_one), ("v2", ver_two)):
            if name in which:
                latest = name == which[-1]
                rt.register_versioned_workflow(fresh(fn), name="ver", version_name=name, is_latest=latest)

    return register_versions


def test_missing_version_stalls_until_a_worker_has_it(db_path: Path, clock: ManualClock) -> None:
    sidecar = WorkflowSidecar(db_path, clock).start()
    client = DaprWorkflowClient(host="127.0.0.1", port=str(sidecar.port))
    try:
        with running_worker(sidecar, versions("v1")):
            iid = client.schedule_new_workflow("ver")
            client.wait_for_workflow_start(iid, timeout_in_seconds=10)
        with running_worker(sidecar, versions("v2")):
            client.raise_workflow_event(iid, "go")
            eventually(
                lambda: (
                    (s := client.get_workflow_state(iid)) is not None
                    and s.runtime_status == WorkflowStatus.STALLED
                )
            )
            with pytest.raises(grpc.RpcError) as refused:
                client.raise_workflow_event(iid, "go")
            assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        with running_worker(sidecar, versions("v1", "v2")):  # retried when this worker connects
            state = client.wait_for_workflow_completion(iid, timeout_in_seconds=10)
        assert state is not None and state.runtime_status == WorkflowStatus.COMPLETED
        assert state.serialized_output == '"v1"'
    finally:
        close_client(client)
        sidecar.stop()


def waiter(ctx: DaprWorkflowContext, n: int):  # type: ignore[no-untyped-def]
    value = yield ctx.wait_for_external_event("go")
    return (yield ctx.call_activity("step", input=f"k{n}-{value}"))


class SidecarProcess:
    """The sidecar as a child process that can be killed with SIGKILL mid-flight."""

    def __init__(self, db_path: Path, port: int = 0) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.sidecar.workflows.sidecar_proc", str(db_path), str(port)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)


def test_nothing_acknowledged_is_lost_after_kill_9(db_path: Path) -> None:
    first = SidecarProcess(db_path)
    port = first.port

    def register_all(rt: WorkflowRuntime) -> None:
        register(rt)
        rt.register_workflow(fresh(waiter), name="waiter")

    try:
        with running_worker(port, register_all):
            client = DaprWorkflowClient(host="127.0.0.1", port=str(port))
            ids = [client.schedule_new_workflow("waiter", input=n, instance_id=f"k9-{n}") for n in range(12)]
            for iid in ids[:6]:
                client.raise_workflow_event(iid, "go", data="early")
            first.kill()  # turns, activities and results may be in flight right now
            close_client(client)
        second = SidecarProcess(db_path, port)
        try:
            with running_worker(port, register_all):
                client = DaprWorkflowClient(host="127.0.0.1", port=str(port))
                for iid in ids[6:]:
                    client.raise_workflow_event(iid, "go", data="late")
                outputs = {}
                for n, iid in enumerate(ids):
                    state = client.wait_for_workflow_completion(iid, timeout_in_seconds=20)
                    assert state is not None and state.runtime_status == WorkflowStatus.COMPLETED
                    outputs[n] = state.serialized_output
                close_client(client)
        finally:
            second.kill()
    finally:
        if first.proc.poll() is None:
            first.kill()
    assert outputs == {n: f'"K{n}-{"EARLY" if n < 6 else "LATE"}"' for n in range(12)}
