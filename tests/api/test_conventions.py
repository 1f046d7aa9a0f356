"""API conventions: problem+json errors with fields, ETag/If-Match, Idempotency-Key, auth, limits."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import jwt
import pytest

from tests.api.conftest import Stack, new_item, new_list

PROBLEM = "application/problem+json"


def _problem(r: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body: dict[str, Any] = r.json()
    assert body["type"] == f"/problems/{kind}" and body["status"] == status and body["title"]
    return body


def _locs(problem: dict[str, Any]) -> list[list[Any]]:
    return [e["loc"] for e in problem["errors"]]


def test_validation_errors_list_the_fields(client: httpx.Client) -> None:
    list_id = new_list(client)["id"]
    url = f"/v1/lists/{list_id}/items"
    body = _problem(client.post(url, json={"title": "", "priority": 9}), 422, "validation-error")
    assert ["body", "title"] in _locs(body) and ["body", "priority"] in _locs(body)

    body = _problem(client.post(url, json={"title": "x", "colour": "red"}), 422, "validation-error")
    assert _locs(body) == [["body", "colour"]]

    body = _problem(
        client.post(url, json={"title": "x", "due": {"datetime": "2026-01-01T09:00:00+02:00"}}),
        422,
        "validation-error",
    )
    assert any(loc[:2] == ["body", "due"] for loc in _locs(body))

    body = _problem(client.post(url, json={"title": "x" * 501}), 422, "validation-error")
    assert _locs(body) == [["body", "title"]]

    body = _problem(
        client.post(url, content=b"{not json", headers={"content-type": "application/json"}),
        422,
        "validation-error",
    )
    assert body["errors"]

    # A body that is valid alone but makes an invalid command (title cannot be cleared).
    item = new_item(client, list_id)
    body = _problem(client.patch(f"{url}/{item['id']}", json={"title": None}), 422, "validation-error")
    assert body["errors"]


@pytest.mark.parametrize(
    "field", ["id", "owner", "version", "created_at", "updated_at", "completed_at", "status", "series_id"]
)
def test_read_only_fields_are_rejected(client: httpx.Client, field: str) -> None:
    list_id = new_list(client)["id"]
    body = _problem(
        client.post(f"/v1/lists/{list_id}/items", json={"title": "x", field: "2"}), 422, "validation-error"
    )
    assert _locs(body) == [["body", field]]
    assert "read-only" in body["errors"][0]["msg"]
    assert client.get(f"/v1/lists/{list_id}/items").json()["items"] == []


def test_reminder_limit_is_a_limit_problem(client: httpx.Client) -> None:
    list_id = new_list(client)["id"]
    reminders = [{"at": f"2030-01-01T00:{m:02d}:00Z"} for m in range(11)]
    body = _problem(
        client.post(f"/v1/lists/{list_id}/items", json={"title": "x", "reminders": reminders}),
        422,
        "limit-exceeded",
    )
    assert body["limit"] == "reminders_per_item" and body["max"] == 10


def test_etag_and_if_match(client: httpx.Client) -> None:
    list_id = new_list(client)["id"]
    list_url = f"/v1/lists/{list_id}"
    etag = client.get(list_url).headers["etag"]
    r = client.patch(list_url, json={"title": "v2"}, headers={"If-Match": etag})
    assert r.status_code == 200 and r.headers["etag"] == '"2"'
    _problem(
        client.patch(list_url, json={"title": "v3"}, headers={"If-Match": etag}), 412, "precondition-failed"
    )
    _problem(client.delete(list_url, headers={"If-Match": etag}), 412, "precondition-failed")
    _problem(
        client.patch(list_url, json={"title": "v3"}, headers={"If-Match": 'W/"2"'}),
        412,
        "precondition-failed",
    )
    # A weak tag never matches, but it is well-formed: the body is checked first, as for a stale tag.
    weak = {"If-Match": 'W/"2"'}
    _problem(client.patch(list_url, json={"title": ""}, headers=weak), 422, "validation-error")
    assert client.patch(list_url, json={"title": "v3"}, headers={"If-Match": "*"}).status_code == 200

    item = new_item(client, list_id)
    item_url = f"{list_url}/items/{item['id']}"
    r = client.get(item_url)
    assert r.headers["etag"] == '"1"'
    assert client.patch(item_url, json={"notes": "n"}, headers={"If-Match": '"1"'}).status_code == 200
    _problem(
        client.patch(item_url, json={"notes": "m"}, headers={"If-Match": '"1"'}), 412, "precondition-failed"
    )
    _problem(client.post(f"{item_url}:complete", headers={"If-Match": '"1"'}), 412, "precondition-failed")
    _problem(client.delete(item_url, headers={"If-Match": '"1"'}), 412, "precondition-failed")
    _problem(client.patch(item_url, json={"priority": 9}, headers=weak), 422, "validation-error")
    _problem(client.delete(item_url, headers=weak), 412, "precondition-failed")
    assert client.delete(item_url, headers={"If-Match": '"2"'}).status_code == 204
    assert client.get(list_url).json()["title"] == "v3"


def test_idempotent_post_replays_and_never_duplicates(client: httpx.Client) -> None:
    key = {"Idempotency-Key": "create-list-1"}
    first = client.post("/v1/lists", json={"title": "once"}, headers=key)
    again = client.post("/v1/lists", json={"title": "once"}, headers=key)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["location"] == first.headers["location"]
    assert again.headers.get("idempotent-replayed") == "true"
    titles = [entry["title"] for entry in client.get("/v1/lists").json()["items"]]
    assert titles.count("once") == 1

    list_id = first.json()["id"]
    url = f"/v1/lists/{list_id}/items"
    made = [
        client.post(url, json={"title": "milk", "priority": 1}, headers={"Idempotency-Key": "k2"})
        for _ in range(3)
    ]
    assert {r.status_code for r in made} == {201} and len({r.json()["id"] for r in made}) == 1
    # Same key, different body: refused, nothing created.
    _problem(
        client.post(url, json={"title": "eggs"}, headers={"Idempotency-Key": "k2"}),
        422,
        "idempotency-key-reused",
    )
    assert [i["title"] for i in client.get(url).json()["items"]] == ["milk"]
    # Keys belong to a user: the same key from another user is a new request.
    assert client.post(url, json={"title": "milk", "priority": 1}).status_code == 201


async def test_concurrent_duplicates_create_one(stack: Stack, user: str) -> None:
    async with stack.async_client(user) as c:
        list_id = (await c.post("/v1/lists", json={"title": "race"})).json()["id"]
        url = f"/v1/lists/{list_id}/items"
        results = await asyncio.gather(
            *(c.post(url, json={"title": "once"}, headers={"Idempotency-Key": "same"}) for _ in range(8))
        )
        assert {r.status_code for r in results} <= {201, 409}
        assert 201 in {r.status_code for r in results}
        items = (await c.get(url)).json()["items"]
        assert [i["title"] for i in items] == ["once"]


def test_auth_is_required_and_checked(stack: Stack) -> None:
    with stack.client() as anonymous:
        body = _problem(anonymous.get("/v1/lists"), 401, "unauthorized")
        assert "bearer" in body["detail"].lower()
        assert anonymous.get("/v1/lists").headers["www-authenticate"].startswith("Bearer")
        forged = jwt.encode({"sub": "x", "exp": int(time.time()) + 60}, "w" * 40, algorithm="HS256")
        _problem(
            anonymous.get("/v1/lists", headers={"Authorization": f"Bearer {forged}"}), 401, "unauthorized"
        )
        unsigned = jwt.encode({"sub": "x"}, None, algorithm="none")
        _problem(
            anonymous.get("/v1/lists", headers={"Authorization": f"Bearer {unsigned}"}), 401, "unauthorized"
        )
        expired = jwt.encode(
            {"sub": "x", "exp": int(time.time()) - 3600}, stack.jwt_secret, algorithm="HS256"
        )
        body = _problem(
            anonymous.get("/v1/lists", headers={"Authorization": f"Bearer {expired}"}), 401, "unauthorized"
        )
        assert "expired" in body["detail"]
        surrogate = jwt.encode({"sub": "\ud800"}, stack.jwt_secret, algorithm="HS256")
        _problem(
            anonymous.get("/v1/lists", headers={"Authorization": f"Bearer {surrogate}"}), 401, "unauthorized"
        )
        no_sub = jwt.encode({"exp": int(time.time()) + 60}, stack.jwt_secret, algorithm="HS256")
        _problem(
            anonymous.get("/v1/lists", headers={"Authorization": f"Bearer {no_sub}"}), 401, "unauthorized"
        )
        # Health and docs need no token.
        assert anonymous.get("/health/live").status_code == 200
        assert anonymous.get("/openapi.json").status_code == 200


def test_body_too_large(client: httpx.Client, stack: Stack) -> None:
    list_id = new_list(client)["id"]
    big = b'{"title": "' + b"x" * (stack.settings.max_body_bytes + 10) + b'"}'
    r = client.post(f"/v1/lists/{list_id}/items", content=big, headers={"content-type": "application/json"})
    _problem(r, 413, "payload-too-large")

    def chunks() -> Any:
        for _ in range(stack.settings.max_body_bytes // 65536 + 2):
            yield b" " * 65536

    r = client.post(
        f"/v1/lists/{list_id}/items", content=chunks(), headers={"content-type": "application/json"}
    )
    _problem(r, 413, "payload-too-large")
    assert client.get(f"/v1/lists/{list_id}/items").json()["items"] == []


def test_rate_limit(stack: Stack, user: str) -> None:
    limited = stack.serve_public(rate_limit_burst=3, rate_limit_per_second=0.01)
    try:
        with httpx.Client(
            base_url=limited.url, headers={"Authorization": f"Bearer {stack.token(user)}"}
        ) as c:
            assert [c.get("/v1/lists").status_code for _ in range(3)] == [200, 200, 200]
            r = c.get("/v1/lists")
            body = _problem(r, 429, "rate-limited")
            assert int(r.headers["retry-after"]) >= 1 and body["retry_after"] == int(r.headers["retry-after"])
        # The limit is per user.
        with httpx.Client(
            base_url=limited.url, headers={"Authorization": f"Bearer {stack.token(user + 'b')}"}
        ) as c:
            assert c.get("/v1/lists").status_code == 200
    finally:
        limited.stop()


def test_unknown_routes_are_problems(client: httpx.Client) -> None:
    _problem(client.get("/v1/nothing-here"), 404, "not-found")
    _problem(client.put("/v1/lists"), 405, "method-not-allowed")


def test_idempotency_outlives_its_record_for_list_creation(client: httpx.Client) -> None:
    key = {"Idempotency-Key": "monthly-budget"}
    first = client.post("/v1/lists", json={"title": "budget"}, headers=key)
    assert first.status_code == 201
    # The record expires (TTL on the sidecar's clock); the list id derived from the key stays the same.
    assert client.post("/v1/dev/clock:advance", json={"seconds": 25 * 3600}).status_code == 200
    again = client.post("/v1/lists", json={"title": "budget"}, headers=key)
    assert again.status_code == 201 and "idempotent-replayed" not in again.headers
    assert again.json()["id"] == first.json()["id"]
    _problem(client.post("/v1/lists", json={"title": "other"}, headers=key), 422, "idempotency-key-reused")
    assert client.post("/v1/dev/clock:advance", json={"seconds": 25 * 3600}).status_code == 200
    # Expired again: a different body cannot take over the list the key made.
    _problem(client.post("/v1/lists", json={"title": "other"}, headers=key), 409, "conflict")
    ids = [entry["id"] for entry in client.get("/v1/lists").json()["items"]]
    assert ids.count(first.json()["id"]) == 1


def test_dates_and_instants_are_years_1900_to_9000(client: httpx.Client) -> None:
    # Year 1 at 09:00 in Tokyo was an OverflowError in the actor (a 502); the document says the range.
    list_id = new_list(client, tz="Asia/Tokyo")["id"]
    url = f"/v1/lists/{list_id}/items"
    for body in (
        {"title": "a", "due": {"date": "0001-01-01"}},
        {"title": "b", "start": {"datetime": "9999-12-31T23:00:00", "tz": "America/Toronto"}},
        {"title": "c", "deadline": {"date": "1899-12-31"}},
        {"title": "d", "reminders": [{"at": "0001-01-01T00:00:00+14:00"}]},
    ):
        _problem(client.post(url, json=body), 422, "validation-error")
    ok = {"title": "e", "due": {"date": "1900-01-01"}, "reminders": [{"before_due": "P52W"}]}
    assert client.post(url, json=ok).status_code == 201
    late = {"title": "f", "due": {"datetime": "9000-12-31T23:59:00", "tz": "Pacific/Kiritimati"}}
    assert client.post(url, json=late).status_code == 201
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    assert schemas["Due"]["properties"]["date"]["anyOf"][0]["pattern"].startswith("^(?=(?:19|")
    assert schemas["Reminder"]["properties"]["at"]["anyOf"][0]["pattern"].startswith("^(?=(?:19|")
