"""daprd's shutdown API (`POST /v1.0/shutdown`, gRPC `Shutdown`): a graceful stop, or with
`dapr-force-shutdown: true` an immediate exit with status 1; guarded by the API token like every route."""

from __future__ import annotations

import fcntl
from pathlib import Path

import grpc
import httpx
import pytest
from dapr.proto.runtime.v1 import dapr_pb2, dapr_pb2_grpc

from tests.harness import wait_for
from tests.stack import SidecarProcess, sidecar_thread


def _refused(url: str) -> bool:
    try:
        httpx.get(url, timeout=1.0)
    except httpx.TransportError:
        return True
    return False


def test_http_shutdown_needs_the_token_then_stops_the_sidecar_gracefully(tmp_path: Path) -> None:
    sidecar = sidecar_thread(tmp_path, app_id="quit", api_token="s3cret").start()
    try:
        base = f"http://127.0.0.1:{sidecar.http_port}/v1.0"
        denied = httpx.post(f"{base}/shutdown")
        assert denied.status_code == 401
        assert httpx.get(f"{base}/healthz").status_code == 204  # still up
        reply = httpx.post(f"{base}/shutdown", headers={"dapr-api-token": "s3cret"})
        assert reply.status_code == 204 and reply.content == b""
        wait_for(lambda: _refused(f"{base}/healthz"), timeout=15)
        wait_for(lambda: _lock_free(tmp_path), timeout=15)
    finally:
        sidecar.stop()


def _lock_free(data: Path) -> bool:
    """The data dir's engine lock is released (a graceful stop's last step): another engine could start."""
    with (data / "engine.lock").open("a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(f, fcntl.LOCK_UN)
        return True


@pytest.mark.parametrize(("force", "status"), [(False, 0), (True, 1)])
def test_grpc_shutdown_exits_the_process(tmp_path: Path, force: bool, status: int) -> None:
    proc = SidecarProcess(tmp_path / "data", app_id="quit").start()
    try:
        metadata = [("dapr-force-shutdown", "true")] if force else []
        with grpc.insecure_channel(f"127.0.0.1:{proc.grpc}") as channel:
            dapr_pb2_grpc.DaprStub(channel).Shutdown(
                dapr_pb2.ShutdownRequest(), metadata=metadata, timeout=10
            )
        assert proc.proc is not None
        assert proc.proc.wait(20) == status
    finally:
        proc.stop()
