"""The Configuration's `accessControl`, applied by the callee sidecar as daprd's pkg/acl does.

Two embedded sidecars that find each other in a host registry (sidecar.hosts): `front` calls `back`,
and `back` checks its access control list against front's app id.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sidecar.daprconfig import load_configuration
from sidecar.invoke import AccessControlList, CallerIdentity
from tests.sidecar.invoke.conftest import TOKEN, Running, running

ACL_CONFIG = """\
apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata:
  name: back-config
spec:
  accessControl:
    defaultAction: deny
    trustDomain: "public"
    policies:
    - appId: front
      defaultAction: deny
      trustDomain: "public"
      namespace: "default"
      operations:
      - name: /orders/*
        httpVerb: ["POST", "GET"]
        action: allow
      - name: /admin/**
        httpVerb: ["*"]
        action: deny
      - name: /status
        httpVerb: ["*"]
        action: allow
    - appId: auditor
      defaultAction: allow
      trustDomain: "elsewhere"
      namespace: "default"
"""


def _acl(text: str, tmp: Path) -> AccessControlList:
    path = tmp / "c.yaml"
    path.write_text(text)
    spec = load_configuration(path).access_control
    assert spec is not None
    return AccessControlList(spec)


def test_policy_evaluation_as_daprd(tmp_path: Path) -> None:
    acl = _acl(ACL_CONFIG, tmp_path)
    front = CallerIdentity("front")
    assert acl.check(front, "orders/1", "POST")[0]
    assert acl.check(front, "ORDERS/1", "GET")[0]  # HTTP operations match case-insensitively
    assert not acl.check(front, "orders/1", "DELETE")[0]  # verb not listed: the app's default
    assert not acl.check(front, "orders/1/lines", "POST")[0]  # /* is one segment only
    assert not acl.check(front, "admin/a/b", "GET")[0]
    assert acl.check(front, "status", "PUT")[0]
    assert not acl.check(front, "other", "GET")[0]
    assert not acl.check(CallerIdentity("stranger"), "status", "GET")[0]  # no policy: global default
    # A trust domain that does not match the policy's falls back to the global default.
    assert not acl.check(CallerIdentity("auditor"), "anything", "GET")[0]
    assert acl.check(CallerIdentity("auditor", trust_domain="elsewhere"), "anything", "GET")[0]
    _, message = acl.check(front, "other", "GET")
    assert message == (
        "access control policy has denied access to id: spiffe://public/ns/default/front "
        "operation: other verb: GET"
    )


def test_configuration_checks(tmp_path: Path) -> None:
    incomplete = ACL_CONFIG.replace('      namespace: "default"\n      operations', "      operations")
    with pytest.raises(ValueError, match="trustDomain and namespace"):
        _acl(incomplete, tmp_path)
    no_default = ACL_CONFIG.replace("    defaultAction: deny\n    trustDomain", "    trustDomain")
    assert _acl(no_default, tmp_path).spec.default_action == "deny"  # policies without a default: deny
    path = tmp_path / "none.yaml"
    path.write_text("apiVersion: dapr.io/v1alpha1\nkind: Configuration\nspec: {}\n")
    assert load_configuration(path).access_control is None


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Running, Running]]:
    registry = tmp_path_factory.mktemp("registry")
    with (
        running(tmp_path_factory.mktemp("back"), "back", ACL_CONFIG, registry_dir=registry) as back,
        running(tmp_path_factory.mktemp("front"), "front", registry_dir=registry) as front,
    ):
        yield front, back


def test_callee_allows_and_denies(pair: tuple[Running, Running]) -> None:
    front, back = pair
    with httpx.Client(base_url=front.http, headers={"dapr-api-token": TOKEN}) as c:
        ok = c.post("/v1.0/invoke/back/method/orders/9", content=b"x")
        assert ok.status_code == 200
        seen = ok.json()
        assert seen["path"] == "/orders/9"
        hdrs = seen["headers"]
        assert (hdrs["dapr-caller-app-id"], hdrs["dapr-callee-app-id"]) == ("front", "back")
        denied = c.delete("/v1.0/invoke/back/method/orders/9")
        assert denied.status_code == 403
        assert denied.json() == {
            "errorCode": "ERR_DIRECT_INVOKE",
            "message": "failed to invoke, id: back, err: rpc error: code = PermissionDenied desc = access "
            "control policy has denied access to id: spiffe://public/ns/default/front operation: orders/9 "
            "verb: DELETE",
        }
        assert c.get("/admin/x", headers={"dapr-app-id": "back"}).status_code == 403
        # Its own app id stays a local call: no access control, as in daprd.
        assert c.delete("/v1.0/invoke/front/method/orders/9").status_code == 200
    # The callee's own sidecar has no list for its own app id either.
    with httpx.Client(base_url=back.http, headers={"dapr-api-token": TOKEN}) as c:
        assert c.delete("/v1.0/invoke/back/method/admin/x").status_code == 200
