"""Service invocation between two sidecars that found each other in the host registry: the caller's
sidecar forwards to the callee's, which checks its access control list against the caller's app id and
calls its own app (daprd: sidecar -> remote sidecar -> app)."""

from __future__ import annotations

import os
import sqlite3
import subprocess

import grpc
import httpx
import pytest
from dapr.clients import DaprClient
from dapr.clients.grpc.client import DaprGrpcClient

from tests.harness import use_sidecar
from tests.sidecar.hosts.conftest import Node

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_http_invocation_reaches_the_other_app(pair: tuple[Node, Node]) -> None:
    front, back = pair
    with httpx.Client(base_url=front.http, headers=front.headers) as c:
        reply = c.post(
            "/v1.0/invoke/back/method/orders/7?x=1",
            content=b"hello",
            headers={"content-type": "text/plain", "traceparent": TRACEPARENT, "x-mine": "m"},
        )
    assert reply.status_code == 200, reply.text
    assert reply.headers["x-echo"] == "yes"  # the app's own reply headers come back
    seen = reply.json()
    assert (seen["method"], seen["path"], seen["query"], seen["body"]) == (
        "POST",
        "/orders/7",
        "x=1",
        "hello",
    )
    hdrs = seen["headers"]
    assert (hdrs["dapr-caller-app-id"], hdrs["dapr-callee-app-id"]) == ("front", "back")
    assert hdrs["traceparent"] == TRACEPARENT
    assert hdrs["x-mine"] == "m"
    assert hdrs["content-type"] == "text/plain"
    assert not any(k.startswith("dapr-internal") for k in hdrs)  # the sidecars' hop stays theirs
    assert "dapr-api-token" not in hdrs


def test_a_chunked_request_body_crosses_as_a_plain_one(pair: tuple[Node, Node]) -> None:
    """The sidecars' hop frames the body itself: the caller's framing headers stay behind."""
    front, _ = pair
    with httpx.Client(base_url=front.http, headers=front.headers) as c:
        reply = c.post("/v1.0/invoke/back/method/orders/8", content=iter([b"chu", b"nked"]))
    assert reply.status_code == 200, reply.text
    seen = reply.json()
    assert seen["body"] == "chunked"
    assert "transfer-encoding" not in seen["headers"]


def test_the_callee_denies_by_the_callers_app_id(pair: tuple[Node, Node]) -> None:
    front, back = pair
    with httpx.Client(base_url=front.http, headers=front.headers) as c:
        denied = c.get("/v1.0/invoke/back/method/admin/x")
        via_header = c.get("/admin/x", headers={"dapr-app-id": "back"})
    assert denied.status_code == 403
    assert denied.json() == {
        "errorCode": "ERR_DIRECT_INVOKE",
        "message": "failed to invoke, id: back, err: rpc error: code = PermissionDenied desc = access "
        "control policy has denied access to id: spiffe://public/ns/default/front operation: admin/x "
        "verb: GET",
    }
    assert via_header.status_code == 403
    # The other way round: back has no list for calls into front, front has none at all.
    with httpx.Client(base_url=back.http, headers=back.headers) as c:
        assert c.get("/v1.0/invoke/front/method/admin/x").status_code == 200


def test_a_caller_without_the_host_secret_cannot_claim_an_app_id(pair: tuple[Node, Node]) -> None:
    _, back = pair
    spoof = {"dapr-internal-caller-app-id": "front", "dapr-internal-verb": "GET"}
    with httpx.Client(base_url=back.http) as c:
        assert c.post("/v1.0-internal/invoke/orders/1", headers=spoof).status_code == 401
        wrong = {**spoof, "dapr-internal-host-secret": "guess"}
        assert c.post("/v1.0-internal/invoke/orders/1", headers=wrong).status_code == 401
        # Nor does the caller-id header of the public route count: back's token, own app, no ACL.
        seen = c.get(
            "/v1.0/invoke/back/method/x", headers={**back.headers, "dapr-caller-app-id": "front"}
        ).json()
    assert seen["headers"]["dapr-caller-app-id"] == "back"


def test_grpc_invoke_service_across(pair: tuple[Node, Node]) -> None:
    front, _ = pair
    use_sidecar(front.sidecar.http_port, front.sidecar.grpc_port, front.token)  # the client's health probe
    with DaprClient(
        address=f"127.0.0.1:{front.sidecar.grpc_port}",
        headers_callback=lambda: {"dapr-api-token": front.token},
    ) as client:
        reply = DaprGrpcClient.invoke_method(
            client, "back", "orders/9", data=b"{}", http_verb="PUT", metadata=(("traceparent", TRACEPARENT),)
        )
        seen = reply.json()
        assert (seen["method"], seen["path"]) == ("PUT", "/orders/9")
        assert seen["headers"]["dapr-caller-app-id"] == "front"
        assert seen["headers"]["traceparent"] == TRACEPARENT
        assert reply.headers["dapr-http-status"] == ["200"]
        with pytest.raises(grpc.RpcError) as denied:
            DaprGrpcClient.invoke_method(client, "back", "admin", data=b"", http_verb="GET")
    assert "code = PermissionDenied desc = access control policy has denied" in str(denied.value.details())


def test_unknown_and_exited_apps_are_not_found(pair: tuple[Node, Node]) -> None:
    front, _ = pair
    registry = front.sidecar.sidecar.config.registry_dir
    assert registry is not None
    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid that no longer runs: the entry of a sidecar killed with -9
    with sqlite3.connect(registry / "registry.db") as db:
        db.execute(
            "INSERT INTO sidecars (instance, app_id, namespace, host, http_port, grpc_port, pid)"
            " VALUES ('ghost-1', 'ghost', 'default', '127.0.0.1', 1, 2, ?)",
            (gone.pid,),
        )
    assert not _pid_alive(gone.pid)
    with httpx.Client(base_url=front.http, headers=front.headers) as c:
        for app_id in ("ghost", "nobody"):
            reply = c.get(f"/v1.0/invoke/{app_id}/method/x")
            assert reply.status_code == 500
            assert reply.json() == {
                "errorCode": "ERR_DIRECT_INVOKE",
                "message": f"failed to invoke, id: {app_id}, err: couldn't find service: {app_id}",
            }
    with sqlite3.connect(registry / "registry.db") as db:
        assert db.execute("SELECT count(*) FROM sidecars WHERE app_id = 'ghost'").fetchone() == (0,)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
