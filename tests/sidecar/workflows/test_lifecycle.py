"""Child workflows, terminate (recursive), purge, id reuse, listing, history, patches, versions, rerun."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Iterator

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
from dapr.ext.workflow.aio import DaprWorkflowClient as AsyncWorkflowClient

from tests.sidecar.workflows.support import WorkflowSidecar, eventually, running_worker

runs: Counter[str] = Counter()
lock = threading.Lock()


def echo(ctx: WorkflowActivityContext, value: str) -> str:
    with lock:
        runs[value] += 1
    return value


def shout(ctx: WorkflowActivityContext, value: str) -> str:
    return value.upper()


def child(ctx: DaprWorkflowContext, value: str):  # type: ignore[no-untyped-def]
    if value == "fail":
        raise ValueError("child failed")
    return (yield ctx.call_activity(shout, input=value))


def parent(ctx: DaprWorkflowContext, values: list[str]):  # type: ignore[no-untyped-def]
    results = []
    for value in values:
        try:
            results.append((yield ctx.call_child_workflow(child, input=value)))
        except Exception as exc:
            results.append(f"error: {exc}")
    return results


def blocked(ctx: DaprWorkflowContext, _: None):  # type: ignore[no-untyped-def]
    yield ctx.wait_for_external_event("never")


def blocked_parent(ctx: DaprWorkflowContext, child_id: str):  # type: ignore[no-untyped-def]
    yield ctx.call_child_workflow(blocked, instance_id=child_id)


def quick(ctx: DaprWorkflowContext, value: int) -> int:
    return value


def patched(ctx: DaprWorkflowContext, _: None):  # type: ignore[no-untyped-def]
    if ctx.is_patched("shout-instead"):
        result = yield ctx.call_activity(shout, input="patched")
    else:
        result = yield ctx.call_activity(echo, input="patched")
    yield ctx.wait_for_external_event("go")
    return result


def versioned_v2(ctx: DaprWorkflowContext, _: None):  # type: ignore[no-untyped-def]
    yield ctx.wait_for_external_event("go")
    return "v2"


def three_steps(ctx: DaprWorkflowContext, prefix: str):  # type: ignore[no-untyped-def]
    a = yield ctx.call_activity(echo, input=f"{prefix}-a")
    b = yield ctx.call_activity(echo, input=f"{prefix}-b")
    return [a, b]


def register(rt: WorkflowRuntime) -> None:
    for wf in (child, parent, blocked, blocked_parent, quick, patched, three_steps):
        rt.register_workflow(wf)
    rt.register_versioned_workflow(versioned_v2, name="versioned", version_name="v2", is_latest=True)
    rt.register_activity(echo)
    rt.register_activity(shout)


@pytest.fixture(scope="module", autouse=True)
def worker(sidecar: WorkflowSidecar) -> Iterator[WorkflowRuntime]:
    with running_worker(sidecar, register) as rt:
        yield rt


def test_child_workflows_complete_and_fail(client: DaprWorkflowClient) -> None:
    iid = client.schedule_new_workflow(parent, input=["a", "fail", "b"])
    state = client.wait_for_workflow_completion(iid, timeout_in_seconds=10)
    assert state is not None and state.runtime_status == WorkflowStatus.COMPLETED
    assert state.serialized_output is not None
    assert '"A"' in state.serialized_output and '"B"' in state.serialized_output
    assert "child failed" in state.serialized_output
    child_state = client.get_workflow_state(f"{iid}:0001")  # the SDK's default child id
    assert child_state is not None and child_state.runtime_status == WorkflowStatus.COMPLETED


def test_terminate_recursive_terminates_children(client: DaprWorkflowClient) -> None:
    iid = client.schedule_new_workflow(blocked_parent, input="kid-recursive")
    eventually(lambda: client.get_workflow_state("kid-recursive"))
    client.wait_for_workflow_start("kid-recursive", timeout_in_seconds=10)
    client.terminate_workflow(iid, output="stopped")  # recursive by default; blocks until terminal
    state = client.get_workflow_state(iid)
    assert state is not None and state.runtime_status == WorkflowStatus.TERMINATED
    assert state.serialized_output == '"stopped"'
    kid = client.wait_for_workflow_completion("kid-recursive", timeout_in_seconds=10)
    assert kid is not None and kid.runtime_status == WorkflowStatus.TERMINATED


def test_terminate_non_recursive_leaves_children(client: DaprWorkflowClient) -> None:
    iid = client.schedule_new_workflow(blocked_parent, input="kid-alone")
    eventually(lambda: client.get_workflow_state("kid-alone"))
    client.wait_for_workflow_start("kid-alone", timeout_in_seconds=10)
    client.terminate_workflow(iid, recursive=False)
    kid = client.get_workflow_state("kid-alone")
    assert kid is not None and kid.runtime_status == WorkflowStatus.RUNNING
    client.terminate_workflow("kid-alone")
    client.terminate_workflow("kid-alone")  # terminating a terminal instance is a no-op
    kid = client.get_workflow_state("kid-alone")
    assert kid is not None and kid.runtime_status == WorkflowStatus.TERMINATED


def test_purge_removes_terminal_instances_recursively(client: DaprWorkflowClient) -> None:
    iid = client.schedule_new_workflow(blocked_parent, input="kid-purge")
    client.wait_for_workflow_start("kid-purge", timeout_in_seconds=10)
    with pytest.raises(grpc.RpcError) as running:
        client.purge_workflow(iid)
    assert running.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    client.terminate_workflow(iid)
    client.wait_for_workflow_completion("kid-purge", timeout_in_seconds=10)  # cascades after
    client.purge_workflow(iid)
    assert client.get_workflow_state(iid) is None
    assert client.get_workflow_state("kid-purge") is None
    with pytest.raises(grpc.RpcError) as gone:
        client.get_workflow_history(iid)
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND


def test_instance_id_reuse_rules(client: DaprWorkflowClient) -> None:
    client.schedule_new_workflow(blocked, instance_id="reused")
    with pytest.raises(grpc.RpcError) as active:
        client.schedule_new_workflow(blocked, instance_id="reused")
    assert active.value.code() == grpc.StatusCode.ALREADY_EXISTS
    client.terminate_workflow("reused")
    client.schedule_new_workflow(quick, instance_id="reused", input=7)
    state = client.wait_for_workflow_completion("reused", timeout_in_seconds=10)
    assert state is not None and state.name == "quick" and state.serialized_output == "7"
    history = client.get_workflow_history("reused")
    assert sum(e.event_type == WorkflowHistoryEventType.EXECUTION_STARTED for e in history) == 1


def test_listing_pages_through_every_instance(client: DaprWorkflowClient) -> None:
    ids = {client.schedule_new_workflow(quick, input=i, instance_id=f"list-{i:02d}") for i in range(7)}
    page = client.list_workflow_instance_ids(page_size=3)
    assert len(page.instance_ids) == 3 and page.continuation_token is not None
    listed = set(client.iter_workflow_instance_ids(page_size=2))
    assert ids <= listed
    everything = client.list_workflow_instance_ids()
    assert everything.continuation_token is None and ids <= set(everything.instance_ids)


def test_history_reads_oldest_first(client: DaprWorkflowClient) -> None:
    iid = client.schedule_new_workflow(three_steps, input="hist")
    client.wait_for_workflow_completion(iid, timeout_in_seconds=10)
    history = client.get_workflow_history(iid)
    kinds = [e.event_type for e in history]
    assert kinds[:3] == [
        WorkflowHistoryEventType.WORKFLOW_STARTED,
        WorkflowHistoryEventType.EXECUTION_STARTED,
        WorkflowHistoryEventType.TASK_SCHEDULED,
    ]
    assert kinds[-1] == WorkflowHistoryEventType.EXECUTION_COMPLETED
    scheduled = [e for e in history if e.event_type == WorkflowHistoryEventType.TASK_SCHEDULED]
    assert [(e.event_id, e.name) for e in scheduled] == [(1, "echo"), (2, "echo")]
    assert all(e.is_rerunnable for e in scheduled)


def test_patch_survives_replay(client: DaprWorkflowClient) -> None:
    iid = client.schedule_new_workflow(patched)
    eventually(
        lambda: any(
            e.event_type == WorkflowHistoryEventType.TASK_COMPLETED for e in client.get_workflow_history(iid)
        )
    )
    client.raise_workflow_event(iid, "go")
    state = client.wait_for_workflow_completion(iid, timeout_in_seconds=10)
    assert state is not None and state.runtime_status == WorkflowStatus.COMPLETED, state
    assert state.serialized_output == '"PATCHED"'


def test_versioned_workflow_replays_its_version(client: DaprWorkflowClient) -> None:
    iid = client.schedule_new_workflow("versioned")
    client.wait_for_workflow_start(iid, timeout_in_seconds=10)
    client.raise_workflow_event(iid, "go")
    state = client.wait_for_workflow_completion(iid, timeout_in_seconds=10)
    assert state is not None and state.serialized_output == '"v2"'


def test_rerun_from_an_activity(client: DaprWorkflowClient) -> None:
    iid = client.schedule_new_workflow(three_steps, input="rerun")
    client.wait_for_workflow_completion(iid, timeout_in_seconds=10)
    before = runs["rerun-b"], runs["rerun-a"]
    new_id = client.rerun_workflow_from_event(iid, 2, new_instance_id="rerun-copy", input="again")
    assert new_id == "rerun-copy"
    state = client.wait_for_workflow_completion(new_id, timeout_in_seconds=10)
    assert state is not None and state.runtime_status == WorkflowStatus.COMPLETED
    assert state.serialized_output == '["rerun-a", "again"]'
    assert (runs["rerun-b"], runs["rerun-a"]) == before  # only the rerun activity ran again
    with pytest.raises(grpc.RpcError) as taken:
        client.rerun_workflow_from_event(iid, 2, new_instance_id="rerun-copy")
    assert taken.value.code() == grpc.StatusCode.ALREADY_EXISTS
    with pytest.raises(grpc.RpcError) as bad_event:
        client.rerun_workflow_from_event(iid, 99)
    assert bad_event.value.code() == grpc.StatusCode.NOT_FOUND


def test_raise_to_unknown_instance_names_it(client: DaprWorkflowClient) -> None:
    with pytest.raises(grpc.RpcError) as missing:
        client.raise_workflow_event("nobody-home", "x", data=1)
    assert "no such instance exists" in (missing.value.details() or "")


def test_async_client(sidecar: WorkflowSidecar) -> None:
    async def scenario() -> None:
        aclient = AsyncWorkflowClient(host="127.0.0.1", port=str(sidecar.port))  # has no close()
        iid = await aclient.schedule_new_workflow(blocked)
        started = await aclient.wait_for_workflow_start(iid, timeout_in_seconds=10)
        assert started is not None and started.runtime_status == WorkflowStatus.RUNNING
        await aclient.raise_workflow_event(iid, "never", data="now")
        state = await aclient.wait_for_workflow_completion(iid, timeout_in_seconds=10)
        assert state is not None and state.runtime_status == WorkflowStatus.COMPLETED
        await aclient.purge_workflow(iid)
        assert await aclient.get_workflow_state(iid) is None
        ids = [i async for i in aclient.iter_workflow_instance_ids(page_size=5)]
        assert iid not in ids

    asyncio.run(scenario())
