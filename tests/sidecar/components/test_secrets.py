"""The local secret stores and the HTTP secrets API, answering as components-contrib and daprd do."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from starlette.routing import BaseRoute

from sidecar.components import Components
from sidecar.http.secrets_routes import routes
from sidecar.secrets import EnvSecretStore, LocalFileSecretStore, SecretError, SecretNotFound
from sidecar.secrets.local import go_sprint_s

Serve = Callable[[list[BaseRoute]], str]

DOCUMENT = {
    "db": {"user": "admin", "port": 5432, "tls": True, "replicas": ["r1", "r2"], "none": None},
    "token": "t0k3n",
}


@pytest.fixture
def secrets_file(tmp_path: Path) -> Path:
    path = tmp_path / "secrets.json"
    path.write_text(json.dumps(DOCUMENT))
    return path


def test_file_store_flattens_nested_values(secrets_file: Path) -> None:
    store = LocalFileSecretStore("s", secrets_file)
    assert store.get("db:user") == {"db:user": "admin"}
    assert store.get("db:port") == {"db:port": "%!s(float64=5432)"}  # Go's fmt %s of a float64
    assert store.get("db:tls") == {"db:tls": "%!s(bool=true)"}
    assert store.get("db:replicas:1") == {"db:replicas:1": "r2"}
    assert store.get("db:none") == {"db:none": "%!s(<nil>)"}
    assert store.features == frozenset()
    with pytest.raises(SecretNotFound, match="secret db not found"):
        store.get("db")
    assert store.bulk()["token"] == {"token": "t0k3n"}
    dotted = LocalFileSecretStore("s", secrets_file, nested_separator=".")
    assert dotted.get("db.user") == {"db.user": "admin"}


def test_file_store_multi_valued(secrets_file: Path) -> None:
    store = LocalFileSecretStore.from_metadata(
        "s", {"secretsFile": secrets_file.name, "multiValued": "true"}, base_dir=secrets_file.parent
    )
    assert store.features == frozenset({"MULTIPLE_KEY_VALUES_PER_SECRET"})
    assert store.get("db")["user"] == "admin"
    assert store.get("db")["replicas:0"] == "r1"
    assert store.get("token") == {"token": "t0k3n"}
    assert set(store.bulk()) == {"db", "token"}


def test_file_store_errors(tmp_path: Path) -> None:
    with pytest.raises(SecretError, match="missing local secrets file"):
        LocalFileSecretStore.from_metadata("s", {}, base_dir=tmp_path)
    with pytest.raises(SecretError, match="cannot read"):
        LocalFileSecretStore("s", tmp_path / "absent.json")
    (tmp_path / "bad.json").write_text("[1]")
    with pytest.raises(SecretError, match="JSON object"):
        LocalFileSecretStore("s", tmp_path / "bad.json")


def test_go_formatting_of_numbers() -> None:
    cases = {5432.0: "5432", 1e6: "1e+06", 0.5: "0.5", 1.5e-5: "1.5e-05", 123456789.0: "1.23456789e+08"}
    for value, text in cases.items():
        assert go_sprint_s(value) == f"%!s(float64={text})"


def test_env_store_prefix_and_forbidden_variables() -> None:
    environ = {"APP_DB": "postgres://x", "APP_": "short", "DAPR_API_TOKEN": "t", "OTHER": "o"}
    store = EnvSecretStore("env", prefix="APP_", environ=environ)
    assert store.get("DB") == {"DB": "postgres://x"}
    assert store.get("MISSING") == {"MISSING": ""}
    assert store.bulk() == {"DB": {"DB": "postgres://x"}}
    plain = EnvSecretStore("env", environ=environ)
    assert plain.get("DAPR_API_TOKEN") == {"DAPR_API_TOKEN": ""}
    assert "DAPR_API_TOKEN" not in plain.bulk() and plain.bulk()["OTHER"] == {"OTHER": "o"}


def test_secrets_api_over_http(serve: Serve, secrets_file: Path) -> None:
    components = Components(
        secret_stores={
            "local": LocalFileSecretStore("local", secrets_file),
            "env": EnvSecretStore("env", environ={"K": "v<&>"}),
        }
    )
    base = serve(routes(components, "myapp"))
    with httpx.Client(base_url=f"{base}/v1.0/secrets") as api:
        got = api.get("/local/token")
        assert (got.status_code, got.json()) == (200, {"token": "t0k3n"})
        assert got.headers["content-type"] == "application/json"
        assert api.get("/env/K").content == b'{"K":"v\\u003c\\u0026\\u003e"}\n'
        bulk = api.get("/local/bulk").json()
        assert bulk["db:user"] == {"db:user": "admin"} and len(bulk) == 7
        missing = api.get("/local/nope")
        assert (missing.status_code, missing.json()["errorCode"]) == (500, "ERR_SECRET_GET")
        assert "secret nope not found" in missing.json()["message"]
        unknown = api.get("/vault/x")
        assert (unknown.status_code, unknown.json()["errorCode"]) == (401, "ERR_SECRET_STORE_NOT_FOUND")
    empty = serve(routes(Components(), "myapp"))
    none = httpx.get(f"{empty}/v1.0/secrets/local/token")
    assert (none.status_code, none.json()["errorCode"]) == (500, "ERR_SECRET_STORES_NOT_CONFIGURED")
