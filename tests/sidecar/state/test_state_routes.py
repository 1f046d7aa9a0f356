"""The HTTP state API over real HTTP, with daprd's status codes, error codes and stored bytes."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from starlette.routing import BaseRoute

from sidecar.clock import ManualClock
from sidecar.components import Components
from sidecar.http.state_routes import routes
from sidecar.state import InMemoryStateStore, SqliteOptions, SqliteStateStore

Serve = Callable[[list[BaseRoute]], str]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


@pytest.fixture
def api(serve: Serve, db_path: Path) -> Iterator[httpx.Client]:
    clock = ManualClock()
    sqlite_store = SqliteStateStore("statestore", SqliteOptions(path=str(db_path)), clock)
    components = Components(
        state_stores={
            "statestore": sqlite_store,
            "flat": InMemoryStateStore("flat", clock, key_prefix="none"),
        }
    )
    base = serve(routes(components, "myapp"))
    with httpx.Client(base_url=f"{base}/v1.0/state") as client:
        yield client
    sqlite_store.shutdown()


def _error(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["errorCode"]


def test_save_then_get_returns_go_encoded_json_with_an_etag(api: httpx.Client, db_path: Path) -> None:
    value = {"title": "<b>2025-01-01 file taxes</b>", "n": 12345678901234567890, "a": [1.0, 0.5]}
    assert api.post("/statestore", json=[{"key": "todo", "value": value}]).status_code == 204
    got = api.get("/statestore/todo")
    assert got.status_code == 200
    assert got.headers["content-type"] == "application/json"
    assert got.content == (
        b'{"a":[1,0.5],"n":12345678901234567000,'
        b'"title":"\\u003cb\\u003e2025-01-01 file taxes\\u003c/b\\u003e"}'
    )
    assert got.headers["etag"]
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT key FROM state").fetchall() == [("myapp||todo",)]


def test_small_int_values_take_the_c_encoder_and_store_the_same_bytes(api: httpx.Client) -> None:
    """A body whose numbers are all small ints is re-encoded by the C encoder: the bytes are still Go's
    (keys sorted, HTML escaped, a lone surrogate escape read as U+FFFD), on save and in a transaction;
    one float in the body sends every value through float64, so 2 stays 2 and 0.5 stays 0.5."""
    value = '{"s":"\\ud800x","b":"<&>","n":[1,-2,3],"t":true,"z":null}'
    expected = '{"b":"\\u003c\\u0026\\u003e","n":[1,-2,3],"s":"\ufffdx","t":true,"z":null}'.encode()
    saved = api.post("/statestore", content=f'[{{"key":"a","value":{value}}}]')
    assert saved.status_code == 204
    assert api.get("/statestore/a").content == expected
    ops = f'{{"operations":[{{"operation":"upsert","request":{{"key":"b","value":{value}}}}}]}}'
    assert api.post("/statestore/transaction", content=ops).status_code == 204
    assert api.get("/statestore/b").content == expected
    mixed = '[{"key":"c","value":{"i":2,"f":0.5,"e":1E2}}]'
    assert api.post("/statestore", content=mixed).status_code == 204
    assert api.get("/statestore/c").content == b'{"e":100,"f":0.5,"i":2}'
    bad = api.post("/statestore", content='[{"key":"d","value":1,"etag":7}]')
    assert bad.status_code == 400 and "cannot unmarshal number" in bad.json()["message"]


def test_missing_key_is_204_with_empty_body(api: httpx.Client) -> None:
    got = api.get("/statestore/nothing")
    assert (got.status_code, got.content) == (204, b"")


def test_etags_and_first_write_on_save(api: httpx.Client) -> None:
    api.post("/statestore", json=[{"key": "k", "value": 1}])
    etag = api.get("/statestore/k").headers["etag"]
    stale = api.post("/statestore", json=[{"key": "k", "value": 2, "etag": "not-it"}])
    assert _error(stale) == (409, "ERR_STATE_SAVE")
    assert "etag mismatch" in stale.json()["message"]
    first = api.post(
        "/statestore", json=[{"key": "k", "value": 2, "options": {"concurrency": "first-write"}}]
    )
    assert _error(first) == (409, "ERR_STATE_SAVE")
    ok = api.post("/statestore", json=[{"key": "k", "value": 3, "etag": etag}])
    assert ok.status_code == 204
    assert api.get("/statestore/k").content == b"3"
    bad = api.post("/statestore", json=[{"key": "k", "value": 4, "options": {"concurrency": "x"}}])
    assert _error(bad) == (500, "ERR_STATE_SAVE")


def test_delete_with_if_match(api: httpx.Client) -> None:
    api.post("/statestore", json=[{"key": "k", "value": "v"}])
    etag = api.get("/statestore/k").headers["etag"]
    assert _error(api.delete("/statestore/k", headers={"If-Match": "wrong"})) == (
        409,
        "ERR_STATE_DELETE",
    )
    assert api.delete("/statestore/k", headers={"If-Match": etag}).status_code == 204
    assert api.get("/statestore/k").status_code == 204
    assert api.delete("/statestore/k").status_code == 204  # deleting a missing key succeeds


def test_bulk_get_omits_data_of_missing_keys(api: httpx.Client) -> None:
    api.post("/statestore", json=[{"key": "a", "value": {"x": 1}}, {"key": "b", "value": "s"}])
    got = api.post("/statestore/bulk", json={"keys": ["a", "zz", "b"], "parallelism": 2})
    assert got.status_code == 200
    items = got.json()
    assert [i["key"] for i in items] == ["a", "zz", "b"]
    assert items[0]["data"] == {"x": 1} and items[2]["data"] == "s"
    assert items[1] == {"key": "zz"}
    assert all(i["etag"] for i in (items[0], items[2]))
    assert api.post("/statestore/bulk", json={"keys": []}).json() == []


def test_transactions_are_atomic(api: httpx.Client) -> None:
    api.post("/statestore", json=[{"key": "gone", "value": 0}])
    ops = {
        "operations": [
            {"operation": "upsert", "request": {"key": "t1", "value": {"done": True}}},
            {"operation": "delete", "request": {"key": "gone"}},
        ]
    }
    assert api.post("/statestore/transaction", json=ops).status_code == 204
    assert api.get("/statestore/t1").content == b'{"done":true}'
    assert api.get("/statestore/gone").status_code == 204
    failing = {
        "operations": [
            {"operation": "upsert", "request": {"key": "t2", "value": 1}},
            {"operation": "upsert", "request": {"key": "t1", "value": 2, "etag": "stale"}},
        ]
    }
    assert _error(api.post("/statestore/transaction", json=failing)) == (500, "ERR_STATE_TRANSACTION")
    assert api.get("/statestore/t2").status_code == 204
    odd = {"operations": [{"operation": "merge", "request": {"key": "x"}}]}
    assert _error(api.post("/statestore/transaction", json=odd)) == (
        400,
        "ERR_NOT_SUPPORTED_STATE_OPERATION",
    )


def test_ttl_metadata_from_query_and_body(api: httpx.Client) -> None:
    api.post("/statestore?metadata.ttlInSeconds=60", json=[{"key": "q", "value": 1}])
    api.post("/statestore", json=[{"key": "b", "value": 1, "metadata": {"ttlInSeconds": "60"}}])
    for key in ("q", "b"):
        assert api.get(f"/statestore/{key}").headers["metadata.ttlExpireTime"].endswith("Z")


def test_key_prefix_none_and_errors(api: httpx.Client) -> None:
    api.post("/flat", json=[{"key": "k", "value": 1}])
    assert api.get("/flat/k").content == b"1"
    assert _error(api.get("/nostore/k")) == (400, "ERR_STATE_STORE_NOT_FOUND")
    assert _error(api.get("/statestore/a||b")) == (400, "ERR_MALFORMED_REQUEST")
    assert _error(api.post("/statestore", json=[{"key": "a||b", "value": 1}])) == (
        400,
        "ERR_MALFORMED_REQUEST",
    )
    assert _error(api.post("/statestore", content=b"{not json")) == (400, "ERR_MALFORMED_REQUEST")
    assert _error(api.post("/statestore", json={"key": "k"})) == (400, "ERR_MALFORMED_REQUEST")
    assert _error(api.post("/statestore", json=[{"value": 1}])) == (400, "ERR_MALFORMED_REQUEST")
    assert _error(api.post("/statestore", json=[{"key": 5}])) == (400, "ERR_MALFORMED_REQUEST")
    assert _error(api.post("/statestore/bulk", json={"keys": [1]})) == (400, "ERR_MALFORMED_REQUEST")
    assert _error(api.post("/statestore/query", json={})) == (500, "ERR_STATE_STORE_NOT_SUPPORTED")
    assert api.post("/statestore", json=[]).status_code == 204


def test_no_state_store_configured(serve: Serve) -> None:
    base = serve(routes(Components(), "myapp"))
    got = httpx.get(f"{base}/v1.0/state/statestore/k")
    assert _error(got) == (500, "ERR_STATE_STORE_NOT_CONFIGURED")
