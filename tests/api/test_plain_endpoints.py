"""The busiest routes (a page of items, an add, a complete) are plain Starlette endpoints in the app's one
router: they authenticate, rate-limit, validate and fail exactly like every other route."""

from __future__ import annotations

import httpx

from tests.api.conftest import Stack, new_item, new_list

_NESTED = b"[" * 1000 + b"]" * 1000


def test_a_deeply_nested_body_is_a_400_problem_on_every_route(client: httpx.Client) -> None:
    list_id = new_list(client)["id"]
    item_id = new_item(client, list_id)["id"]
    headers = {"content-type": "application/json"}
    for method, path in [
        ("POST", f"/v1/lists/{list_id}/items"),  # a plain endpoint
        ("POST", "/v1/lists"),  # a FastAPI route
        ("PATCH", f"/v1/lists/{list_id}/items/{item_id}"),
    ]:
        r = client.request(method, path, content=_NESTED, headers=headers)
        assert r.status_code == 400, (path, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["type"].endswith("bad-request")


def test_input_errors_are_422_problems_naming_the_fields(client: httpx.Client) -> None:
    list_id = new_list(client)["id"]
    r = client.get(f"/v1/lists/{list_id}/items", params={"limit": "0", "status": "done"})
    assert r.status_code == 422, r.text
    assert {tuple(e["loc"]) for e in r.json()["errors"]} == {("query", "limit"), ("query", "status")}
    r = client.post(f"/v1/lists/{list_id}/items", content=b"{", headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"][0] == "body"
    r = client.post(f"/v1/lists/{list_id}/items", json={"title": ""})
    assert r.status_code == 422 and tuple(r.json()["errors"][0]["loc"]) == ("body", "title")
    r = client.post(f"/v1/lists/{list_id}/items")
    assert r.status_code == 422 and tuple(r.json()["errors"][0]["loc"]) == ("body",)
    r = client.post(f"/v1/lists/{list_id}/items/bad%20id:complete")
    assert r.status_code == 422 and tuple(r.json()["errors"][0]["loc"]) == ("path", "item_id")
    r = client.post(f"/v1/lists/{list_id}/items/x:complete", headers={"If-Match": "x" * 101})
    assert r.status_code == 422 and tuple(r.json()["errors"][0]["loc"]) == ("header", "if-match")


def test_the_page_query_filters_and_pages(client: httpx.Client) -> None:
    list_id = new_list(client)["id"]
    first = new_item(client, list_id, "a")
    new_item(client, list_id, "b")
    assert client.post(f"/v1/lists/{list_id}/items/{first['id']}:complete").status_code == 200
    r = client.get(f"/v1/lists/{list_id}/items", params={"status": "open"})
    assert [i["title"] for i in r.json()["items"]] == ["b"]
    page = client.get(f"/v1/lists/{list_id}/items", params={"limit": 1}).json()
    rest = client.get(f"/v1/lists/{list_id}/items", params={"cursor": page["next_cursor"]}).json()
    assert [i["title"] for i in page["items"] + rest["items"]] == ["a", "b"]


def test_a_stale_if_match_on_complete_is_a_412(client: httpx.Client) -> None:
    list_id = new_list(client)["id"]
    item = new_item(client, list_id)
    r = client.post(f"/v1/lists/{list_id}/items/{item['id']}:complete", headers={"If-Match": '"99"'})
    assert r.status_code == 412, r.text


def test_plain_endpoints_share_the_login_and_the_rate_limit(stack: Stack, user: str) -> None:
    public = stack.serve_public(rate_limit_per_second=0.001, rate_limit_burst=2)
    try:
        with httpx.Client(base_url=public.url, timeout=30) as anonymous:
            assert anonymous.get("/v1/lists/x/items").status_code == 401
        headers = {"Authorization": f"Bearer {stack.token(user)}"}
        with httpx.Client(base_url=public.url, headers=headers, timeout=30) as c:
            statuses = [c.get("/v1/lists/x/items").status_code for _ in range(2)]
            statuses.append(c.get("/v1/lists").status_code)  # a FastAPI route: the same bucket
            assert statuses[-1] == 429 and "Retry-After" in c.get("/v1/lists/x/items").headers
    finally:
        public.stop()


def test_the_plain_endpoints_are_in_the_openapi_document(client: httpx.Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    items = paths["/v1/lists/{list_id}/items"]
    assert items["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "ItemCreate"
    )
    assert {p["name"] for p in items["get"]["parameters"]} >= {"list_id", "limit", "cursor", "status"}
    assert "422" in paths["/v1/lists/{list_id}/items/{item_id}:complete"]["post"]["responses"]
