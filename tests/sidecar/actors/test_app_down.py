"""A reminder that falls due while the app is down waits for the app instead of spending its retries (as in
daprd, where an unhealthy app leaves placement): it fires once the app is back, never lost."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx

from sidecar import ManualClock
from tests.harness import ServedApp, bound_socket, use_sidecar, wait_for
from tests.sidecar.actors.actor_app import RECORD, build_app
from tests.stack import sidecar_thread


def test_a_reminder_due_while_the_app_is_down_fires_when_it_is_back(tmp_path: Path) -> None:
    app_sock = bound_socket()
    port = app_sock.getsockname()[1]
    clock = ManualClock()
    sidecar = sidecar_thread(tmp_path, app_id="app-down", app_port=port, clock=clock, dev_clock=True).start()
    use_sidecar(sidecar.http_port, sidecar.grpc_port)
    app = ServedApp(build_app(), app_sock).start()
    try:
        sidecar.wait_ready()
        actor_id = f"down-{uuid.uuid4().hex[:8]}"
        base = f"http://127.0.0.1:{sidecar.http_port}/v1.0/actors/CounterActor/{actor_id}"
        assert httpx.put(f"{base}/reminders/wake", json={"dueTime": "10s"}).status_code == 204
        app.stop()
        clock.advance(11)
        # Far more than the scheduler's 3 retries at 1 s, in clock time and in wall time.
        for _ in range(6):
            clock.advance(2)
            time.sleep(0.2)
        assert RECORD.reminder_fires(actor_id, "wake") == []
        app = ServedApp(build_app(), bound_socket(port=port)).start()
        fires = wait_for(lambda: RECORD.reminder_fires(actor_id, "wake"), timeout=10)
        assert len(fires) == 1
        time.sleep(0.3)
        assert len(RECORD.reminder_fires(actor_id, "wake")) == 1
    finally:
        sidecar.stop()
        app.stop()
