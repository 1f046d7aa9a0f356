"""Service invocation through the embedded sidecar's HTTP API, raw and through the SDK's `invoke_method`."""

from __future__ import annotations

import base64

import httpx
import pytest
from dapr.clients import DaprClient
from dapr.clients.exceptions import DaprHttpError

from tests.sidecar.invoke.conftest import APP_TOKEN, TOKEN, Running

AUTH = {"dapr-api-token": TOKEN}


def test_every_verb_with_query_headers_and_body(node: Running) -> None:
    with httpx.Client(base_url=node.http, headers=AUTH) as c:
        for verb in ("GET", "POST", "PUT", "DELETE", "PATCH"):
            r = c.request(
                verb,
                "/v1.0/invoke/echo/method/orders/42",
                params={"a": "1", "b": "x y"},
                content=b"payload" if verb != "GET" else b"",
                headers={"content-type": "text/plain", "x-custom": "v", "traceparent": _TP},
            )
            assert r.status_code == 200, r.text
            seen = r.json()
            assert (seen["method"], seen["path"], seen["query"]) == (verb, "/orders/42", "a=1&b=x+y")
            assert seen["body"] == ("payload" if verb != "GET" else "")
            headers = seen["headers"]
            assert headers["x-custom"] == "v" and headers["traceparent"] == _TP
            assert headers["dapr-api-token"] == APP_TOKEN  # APP_API_TOKEN, never the caller's API token
            assert headers["dapr-caller-app-id"] == "echo" and headers["dapr-callee-app-id"] == "echo"
            if verb != "GET":
                assert headers["content-type"] == "text/plain"
            assert r.headers["x-echo"] == "yes" and r.headers["content-type"] == "application/json"


_TP = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_app_status_headers_and_body_come_back_unchanged(node: Running) -> None:
    with httpx.Client(base_url=node.http, headers=AUTH) as c:
        r = c.post("/v1.0/invoke/echo/method/teapot")
        assert (r.status_code, r.content, r.headers["x-pot"]) == (418, b"short and stout", "1")
        assert r.headers["content-type"].startswith("text/plain")


def test_dapr_app_id_header_and_basic_auth_route_any_path(node: Running) -> None:
    with httpx.Client(base_url=node.http, headers=AUTH) as c:
        r = c.put("/some/thing?x=1", headers={"dapr-app-id": "echo"}, content=b"b")
        assert r.status_code == 200
        seen = r.json()
        assert (seen["method"], seen["path"], seen["query"]) == ("PUT", "/some/thing", "x=1")
        assert "dapr-app-id" not in seen["headers"]  # daprd drops the routing header
        basic = base64.b64encode(b"dapr-app-id:echo").decode()
        r = c.get("/basic/path", headers={"Authorization": f"Basic {basic}"})
        assert r.json()["path"] == "/basic/path"
        # The header wins over an invoke path, whose whole path is then the method, as in daprd.
        r = c.get("/v1.0/invoke/other/method/x", headers={"dapr-app-id": "echo"})
        assert r.json()["path"] == "/v1.0/invoke/other/method/x"
        # A path another route serves stays that route's, even with the header.
        r = c.get("/v1.0/metadata", headers={"dapr-app-id": "echo"})
        assert r.json()["id"] == "echo"


def test_method_paths_are_normalized_as_daprd(node: Running) -> None:
    with httpx.Client(base_url=node.http, headers=AUTH) as c:
        r = c.get("/v1.0/invoke/echo/method/a/./b//c/../d/")
        assert r.json()["path"] == "/a/b/d"


def test_errors_as_daprd(node: Running) -> None:
    with httpx.Client(base_url=node.http, headers=AUTH) as c:
        other = c.get("/v1.0/invoke/other-app/method/x")
        assert other.status_code == 500
        assert other.json() == {
            "errorCode": "ERR_DIRECT_INVOKE",
            "message": "failed to invoke, id: other-app, err: couldn't find service: other-app",
        }
        external = c.get("/v1.0/invoke/http%3A%2F%2Fexample.com/method/x")
        assert external.status_code == 500 and "external endpoint http://example.com" in external.text
        none = c.get("/v1.0/invoke/echo")
        assert none.status_code == 404  # not an invoke path: the sidecar's unsupported route
        no_id = c.get("/v1.0/invoke/echo/nomethod")
        assert (no_id.status_code, no_id.json()["errorCode"]) == (404, "ERR_DIRECT_INVOKE")
        assert "failed getting app id" in no_id.json()["message"]
        unknown = c.get("/v2/unknown")
        assert (unknown.status_code, unknown.json()["errorCode"]) == (404, "ERR_NOT_FOUND")
    assert httpx.get(f"{node.http}/v1.0/invoke/echo/method/x").status_code == 401  # API token required


def test_sdk_invoke_method_over_http(node: Running) -> None:
    with DaprClient() as client:
        resp = client.invoke_method(
            "echo",
            "greet",
            data=b'{"name": "ada"}',
            content_type="application/json",
            http_verb="POST",
            http_querystring=(("lang", "en"),),
        )
    seen = resp.json()
    assert (seen["method"], seen["path"], seen["query"]) == ("POST", "/greet", "lang=en")
    assert seen["body"] == '{"name": "ada"}' and resp.status_code == 200
    assert resp.content_type == "application/json"


def test_sdk_invoke_method_reports_app_errors(node: Running) -> None:
    with DaprClient() as client, pytest.raises(DaprHttpError) as caught:
        client.invoke_method("echo", "broken", data=b"", http_verb="GET")
    assert caught.value.status_code == 500  # the app's own status, passed through
