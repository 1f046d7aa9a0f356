"""Secrets over gRPC and HTTP within the Configuration's secret scopes, and daprd's rich error details."""

from __future__ import annotations

import grpc
import httpx
import pytest
from dapr.clients import DaprClient
from dapr.clients.exceptions import DaprGrpcError

from tests.sidecar.invoke.conftest import TOKEN, Running


def _client(node: Running) -> DaprClient:
    return DaprClient(
        address=f"127.0.0.1:{node.sidecar.grpc_port}", headers_callback=lambda: {"dapr-api-token": TOKEN}
    )


def test_grpc_secrets_within_scopes(node: Running) -> None:
    with _client(node) as client:
        assert client.get_secret("vault", "db-password").secret == {"db-password": "s3cret"}
        assert set(client.get_bulk_secret("vault").secrets) == {"db-password", "api-key"}
        assert set(client.get_bulk_secret("open").secrets) == {"db-password", "api-key", "other"}
        assert client.get_secret("open", "other").secret == {"other": "o"}
        for store, key in (("vault", "other"), ("open", "root")):
            with pytest.raises(grpc.RpcError) as denied:
                client.get_secret(store, key)
            assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert denied.value.details() == f'access denied by policy to get "{key}" from "{store}"'
        with pytest.raises(grpc.RpcError) as unknown:
            client.get_secret("nope", "x")
        assert unknown.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert unknown.value.details() == "failed finding secret store with key nope"


def test_http_secrets_within_scopes(node: Running) -> None:
    with httpx.Client(base_url=f"{node.http}/v1.0/secrets", headers={"dapr-api-token": TOKEN}) as c:
        assert c.get("/vault/api-key").json() == {"api-key": "k3y"}
        denied = c.get("/vault/root")
        assert denied.status_code == 403
        assert denied.json() == {
            "errorCode": "ERR_PERMISSION_DENIED",
            "message": 'access denied by policy to get "root" from "vault"',
        }
        assert set(c.get("/vault/bulk").json()) == {"db-password", "api-key"}
        assert c.get("/open/root").status_code == 403
        assert "root" not in c.get("/open/bulk").json()


def test_state_errors_carry_daprd_details_on_grpc(node: Running) -> None:
    with _client(node) as client, pytest.raises(DaprGrpcError) as caught:
        client.get_state("no-such-store", "k")
    err = caught.value
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.error_code() == "DAPR_STATE_NOT_FOUND"
    info = err.status_details().error_info
    assert info["domain"] == "dapr.io" and info["metadata"] == {"appID": "echo"}
    assert err.status_details().resource_info is None  # daprd skips ResourceInfo for a missing store


def test_state_errors_carry_daprd_details_on_http(node: Running) -> None:
    r = httpx.get(f"{node.http}/v1.0/state/no-such-store/k", headers={"dapr-api-token": TOKEN})
    assert r.status_code == 400
    assert r.json() == {
        "errorCode": "ERR_STATE_STORE_NOT_FOUND",
        "message": "state store no-such-store is not found",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "DAPR_STATE_NOT_FOUND",
                "domain": "dapr.io",
                "metadata": {"appID": "echo"},
            }
        ],
    }


def test_publish_errors_carry_error_info(node: Running) -> None:
    with _client(node) as client, pytest.raises(DaprGrpcError) as caught:
        client.publish_event("no-such-pubsub", "t", b"{}")
    assert caught.value.error_code() == "DAPR_PUBSUB_NOT_FOUND"


def test_basic_grpc_errors_name_their_code(node: Running) -> None:
    """daprd's `apierrors.Basic`: on gRPC only, an ErrorInfo whose reason is the error code."""
    with _client(node) as client:
        client.save_state("statestore", "k", "v")
        etag = client.get_state("statestore", "k").etag
        client.save_state("statestore", "k", "v2", etag=etag)
        with pytest.raises(DaprGrpcError) as stale:
            client.save_state("statestore", "k", "v3", etag=etag)
    err = stale.value
    assert err.code() == grpc.StatusCode.ABORTED and err.error_code() == "ERR_STATE_SAVE"


def test_unsupported_query_names_the_store(node: Running) -> None:
    r = httpx.post(f"{node.http}/v1.0/state/statestore/query", json={}, headers={"dapr-api-token": TOKEN})
    assert r.json()["details"] == [
        {
            "@type": "type.googleapis.com/google.rpc.ResourceInfo",
            "resource_type": "state",
            "resource_name": "statestore",
            "owner": "",
            "description": "",
        },
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "DAPR_STATE_QUERYING_NOT_SUPPORTED",
            "domain": "dapr.io",
            "metadata": None,
        },
    ]


def test_illegal_key_details_on_both_wires(node: Running) -> None:
    """daprd's `InvalidKeyName`: BadRequest (the key), ResourceInfo (the store), ErrorInfo."""
    with _client(node) as client, pytest.raises(DaprGrpcError) as caught:
        client.get_state("statestore", "a||b")
    err = caught.value
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and err.error_code() == "DAPR_STATE_ILLEGAL_KEY"
    details = err.status_details()
    assert details.bad_request["field_violations"] == [
        {"field": "a||b", "description": "input key/keyPrefix 'a||b' can't contain '||'"}
    ]
    assert details.resource_info["resource_type"] == "state"
    assert details.resource_info["resource_name"] == "statestore"
    r = httpx.get(f"{node.http}/v1.0/state/statestore/a||b", headers={"dapr-api-token": TOKEN})
    assert r.status_code == 400 and r.json()["errorCode"] == "ERR_MALFORMED_REQUEST"
    assert [d["@type"].rsplit(".", 1)[1] for d in r.json()["details"]] == [
        "BadRequest",
        "ResourceInfo",
        "ErrorInfo",
    ]
