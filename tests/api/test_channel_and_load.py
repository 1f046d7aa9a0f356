"""The app channel is sealed off (not on the public port, token required on its own), and one list
serializes concurrent writers without losing any."""

from __future__ import annotations

import asyncio

import httpx

from tests.api.conftest import Stack


def test_app_channel_routes_are_not_public(stack: Stack) -> None:
    with stack.client("anyone") as c:
        for method, path in [
            ("GET", "/dapr/config"),
            ("GET", "/dapr/subscribe"),
            ("GET", "/healthz"),
            ("PUT", "/actors/TodoListActor/x/method/GetList"),
            ("PUT", "/actors/TodoListActor/x/method/remind/due:1"),
            ("DELETE", "/actors/TodoListActor/x"),
            ("POST", "/events/pubsub/task-events"),
        ]:
            r = c.request(method, path, headers={"dapr-api-token": stack.app_token})
            assert r.status_code == 404, (method, path, r.status_code)


def test_app_channel_requires_the_token(stack: Stack) -> None:
    with httpx.Client(base_url=stack.channel.url) as c:
        for headers in ({}, {"dapr-api-token": "wrong"}, {"dapr-api-token": stack.app_token + "x"}):
            for method, path in [
                ("GET", "/dapr/config"),
                ("GET", "/dapr/subscribe"),
                ("GET", "/healthz"),
                ("PUT", "/actors/TodoListActor/x/method/GetList"),
                ("POST", "/events/pubsub/task-events"),
            ]:
                assert c.request(method, path, headers=headers).status_code == 401, (headers, path)
        ok = c.get("/dapr/subscribe", headers={"dapr-api-token": stack.app_token})
        assert ok.status_code == 200
        topics = {s["topic"] for s in ok.json()}
        assert topics == {"task-events", "reminders", "task-events-dead", "reminders-dead"}


async def test_fifty_concurrent_writers_lose_nothing(stack: Stack, user: str) -> None:
    async with stack.async_client(user, limits=httpx.Limits(max_connections=50)) as c:
        r = await c.post("/v1/lists", json={"title": "busy"})
        list_id = r.json()["id"]
        url = f"/v1/lists/{list_id}/items"
        results = await asyncio.gather(*(c.post(url, json={"title": f"w{n}"}) for n in range(50)))
        assert [r.status_code for r in results] == [201] * 50
        items = (await c.get(url, params={"limit": 500})).json()["items"]
        assert sorted(i["title"] for i in items) == sorted(f"w{n}" for n in range(50))
        assert len({i["id"] for i in items}) == 50
        summary = (await c.get(f"/v1/lists/{list_id}")).json()
        assert summary["open_count"] == 50 and summary["version"] == 51
        # Concurrent completes of distinct items, and updates racing on one item with If-Match: exactly
        # one update per version wins.
        done = await asyncio.gather(*(c.post(f"{url}/{i['id']}:complete") for i in items[:25]))
        assert [r.status_code for r in done] == [200] * 25
        target = items[30]["id"]
        racing = await asyncio.gather(
            *(
                c.patch(f"{url}/{target}", json={"notes": f"n{n}"}, headers={"If-Match": '"1"'})
                for n in range(10)
            )
        )
        assert sorted(r.status_code for r in racing) == [200] + [412] * 9
        summary = (await c.get(f"/v1/lists/{list_id}")).json()
        assert summary["completed_count"] == 25 and summary["version"] == 51 + 25 + 1


def test_health_and_metrics(stack: Stack) -> None:
    with stack.client("metrics-user") as c:
        c.get("/v1/lists").raise_for_status()
        ready = c.get("/health/ready")
        assert ready.status_code == 200 and ready.json() == {
            "status": "ready",
            "checks": {"sidecar": "ok", "store": "ok"},
        }
        text = c.get("/metrics").text
        assert 'todo_http_request_duration_seconds_bucket{le="0.005",method="GET",route="/v1/lists"' in text
        assert 'todo_actor_calls_total{actor_type="OwnerIndexActor",method="Lists",outcome="ok"}' in text
