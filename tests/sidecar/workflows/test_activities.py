"""Activities through the real SDK: chains, fan-out/fan-in, failures, retries, custom status, state."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest
from dapr.ext.workflow import (
    DaprWorkflowClient,
    DaprWorkflowContext,
    RetryPolicy,
    WorkflowActivityContext,
    WorkflowRuntime,
    WorkflowStatus,
    when_all,
)

from tests.sidecar.workflows.support import WorkflowSidecar, running_worker

calls: Counter[str] = Counter()
lock = threading.Lock()


def count(name: str) -> int:
    with lock:
        calls[name] += 1
        return calls[name]


def add_one(ctx: WorkflowActivityContext, x: int) -> int:
    count("add_one")
    return x + 1


def square(ctx: WorkflowActivityContext, x: int) -> int:
    return x * x


def explode(ctx: WorkflowActivityContext, message: str) -> None:
    raise ValueError(message)


def flaky(ctx: WorkflowActivityContext, key: str) -> str:
    attempt = count(key)
    if attempt < 3:
        raise RuntimeError(f"attempt {attempt} failed")
    return f"ok after {attempt}"


def nothing(ctx: WorkflowActivityContext, _: None) -> None:
    return None


def chain(ctx: DaprWorkflowContext, x: int):  # type: ignore[no-untyped-def]
    a = yield ctx.call_activity(add_one, input=x)
    b = yield ctx.call_activity(add_one, input=a)
    c = yield ctx.call_activity(add_one, input=b)
    return [a, b, c]


def fan_out(ctx: DaprWorkflowContext, n: int):  # type: ignore[no-untyped-def]
    results = yield when_all([ctx.call_activity(square, input=i) for i in range(n)])
    return sum(results)


def failing(ctx: DaprWorkflowContext, message: str):  # type: ignore[no-untyped-def]
    yield ctx.call_activity(explode, input=message)
    return "unreachable"


def catching(ctx: DaprWorkflowContext, message: str):  # type: ignore[no-untyped-def]
    try:
        yield ctx.call_activity(explode, input=message)
    except Exception as exc:  # the SDK raises TaskFailedError into the workflow
        return f"caught: {exc}"
    return "unreachable"


def retrying(ctx: DaprWorkflowContext, key: str):  # type: ignore[no-untyped-def]
    policy = RetryPolicy(first_retry_interval=timedelta(milliseconds=20), max_number_of_attempts=5)
    return (yield ctx.call_activity(flaky, input=key, retry_policy=policy))


def status_reporter(ctx: DaprWorkflowContext, _: None):  # type: ignore[no-untyped-def]
    ctx.set_custom_status("step-1")
    yield ctx.call_activity(nothing)
    ctx.set_custom_status("step-2")
    yield ctx.wait_for_external_event("go")
    return "done"


def no_activities(ctx: DaprWorkflowContext, name: str) -> str:
    return f"hello {name}"


def register(rt: WorkflowRuntime) -> None:
    for wf in (chain, fan_out, failing, catching, retrying, status_reporter, no_activities):
        rt.register_workflow(wf)
    for act in (add_one, square, explode, flaky, nothing):
        rt.register_activity(act)


@pytest.fixture(scope="module", autouse=True)
def worker(sidecar: WorkflowSidecar) -> Iterator[WorkflowRuntime]:
    with running_worker(sidecar, register) as rt:
        yield rt


def test_activity_chain_runs_each_activity_once(client: DaprWorkflowClient) -> None:
    before = calls["add_one"]
    iid = client.schedule_new_workflow(chain, input=1)
    state = client.wait_for_workflow_completion(iid, timeout_in_seconds=10)
    assert state is not None
    assert state.runtime_status == WorkflowStatus.COMPLETED
    assert state.serialized_output == "[2, 3, 4]"
    assert state.serialized_input == "1"
    assert state.name == "chain"
    assert state.failure_details is None
    assert calls["add_one"] - before == 3
    assert state.created_at <= state.last_updated_at


def test_fan_out_fan_in(client: DaprWorkflowClient) -> None:
    iid = client.schedule_new_workflow(fan_out, input=20)
    state = client.wait_for_workflow_completion(iid, timeout_in_seconds=10)
    assert state is not None and state.runtime_status == WorkflowStatus.COMPLETED
    assert state.serialized_output == str(sum(i * i for i in range(20)))


def test_workflow_without_activities(client: DaprWorkflowClient) -> None:
    iid = client.schedule_new_workflow(no_activities, input="world")
    state = client.wait_for_workflow_completion(iid, timeout_in_seconds=10)
    assert state is not None and state.serialized_output == '"hello world"'


def test_activity_failure_fails_the_workflow(client: DaprWorkflowClient) -> None:
    iid = client.schedule_new_workflow(failing, input="boom")
    state = client.wait_for_workflow_completion(iid, timeout_in_seconds=10)
    assert state is not None
    assert state.runtime_status == WorkflowStatus.FAILED
    assert state.failure_details is not None
    assert state.failure_details.error_type == "TaskFailedError"
    assert "Activity task #1 failed: boom" in state.failure_details.message


def test_activity_failure_can_be_caught(client: DaprWorkflowClient) -> None:
    iid = client.schedule_new_workflow(catching, input="bang")
    state = client.wait_for_workflow_completion(iid, timeout_in_seconds=10)
    assert state is not None and state.runtime_status == WorkflowStatus.COMPLETED
    assert "bang" in (state.serialized_output or "")


def test_retry_policy_retries_until_success(client: DaprWorkflowClient) -> None:
    iid = client.schedule_new_workflow(retrying, input="flaky-1")
    state = client.wait_for_workflow_completion(iid, timeout_in_seconds=10)
    assert state is not None and state.runtime_status == WorkflowStatus.COMPLETED
    assert state.serialized_output == '"ok after 3"'
    assert calls["flaky-1"] == 3
    kinds = [e.event_type.name for e in client.get_workflow_history(iid)]
    assert kinds.count("TASK_FAILED") == 2 and kinds.count("TIMER_FIRED") == 2


def test_custom_status_follows_the_latest_turn(client: DaprWorkflowClient) -> None:
    iid = client.schedule_new_workflow(status_reporter)

    def custom_status() -> str | None:
        state = client.get_workflow_state(iid)
        return state.serialized_custom_status if state else None

    from tests.sidecar.workflows.support import eventually

    eventually(lambda: custom_status() == "step-2")
    client.raise_workflow_event(iid, "go")
    state = client.wait_for_workflow_completion(iid, timeout_in_seconds=10)
    assert state is not None and state.serialized_custom_status == "step-2"
    unfetched = client.get_workflow_state(iid, fetch_payloads=False)
    assert unfetched is not None and unfetched.serialized_custom_status is None
    assert unfetched.serialized_output is None


def test_unknown_instance_is_none(client: DaprWorkflowClient) -> None:
    assert client.get_workflow_state("no-such-instance") is None


def test_unregistered_workflow_fails(client: DaprWorkflowClient) -> None:
    iid = client.schedule_new_workflow("not_registered")
    state = client.wait_for_workflow_completion(iid, timeout_in_seconds=10)
    assert state is not None and state.runtime_status == WorkflowStatus.FAILED
    assert state.failure_details is not None
    assert "not_registered" in state.failure_details.message
