"""One dev clock per host: sidecars with the dev clock on one registry (each with a clock of its own here)
move together; an advance on one steps through the others' due instants, and a sidecar joining later takes
the host's time."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from dapr.ext.workflow import DaprWorkflowClient, DaprWorkflowContext, WorkflowRuntime, WorkflowStatus

from sidecar import ManualClock
from sidecar.thread import SidecarThread
from tests.sidecar.workflows.support import close_client, running_worker
from tests.stack import sidecar_thread


def nap(ctx: DaprWorkflowContext, hours: int):  # type: ignore[no-untyped-def]
    yield ctx.create_timer(dt.timedelta(hours=hours))
    return ctx.current_utc_datetime.isoformat()


def register(rt: WorkflowRuntime) -> None:
    rt.register_workflow(nap)


def _sidecar(tmp: Path, app_id: str) -> SidecarThread:
    return sidecar_thread(
        tmp / app_id, app_id=app_id, clock=ManualClock(), registry_dir=tmp / "registry"
    ).start()


def _clock(sidecar: SidecarThread) -> dict[str, float]:
    reply = httpx.get(f"http://127.0.0.1:{sidecar.http_port}/v1.0-dev/clock", timeout=10)
    reply.raise_for_status()
    body: dict[str, float] = reply.json()
    return body


def _advance(sidecar: SidecarThread, seconds: float) -> dict[str, float]:
    url = f"http://127.0.0.1:{sidecar.http_port}/v1.0-dev/clock/advance"
    reply = httpx.post(url, json={"seconds": seconds}, timeout=60)
    assert reply.status_code == 200, reply.text
    body: dict[str, float] = reply.json()
    return body


@pytest.fixture()
def pair(tmp_path: Path) -> Iterator[tuple[SidecarThread, SidecarThread, Path]]:
    a, b = _sidecar(tmp_path, "alpha"), _sidecar(tmp_path, "beta")
    try:
        yield a, b, tmp_path
    finally:
        a.stop()
        b.stop()


def test_an_advance_on_one_sidecar_moves_the_others(pair: tuple[SidecarThread, SidecarThread, Path]) -> None:
    a, b, tmp = pair
    _advance(a, 3600)
    assert _clock(b)["offset_seconds"] == pytest.approx(3600, abs=1)
    _advance(b, 60)
    assert _clock(a)["offset_seconds"] == pytest.approx(3660, abs=1)
    late = _sidecar(tmp, "gamma")  # joins the host's time
    try:
        assert _clock(late)["offset_seconds"] == pytest.approx(3660, abs=1)
    finally:
        late.stop()


def test_an_advance_steps_through_another_sidecars_due_instants(
    pair: tuple[SidecarThread, SidecarThread, Path],
) -> None:
    a, b, _ = pair
    with running_worker(b.grpc_port, register):
        client = DaprWorkflowClient(host="127.0.0.1", port=str(b.grpc_port))
        try:
            iid = client.schedule_new_workflow(nap, input=1)
            started = client.wait_for_workflow_start(iid, timeout_in_seconds=10)
            assert started is not None
            begun = _clock(b)["now"]
            done = _advance(a, 3 * 3600)  # through alpha: beta's timer is one of the steps
            assert done["steps"] >= 1
            state = client.wait_for_workflow_completion(iid, timeout_in_seconds=10)
            assert state is not None and state.runtime_status == WorkflowStatus.COMPLETED
            woke = dt.datetime.fromisoformat((state.serialized_output or "").strip('"'))
            # It woke at its instant (an hour in), not at the end of the advance (three hours in).
            assert woke.replace(tzinfo=dt.UTC).timestamp() == pytest.approx(begun + 3600, abs=5)
        finally:
            close_client(client)
