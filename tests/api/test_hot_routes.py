"""Plain `GET .../items` requests are served in front of FastAPI (`api.hot_routes`) and must answer exactly as
FastAPI's route does: the same request with an extra, ignored query parameter takes FastAPI's path."""

from __future__ import annotations

import httpx
import pytest

from api.hot_routes import plain_query
from tests.api.conftest import Stack, new_list

_COMPARED_HEADERS = ("content-type", "content-length", "etag", "www-authenticate", "retry-after")


def _same(hot: httpx.Response, routed: httpx.Response) -> None:
    assert hot.status_code == routed.status_code, (hot.text, routed.text)
    assert hot.content == routed.content
    for name in _COMPARED_HEADERS:
        assert hot.headers.get(name) == routed.headers.get(name), name


@pytest.mark.parametrize(
    ("query", "parsed"),
    [
        (b"", {}),
        (b"limit=50", {"limit": 50}),
        (
            b"limit=500&status=completed&cursor=abc%3D",
            {"limit": 500, "status": "completed", "cursor": "abc="},
        ),
        (b"limit=501", None),
        (b"limit=0", None),
        (b"limit=05", None),
        (b"limit=abc", None),
        (b"limit=5&limit=6", None),
        (b"status=done", None),
        (b"cursor=", None),
        (b"label=x", None),
        (b"limit", None),
    ],
)
def test_only_plainly_valid_queries_are_taken(query: bytes, parsed: dict[str, object] | None) -> None:
    assert plain_query(query) == parsed


def test_hot_reads_answer_as_the_routed_ones(stack: Stack, user: str) -> None:
    with stack.client(user) as c:
        list_id = new_list(c, "hot")["id"]
        for n in range(5):
            item = c.post(f"/v1/lists/{list_id}/items", json={"title": f"2025-01-0{n + 1} t{n}"}).json()
        c.post(f"/v1/lists/{list_id}/items/{item['id']}:complete").raise_for_status()
        cursor = c.get(f"/v1/lists/{list_id}/items", params={"limit": 2}).json()["next_cursor"]
        assert cursor
        queries = ["", "?limit=2", "?limit=2&status=open", f"?cursor={cursor}", "?status=completed"]
        for query in queries:
            hot = c.get(f"/v1/lists/{list_id}/items{query}")
            routed = c.get(f"/v1/lists/{list_id}/items{query}{'&' if query else '?'}ignored=1")
            assert hot.status_code == 200
            _same(hot, routed)
        assert [i["title"] for i in c.get(f"/v1/lists/{list_id}/items?limit=2").json()["items"]] == [
            "2025-01-01 t0",
            "2025-01-02 t1",
        ]
        # Errors: an unknown list, a bad cursor.
        for path in ("/v1/lists/nope/items", f"/v1/lists/{list_id}/items?cursor=garbage"):
            hot = c.get(path)
            assert hot.status_code in (404, 422)
            _same(hot, c.get(path + ("&" if "?" in path else "?") + "ignored=1"))
    path = f"/v1/lists/{list_id}/items"
    with stack.client(user + "-other") as other:  # someone else's list: 404, as if it did not exist
        hot = other.get(path)
        assert hot.status_code == 404
        _same(hot, other.get(path + "?ignored=1"))
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic x"}):
        with httpx.Client(base_url=stack.url, headers=headers) as anonymous:
            hot = anonymous.get(path)
            assert hot.status_code == 401
            _same(hot, anonymous.get(path + "?ignored=1"))


def test_hot_reads_are_rate_limited(stack: Stack, user: str) -> None:
    limited = stack.serve_public(rate_limit_burst=2, rate_limit_per_second=0.01)
    try:
        with httpx.Client(
            base_url=limited.url, headers={"Authorization": f"Bearer {stack.token(user)}"}
        ) as c:
            path = "/v1/lists/some-list/items"
            assert [c.get(path).status_code for _ in range(2)] == [404, 404]
            hot, routed = c.get(path), c.get(path + "?ignored=1")
            assert hot.status_code == 429 and int(hot.headers["retry-after"]) >= 1
            assert routed.status_code == 429 and hot.json()["type"] == routed.json()["type"]
    finally:
        limited.stop()


def test_hot_adds_and_completes_answer_as_the_routed_ones(stack: Stack, user: str) -> None:
    with stack.client(user) as c:
        list_id = new_list(c, "hot writes")["id"]
        url = f"/v1/lists/{list_id}/items"
        body = {"title": "2025-01-01 file taxes", "labels": ["home"], "due": {"date": "2026-03-01"}}
        hot, routed = c.post(url, json=body), c.post(url + "?ignored=1", json=body)
        assert hot.status_code == routed.status_code == 201
        a, b = hot.json(), routed.json()
        assert a["title"] == "2025-01-01 file taxes" and a.keys() == b.keys()
        assert {k: v for k, v in a.items() if k not in ("id", "position", "created_at", "updated_at")} == {
            k: v for k, v in b.items() if k not in ("id", "position", "created_at", "updated_at")
        }
        assert hot.headers["location"] == f"{url}/{a['id']}" and hot.headers["etag"] == routed.headers["etag"]
        # Completing twice: the second answer (nothing changes) must be the same either way.
        done = c.post(f"{url}/{a['id']}:complete")
        assert done.status_code == 200 and done.json()["status"] == "completed"
        _same(c.post(f"{url}/{a['id']}:complete"), c.post(f"{url}/{a['id']}:complete?ignored=1"))
        # Errors and what the hot path leaves to FastAPI: same answers.
        for path, content, headers in [
            (url, b'{"title": ""}', {"content-type": "application/json"}),  # invalid: 422
            (url, b'{"title": "x", "id": "mine"}', {"content-type": "application/json"}),  # read-only
            (url, b"{not json", {"content-type": "application/json"}),
            (url, b'{"title": "x"}', {"content-type": "text/plain"}),
            (url, b'["x"]', {"content-type": "application/json"}),
            ("/v1/lists/nope/items", b'{"title": "x"}', {"content-type": "application/json"}),
            (f"{url}/nope:complete", b"", {}),
            (f"{url}/{a['id']}:complete", b"", {"if-match": '"999"'}),  # stale: 412, through FastAPI
        ]:
            hot = c.post(path, content=content, headers=headers)
            routed = c.post(path + "?ignored=1", content=content, headers=headers)
            assert hot.status_code >= 400
            _same(hot, routed)
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        with httpx.Client(base_url=stack.url, headers=headers) as anonymous:
            for path in (url, f"{url}/{a['id']}:complete"):
                hot = anonymous.post(path, json={"title": "x"})
                assert hot.status_code == 401
                _same(hot, anonymous.post(path + "?ignored=1", json={"title": "x"}))
    with stack.client(user + "-other") as other:  # someone else's list: 404, nothing added
        hot = other.post(url, json={"title": "x"})
        assert hot.status_code == 404
        _same(hot, other.post(url + "?ignored=1", json={"title": "x"}))
    with stack.client(user) as c:
        titles = sorted(i["title"] for i in c.get(url).json()["items"])
        assert titles == ["2025-01-01 file taxes"] * 2
