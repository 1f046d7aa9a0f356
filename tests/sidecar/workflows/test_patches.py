"""Workflow patches (`ctx.is_patched`) across an upgrade: new branch on a fresh run, old one on replay.

The SDK decides from history: a patch named in a past turn's WorkflowStarted `version.patches` is taken on
replay; one not named there is refused while replaying (the history was made by code without it) and taken
once the workflow runs new code. The sidecar's part, as durabletask-go's, is to store the worker's
`WorkflowResponse.version` on the turn's WorkflowStarted event and hand it back in every later turn.
"""

from __future__ import annotations

import dapr.ext.workflow._durabletask.internal.orchestrator_service_pb2_grpc as stubs
import dapr.ext.workflow._durabletask.internal.protos as pb
import grpc
from dapr.ext.workflow import (
    DaprWorkflowClient,
    DaprWorkflowContext,
    WorkflowActivityContext,
    WorkflowHistoryEventType,
    WorkflowRuntime,
    WorkflowStatus,
)

from tests.sidecar.workflows.support import WorkflowSidecar, eventually, fresh, running_worker

NAME = "upgraded"


def lower(ctx: WorkflowActivityContext, value: str) -> str:
    return value.lower()


def upper(ctx: WorkflowActivityContext, value: str) -> str:
    return value.upper()


def before_patch(ctx: DaprWorkflowContext, value: str):  # type: ignore[no-untyped-def]
    first = yield ctx.call_activity(lower, input=value)
    yield ctx.wait_for_external_event("go")
    return [first, (yield ctx.call_activity(lower, input=value))]


def after_patch(ctx: DaprWorkflowContext, value: str):  # type: ignore[no-untyped-def]
    if ctx.is_patched("upper"):
        first = yield ctx.call_activity(upper, input=value)
    else:
        first = yield ctx.call_activity(lower, input=value)
    yield ctx.wait_for_external_event("go")
    # Asked again after the wait, in a later turn: the answer is the one the run started with.
    second_fn = upper if ctx.is_patched("upper") else lower
    return [first, (yield ctx.call_activity(second_fn, input=value))]


def registrar(workflow: object):  # type: ignore[no-untyped-def]
    def register(rt: WorkflowRuntime) -> None:
        rt.register_workflow(fresh(workflow), name=NAME)  # type: ignore[arg-type]
        rt.register_activity(fresh(lower), name="lower")
        rt.register_activity(fresh(upper), name="upper")

    return register


def started_and_ran_first_step(client: DaprWorkflowClient, value: str) -> str:
    iid = client.schedule_new_workflow(NAME, input=value)
    eventually(
        lambda: any(
            e.event_type == WorkflowHistoryEventType.TASK_COMPLETED for e in client.get_workflow_history(iid)
        )
    )
    return iid


def finish(client: DaprWorkflowClient, iid: str) -> str | None:
    client.raise_workflow_event(iid, "go")
    state = client.wait_for_workflow_completion(iid, timeout_in_seconds=10)
    assert state is not None and state.runtime_status == WorkflowStatus.COMPLETED, state
    output: str | None = state.serialized_output
    return output


def test_history_from_before_the_patch_replays_the_old_branch(
    sidecar: WorkflowSidecar, client: DaprWorkflowClient
) -> None:
    with running_worker(sidecar, registrar(before_patch)):
        old = started_and_ran_first_step(client, "Mixed")
    with running_worker(sidecar, registrar(after_patch)):  # the upgrade, mid-run
        new = started_and_ran_first_step(client, "Mixed")
        assert finish(client, old) == '["mixed", "mixed"]'  # no non-determinism error, old branch kept
        assert finish(client, new) == '["MIXED", "MIXED"]'


def test_patch_is_recorded_on_the_turn_that_first_took_it(
    sidecar: WorkflowSidecar, client: DaprWorkflowClient
) -> None:
    with running_worker(sidecar, registrar(after_patch)):
        iid = started_and_ran_first_step(client, "x")
        assert finish(client, iid) == '["X", "X"]'
    with grpc.insecure_channel(sidecar.address) as channel:
        stub = stubs.TaskHubSidecarServiceStub(channel)  # type: ignore[no-untyped-call]
        events = stub.GetInstanceHistory(pb.GetInstanceHistoryRequest(instanceId=iid)).events
    started = [list(e.workflowStarted.version.patches) for e in events if e.HasField("workflowStarted")]
    # GO stores the response's version on the turn's OrchestratorStarted: the first turn asked and took it;
    # the later turns replayed it from history and report it again.
    # The SDK lists a patch once per `is_patched` call that took it (twice from the second turn on).
    assert started[0] == ["upper"], started
    assert all(set(p) == {"upper"} for p in started), started
