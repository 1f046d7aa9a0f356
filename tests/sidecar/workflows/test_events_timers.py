"""Durable timers (moved with ManualClock.advance), external events, suspend/resume, scheduled starts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

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
from tests.sidecar.workflows.support import WorkflowSidecar, eventually, running_worker


def echo(ctx: WorkflowActivityContext, value: str) -> str:
    return value


def sleeper(ctx: DaprWorkflowContext, seconds: float):  # type: ignore[no-untyped-def]
    before = ctx.current_utc_datetime
    yield ctx.create_timer(timedelta(seconds=seconds))
    after = ctx.current_utc_datetime
    return (after - before).total_seconds()


def approval(ctx: DaprWorkflowContext, _: None):  # type: ignore[no-untyped-def]
    decision = yield ctx.wait_for_external_event("approval")
    return {"decision": decision}


def approval_with_timeout(ctx: DaprWorkflowContext, minutes: int):  # type: ignore[no-untyped-def]
    try:
        decision = yield ctx.wait_for_external_event("approval", timeout=timedelta(minutes=minutes))
    except TimeoutError:
        return "timed out"
    return decision


def timer_then_event(ctx: DaprWorkflowContext, _: None):  # type: ignore[no-untyped-def]
    yield ctx.create_timer(timedelta(hours=1))
    value = yield ctx.wait_for_external_event("late")
    return value


def wait_then_activity(ctx: DaprWorkflowContext, _: None):  # type: ignore[no-untyped-def]
    value = yield ctx.wait_for_external_event("go")
    return (yield ctx.call_activity(echo, input=value))


def accumulate(ctx: DaprWorkflowContext, total: int):  # type: ignore[no-untyped-def]
    value = yield ctx.wait_for_external_event("add")
    total += value
    if total >= 10:
        return total
    ctx.continue_as_new(total, save_events=True)


def countdown(ctx: DaprWorkflowContext, n: int):  # type: ignore[no-untyped-def]
    yield ctx.call_activity(echo, input=str(n))
    if n == 0:
        return "liftoff"
    ctx.continue_as_new(n - 1)


def register(rt: WorkflowRuntime) -> None:
    for wf in (
        sleeper,
        approval,
        approval_with_timeout,
        timer_then_event,
        wait_then_activity,
        accumulate,
        countdown,
    ):
        rt.register_workflow(wf)
    rt.register_activity(echo)


@pytest.fixture(scope="module", autouse=True)
def worker(sidecar: WorkflowSidecar) -> Iterator[WorkflowRuntime]:
    with running_worker(sidecar, register) as rt:
        yield rt


def has_event(client: DaprWorkflowClient, iid: str, kind: WorkflowHistoryEventType) -> bool:
    return any(e.event_type == kind for e in client.get_workflow_history(iid))


def test_timer_fires_only_when_due(client: DaprWorkflowClient, clock: ManualClock) -> None:
    iid = client.schedule_new_workflow(sleeper, input=3600)
    eventually(lambda: has_event(client, iid, WorkflowHistoryEventType.TIMER_CREATED))
    with pytest.raises(TimeoutError):
        client.wait_for_workflow_completion(iid, timeout_in_seconds=1)
    clock.advance(3600)
    state = client.wait_for_workflow_completion(iid, timeout_in_seconds=10)
    assert state is not None and state.runtime_status == WorkflowStatus.COMPLETED
    assert float(state.serialized_output or 0) >= 3600


def test_thirty_day_timer(client: DaprWorkflowClient, clock: ManualClock) -> None:
    iid = client.schedule_new_workflow(sleeper, input=30 * 86400)
    eventually(lambda: has_event(client, iid, WorkflowHistoryEventType.TIMER_CREATED))
    clock.advance(29 * 86400)
    with pytest.raises(TimeoutError):
        client.wait_for_workflow_completion(iid, timeout_in_seconds=1)
    clock.advance(86400)
    state = client.wait_for_workflow_completion(iid, timeout_in_seconds=10)
    assert state is not None and state.runtime_status == WorkflowStatus.COMPLETED
    assert float(state.serialized_output or 0) >= 30 * 86400


def test_external_event_is_delivered(client: DaprWorkflowClient) -> None:
    iid = client.schedule_new_workflow(approval)
    client.wait_for_workflow_start(iid, timeout_in_seconds=10)
    client.raise_workflow_event(iid, "APPROVAL", data="yes")  # names are case-insensitive
    state = client.wait_for_workflow_completion(iid, timeout_in_seconds=10)
    assert state is not None and state.serialized_output == '{"decision": "yes"}'


def test_event_wait_times_out(client: DaprWorkflowClient, clock: ManualClock) -> None:
    iid = client.schedule_new_workflow(approval_with_timeout, input=5)
    eventually(lambda: has_event(client, iid, WorkflowHistoryEventType.TIMER_CREATED))
    clock.advance(5 * 60)
    state = client.wait_for_workflow_completion(iid, timeout_in_seconds=10)
    assert state is not None and state.serialized_output == '"timed out"'


def test_event_before_timeout_wins(client: DaprWorkflowClient, clock: ManualClock) -> None:
    iid = client.schedule_new_workflow(approval_with_timeout, input=5)
    eventually(lambda: has_event(client, iid, WorkflowHistoryEventType.TIMER_CREATED))
    client.raise_workflow_event(iid, "approval", data="in time")
    state = client.wait_for_workflow_completion(iid, timeout_in_seconds=10)
    assert state is not None and state.serialized_output == '"in time"'
    clock.advance(5 * 60)  # the cancelled timeout firing later must not disturb the finished instance
    after = client.get_workflow_state(iid)
    assert after is not None and after.serialized_output == '"in time"'


def test_event_raised_before_the_wait_is_buffered(client: DaprWorkflowClient, clock: ManualClock) -> None:
    iid = client.schedule_new_workflow(timer_then_event)
    eventually(lambda: has_event(client, iid, WorkflowHistoryEventType.TIMER_CREATED))
    client.raise_workflow_event(iid, "late", data=42)
    eventually(lambda: has_event(client, iid, WorkflowHistoryEventType.EVENT_RAISED))
    clock.advance(3600)
    state = client.wait_for_workflow_completion(iid, timeout_in_seconds=10)
    assert state is not None and state.serialized_output == "42"


def test_scheduled_start_and_event_raised_before_start(
    client: DaprWorkflowClient, clock: ManualClock
) -> None:
    start_at = datetime.fromtimestamp(clock.now() + 600, UTC)
    iid = client.schedule_new_workflow(approval, start_at=start_at)
    state = client.get_workflow_state(iid)
    assert state is not None and state.runtime_status == WorkflowStatus.PENDING
    assert state.name == "approval"
    client.raise_workflow_event(iid, "approval", data="early")
    with pytest.raises(TimeoutError):
        client.wait_for_workflow_start(iid, timeout_in_seconds=1)
    clock.advance(600)
    state = client.wait_for_workflow_completion(iid, timeout_in_seconds=10)
    assert state is not None and state.serialized_output == '{"decision": "early"}'


def test_suspend_resume_with_event_while_suspended(client: DaprWorkflowClient) -> None:
    iid = client.schedule_new_workflow(wait_then_activity)
    client.wait_for_workflow_start(iid, timeout_in_seconds=10)
    client.pause_workflow(iid)  # returns once the instance is SUSPENDED
    state = client.get_workflow_state(iid)
    assert state is not None and state.runtime_status == WorkflowStatus.SUSPENDED
    client.pause_workflow(iid)  # a second suspend is a no-op
    client.raise_workflow_event(iid, "go", data="x")
    eventually(lambda: has_event(client, iid, WorkflowHistoryEventType.EVENT_RAISED))
    state = client.get_workflow_state(iid)
    assert state is not None and state.runtime_status == WorkflowStatus.SUSPENDED
    client.resume_workflow(iid)
    state = client.wait_for_workflow_completion(iid, timeout_in_seconds=10)
    assert state is not None and state.runtime_status == WorkflowStatus.COMPLETED
    assert state.serialized_output == '"x"'


def test_resume_of_a_running_instance_is_harmless(client: DaprWorkflowClient) -> None:
    iid = client.schedule_new_workflow(approval)
    client.wait_for_workflow_start(iid, timeout_in_seconds=10)
    client.resume_workflow(iid)  # the SDK worker would fail on an unexpected executionResumed
    client.raise_workflow_event(iid, "approval", data="still fine")
    state = client.wait_for_workflow_completion(iid, timeout_in_seconds=10)
    assert state is not None and state.runtime_status == WorkflowStatus.COMPLETED


def test_continue_as_new_runs_generations_and_stays_running(client: DaprWorkflowClient) -> None:
    iid = client.schedule_new_workflow(countdown, input=3)
    state = client.wait_for_workflow_completion(iid, timeout_in_seconds=10)
    assert state is not None and state.runtime_status == WorkflowStatus.COMPLETED
    assert state.serialized_output == '"liftoff"'
    assert state.serialized_input == "0"  # input of the last generation
    history = client.get_workflow_history(iid)
    started = [e for e in history if e.event_type == WorkflowHistoryEventType.EXECUTION_STARTED]
    assert len(started) == 1  # only the current generation's history is kept
    assert [e.event_id for e in history if e.event_type == WorkflowHistoryEventType.TASK_SCHEDULED] == [1]


def test_continue_as_new_carries_over_events(client: DaprWorkflowClient) -> None:
    iid = client.schedule_new_workflow(accumulate, input=0)
    client.wait_for_workflow_start(iid, timeout_in_seconds=10)
    for value in (3, 3, 4):
        client.raise_workflow_event(iid, "add", data=value)
    state = client.wait_for_workflow_completion(iid, timeout_in_seconds=10)
    assert state is not None and state.runtime_status == WorkflowStatus.COMPLETED
    assert state.serialized_output == "10"


def test_waiting_instance_reports_running(client: DaprWorkflowClient) -> None:
    iid = client.schedule_new_workflow(accumulate, input=0)
    client.wait_for_workflow_start(iid, timeout_in_seconds=10)
    client.raise_workflow_event(iid, "add", data=1)
    eventually(lambda: (s := client.get_workflow_state(iid)) and s.serialized_input == "1")
    state = client.get_workflow_state(iid)
    assert state is not None and state.runtime_status == WorkflowStatus.RUNNING
    client.terminate_workflow(iid)
