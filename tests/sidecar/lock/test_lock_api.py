"""The distributed lock API of a real embedded sidecar with a `lock.embedded.in-memory` store: the SDK's
try_lock/unlock, raw HTTP with daprd's bodies, status codes and errors, and expiry by the dev clock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from dapr.clients import DaprClient
from dapr.clients.grpc._response import UnlockResponseStatus

from sidecar import ManualClock
from sidecar.thread import SidecarThread
from tests.harness import use_sidecar
from tests.stack import sidecar_thread

pytestmark = pytest.mark.filterwarnings("ignore:The Distributed Lock API:UserWarning")

LOCKSTORE = """\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: lockstore
spec:
  type: lock.embedded.in-memory
  version: v1
"""


@pytest.fixture(scope="module")
def sidecar(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SidecarThread, ManualClock]]:
    data: Path = tmp_path_factory.mktemp("lock")
    (data / "components").mkdir()
    (data / "components" / "lock.yaml").write_text(LOCKSTORE)
    clock = ManualClock()
    thread = sidecar_thread(
        data, app_id="lock-app", resources_paths=[data / "components"], clock=clock
    ).start()
    try:
        yield thread, clock
    finally:
        thread.stop()


def test_sdk_lock_excludes_others_until_unlocked(sidecar: tuple[SidecarThread, ManualClock]) -> None:
    thread, _ = sidecar
    use_sidecar(thread.http_port, thread.grpc_port)
    with DaprClient(f"127.0.0.1:{thread.grpc_port}") as client:
        assert client.try_lock("lockstore", "order-1", "alice", 60).success
        assert not client.try_lock("lockstore", "order-1", "bob", 60).success
        assert (
            client.unlock("lockstore", "order-1", "bob").status == UnlockResponseStatus.lock_belongs_to_others
        )
        assert client.unlock("lockstore", "order-1", "alice").status == UnlockResponseStatus.success
        assert (
            client.unlock("lockstore", "order-1", "alice").status == UnlockResponseStatus.lock_does_not_exist
        )
        with client.try_lock("lockstore", "order-2", "carol", 60) as lock:
            assert lock.success
        assert client.try_lock("lockstore", "order-2", "dave", 60).success  # released by the with-block


def test_http_lock_expires_by_the_dev_clock(sidecar: tuple[SidecarThread, ManualClock]) -> None:
    thread, clock = sidecar
    body = {"resourceId": "report", "lockOwner": "w1", "expiryInSeconds": 30}
    with httpx.Client(base_url=f"http://127.0.0.1:{thread.http_port}") as http:
        assert http.post("/v1.0-alpha1/lock/lockstore", json=body).json() == {"success": True}
        other = {**body, "lockOwner": "w2"}
        assert http.post("/v1.0-alpha1/lock/lockstore", json=other).json() == {"success": False}
        clock.advance(29)
        assert http.post("/v1.0-alpha1/lock/lockstore", json=other).json() == {"success": False}
        clock.advance(1)
        assert http.post("/v1.0-alpha1/lock/lockstore", json=other).json() == {"success": True}
        r = http.post("/v1.0-alpha1/unlock/lockstore", json={"resourceId": "report", "lockOwner": "w1"})
        assert r.json() == {"status": 2}


@pytest.mark.parametrize(
    ("path", "body", "status", "code", "message"),
    [
        (
            "lock/lockstore",
            {"resourceId": "r", "lockOwner": "o"},
            400,
            "ERR_MALFORMED_REQUEST",
            "ExpiryInSeconds is not positive in lock store lockstore",
        ),
        (
            "lock/lockstore",
            {"lockOwner": "o", "expiryInSeconds": 5},
            400,
            "ERR_MALFORMED_REQUEST",
            "ResourceId is empty in lock store lockstore",
        ),
        (
            "unlock/lockstore",
            {"resourceId": "r"},
            400,
            "ERR_MALFORMED_REQUEST",
            "LockOwner is empty in lock store lockstore",
        ),
        (
            "lock/nope",
            {"resourceId": "r", "lockOwner": "o", "expiryInSeconds": 5},
            400,
            "ERR_LOCK_STORE_NOT_FOUND",
            "lock store nope not found",
        ),
    ],
)
def test_errors_are_daprd(
    sidecar: tuple[SidecarThread, ManualClock],
    path: str,
    body: dict[str, object],
    status: int,
    code: str,
    message: str,
) -> None:
    thread, _ = sidecar
    with httpx.Client(base_url=f"http://127.0.0.1:{thread.http_port}") as http:
        r = http.post(f"/v1.0-alpha1/{path}", json=body)
    assert (r.status_code, r.json()) == (status, {"errorCode": code, "message": message})
