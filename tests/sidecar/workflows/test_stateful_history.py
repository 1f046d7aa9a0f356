"""Stateful-history deltas and history propagation with the real `dapr.ext.workflow` worker.

Long workflows, a worker reconnecting mid-workflow, a worker whose cache misses, continue-as-new and
child workflows must all replay correctly when turns carry only the new events; history bytes sent
per turn stay flat. `get_propagated_history()` sees what the caller propagated.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
from dapr.ext.workflow import (
    DaprWorkflowClient,
    DaprWorkflowContext,
    PropagationScope,
    WorkflowActivityContext,
    WorkflowRuntime,
    WorkflowStatus,
)

from sidecar.clock import ManualClock
from sidecar.workflows.streams import HistoryTraffic
from tests.sidecar.workflows.support import WorkflowSidecar, eventually, fresh, running_worker


@pytest.fixture(scope="module")
def sidecar(tmp_path_factory: pytest.TempPathFactory, clock: ManualClock) -> Iterator[WorkflowSidecar]:
    served = WorkflowSidecar(tmp_path_factory.mktemp("wfs") / "sidecar.db", clock, app_id="wfapp").start()
    yield served
    served.stop()


def add_one(ctx: WorkflowActivityContext, x: int) -> int:
    return x + 1


def steps(ctx: DaprWorkflowContext, n: int):  # type: ignore[no-untyped-def]
    """n sequential activities: n + 1 turns over a history that grows by 3 events per turn."""
    value = 0
    for _ in range(n):
        value = yield ctx.call_activity(add_one, input=value)
    return value


def paused(ctx: DaprWorkflowContext, n: int):  # type: ignore[no-untyped-def]
    value = yield ctx.call_child_workflow(steps, input=n)
    ctx.set_custom_status("waiting")
    extra = yield ctx.wait_for_external_event("go")
    for _ in range(n):
        value = yield ctx.call_activity(add_one, input=value)
    return value + int(extra)


def generations(ctx: DaprWorkflowContext, state: list[int]):  # type: ignore[no-untyped-def]
    generation, total = state
    for _ in range(5):
        total = yield ctx.call_activity(add_one, input=total)
    if generation < 3:
        ctx.continue_as_new([generation + 1, total])
        return None
    return total


def parent(ctx: DaprWorkflowContext, n: int):  # type: ignore[no-untyped-def]
    results = []
    for i in range(3):
        results.append((yield ctx.call_child_workflow(steps, input=n + i)))
    return results


def inspect(ctx: WorkflowActivityContext, _: Any) -> dict[str, Any]:
    """What the activity was handed: workflows in the chain and the outputs of their add_one calls."""
    history = ctx.get_propagated_history()
    if history is None:
        return {"propagated": None}
    return {
        "scope": history.scope.name,
        "apps": history.get_app_ids(),
        "workflows": [(w.name, w.instance_id) for w in history.get_workflows()],
        "add_one": [[a.output for a in w.get_activities_by_name("add_one")] for w in history.get_workflows()],
    }


def seen_by_child(ctx: DaprWorkflowContext, scope: str):  # type: ignore[no-untyped-def]
    received = ctx.get_propagated_history()
    yield ctx.call_activity(add_one, input=10)
    own = yield ctx.call_activity(inspect, propagation=PropagationScope[scope])
    names = None if received is None else [w.name for w in received.get_workflows()]
    return {"received": names, "activity": own}


def propagating(ctx: DaprWorkflowContext, scope: str):  # type: ignore[no-untyped-def]
    first = yield ctx.call_activity(add_one, input=1)
    yield ctx.call_activity(add_one, input=first)
    plain = yield ctx.call_activity(inspect)
    own = yield ctx.call_activity(inspect, propagation=PropagationScope.OWN_HISTORY)
    child = yield ctx.call_child_workflow(
        seen_by_child,
        input=scope,
        instance_id=f"{ctx.instance_id}-child",
        propagation=PropagationScope[scope],
    )
    return {"plain": plain, "own": own, "child": child}


def register(runtime: WorkflowRuntime) -> None:
    for wf in (steps, paused, generations, parent, seen_by_child, propagating):
        runtime.register_workflow(fresh(wf))
    for act in (add_one, inspect):
        runtime.register_activity(fresh(act))


def traffic(sidecar: WorkflowSidecar) -> HistoryTraffic:
    assert sidecar.engine is not None
    return replace(sidecar.engine.history_traffic)


def run(client: DaprWorkflowClient, wf: Callable[..., Any], data: Any, instance_id: str) -> Any:
    client.schedule_new_workflow(wf, input=data, instance_id=instance_id)
    state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=60)
    assert state is not None and state.runtime_status == WorkflowStatus.COMPLETED, state
    return state


def history_bytes(client: DaprWorkflowClient, sidecar: WorkflowSidecar, instance_id: str) -> int:
    assert sidecar.engine is not None
    blobs = sidecar.call(sidecar.engine.history(instance_id))
    return sum(len(b) for b in blobs)


@pytest.mark.parametrize("stateful", [True, False], ids=["deltas", "full-history"])
def test_long_workflow_sends_flat_history(
    sidecar: WorkflowSidecar, client: DaprWorkflowClient, stateful: bool
) -> None:
    n = 120
    with running_worker(sidecar, register, disable_stateful_history=not stateful):
        before = traffic(sidecar)
        state = run(client, steps, n, f"long-{stateful}")
        after = traffic(sidecar)
    assert state.serialized_output == str(n)
    turns = after.turns - before.turns
    sent = after.past_bytes - before.past_bytes
    total = history_bytes(client, sidecar, f"long-{stateful}")
    assert turns == n + 1
    if stateful:
        # Every committed event crosses the wire about once; no turn re-sends the history.
        assert after.delta_turns - before.delta_turns == n - 1
        assert sent <= total
        assert after.max_delta_bytes < 1000  # one turn's events, however long the history
    else:
        assert after.delta_turns == before.delta_turns
        assert sent > n / 3 * total  # quadratic: each turn re-sends everything


def test_worker_reconnecting_mid_workflow_gets_full_history(
    sidecar: WorkflowSidecar, client: DaprWorkflowClient
) -> None:
    with running_worker(sidecar, register):
        client.schedule_new_workflow(paused, input=20, instance_id="reconnect")
        eventually(
            lambda: (s := client.get_workflow_state("reconnect")) and s.serialized_custom_status == "waiting",
            timeout=30,
        )
    with running_worker(sidecar, register):
        before = traffic(sidecar)
        client.raise_workflow_event("reconnect", "go", data=1000)
        state = client.wait_for_workflow_completion("reconnect", timeout_in_seconds=60)
        after = traffic(sidecar)
    assert state is not None and state.runtime_status == WorkflowStatus.COMPLETED
    assert state.serialized_output == "1040"
    full = (after.turns - after.delta_turns) - (before.turns - before.delta_turns)
    assert full == 1  # the new stream's first turn; the other 20 are deltas
    assert after.delta_turns - before.delta_turns == 20


def test_worker_cache_misses_fall_back_to_fetching_history(
    sidecar: WorkflowSidecar, client: DaprWorkflowClient
) -> None:
    """A worker that keeps one instance's history, running three interleaved workflows: most
    deltas miss its cache and it fetches the history (GetInstanceHistory); results stay right."""
    with running_worker(sidecar, register, history_cache_max_instances=1):
        before = traffic(sidecar)
        for i in range(3):
            client.schedule_new_workflow(steps, input=15 + i, instance_id=f"miss-{i}")
        states = [client.wait_for_workflow_completion(f"miss-{i}", timeout_in_seconds=60) for i in range(3)]
        after = traffic(sidecar)
    assert [s.serialized_output if s else None for s in states] == ["15", "16", "17"]
    assert after.history_fetches > before.history_fetches
    assert after.delta_turns > before.delta_turns


def test_continue_as_new_and_children_with_deltas(
    sidecar: WorkflowSidecar, client: DaprWorkflowClient
) -> None:
    with running_worker(sidecar, register):
        before = traffic(sidecar)
        can = run(client, generations, [1, 0], "gens")
        kids = run(client, parent, 10, "kids")
        after = traffic(sidecar)
    assert can.serialized_output == "15"
    assert kids.serialized_output == "[10, 11, 12]"
    assert after.delta_turns - before.delta_turns > 30


def test_propagated_history_reaches_activities_and_children(
    sidecar: WorkflowSidecar, client: DaprWorkflowClient
) -> None:
    import json

    with running_worker(sidecar, register):
        own = json.loads(run(client, propagating, "OWN_HISTORY", "prop-own").serialized_output)
        lineage = json.loads(run(client, propagating, "LINEAGE", "prop-lin").serialized_output)
    assert own["plain"] == {"propagated": None}
    assert own["own"] == {
        "scope": "OWN_HISTORY",
        "apps": ["wfapp"],
        "workflows": [["propagating", "prop-own"]],
        "add_one": [["2", "3"]],
    }
    # The child received its parent's chunk; with OWN_HISTORY it passes on only its own events.
    assert own["child"]["received"] == ["propagating"]
    assert own["child"]["activity"]["workflows"] == [["seen_by_child", "prop-own-child"]]
    assert own["child"]["activity"]["add_one"] == [["11"]]
    # With LINEAGE the activity sees the chain: the parent's chunk, then the child's.
    assert lineage["child"]["received"] == ["propagating"]
    assert lineage["child"]["activity"]["scope"] == "LINEAGE"
    assert lineage["child"]["activity"]["workflows"] == [
        ["propagating", "prop-lin"],
        ["seen_by_child", "prop-lin-child"],
    ]
    assert lineage["child"]["activity"]["add_one"] == [["2", "3"], ["11"]]
