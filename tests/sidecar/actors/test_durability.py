"""kill -9 of a sidecar process: reminders and state written before the kill are there after restart."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from dapr.clients import DaprClient

from tests.harness import wait_for
from tests.sidecar.actors.actor_app import RECORD
from tests.sidecar.actors.conftest import Stack
from tests.stack import SidecarProcess


@pytest.fixture
def proc(stack: Stack, tmp_path: Path) -> Iterator[SidecarProcess]:
    p = SidecarProcess(tmp_path, app_id="durable", app_port=stack.app.port).start()
    yield p
    p.stop()


def test_reminder_survives_kill9_fires_after_restart_never_early(proc: SidecarProcess) -> None:
    actor_id = f"dur-{uuid.uuid4().hex[:8]}"
    actor = f"{proc.base}/actors/CounterActor/{actor_id}"
    wait_for(lambda: httpx.get(f"{proc.base}/healthz").status_code == 204, timeout=30)
    registered = time.time()
    assert httpx.put(f"{actor}/reminders/keep", json={"dueTime": "3s"}).status_code == 204
    assert httpx.put(f"{actor}/reminders/gone", json={"dueTime": "1s"}).status_code == 204
    assert httpx.delete(f"{actor}/reminders/gone").status_code == 204
    proc.kill9()
    proc.start()
    fires = wait_for(lambda: RECORD.reminder_fires(actor_id, "keep"), timeout=30)
    assert fires[0][3] >= registered + 3.0  # never early
    # "gone" was due before "keep": had it survived, it would have fired first.
    assert RECORD.reminder_fires(actor_id, "gone") == []
    time.sleep(0.5)
    assert len(RECORD.reminder_fires(actor_id, "keep")) == 1


def test_state_survives_kill9(proc: SidecarProcess) -> None:
    key = f"k-{uuid.uuid4().hex[:8]}"
    with DaprClient(address=f"127.0.0.1:{proc.grpc}") as client:
        client.save_state("statestore", key, "2025-01-01 file taxes")
    proc.kill9()
    proc.start()
    with DaprClient(address=f"127.0.0.1:{proc.grpc}") as client:
        got = client.get_state("statestore", key)
    assert got.data == b"2025-01-01 file taxes"
