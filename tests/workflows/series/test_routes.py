"""The `/v1/series` and `/v1/workflows` routers over real HTTP, on an app that mounts only them (with the
API's problem handlers); the caller is taken from a test header instead of a JWT."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import httpx
import pytest
from dapr.aio.clients import DaprClient
from fastapi import FastAPI, Header

from api.deps import _current_user
from api.problems import install_problem_handlers
from api.routes import series as series_routes
from api.routes import workflows as workflow_routes
from tests.harness import ServedApp
from tests.workflows.series.stack import SeriesStack, manual_now, wait_until
from workflows.hosting import open_series


def _test_user(x_test_user: Annotated[str, Header()]) -> str:
    return x_test_user


def build_app(stack: SeriesStack) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        dapr = DaprClient(address=stack.grpc_address)
        app.state.series = open_series(
            stack.settings,
            dapr=dapr,
            host="127.0.0.1",
            grpc_port=stack.grpc_port,
            api_token=None,
            list_actor=stack.list_actor,
            clock=manual_now(stack.clock),
        )
        yield
        await app.state.series.aclose()
        await dapr.close()  # type: ignore[no-untyped-call]

    app = FastAPI(lifespan=lifespan)
    install_problem_handlers(app)
    app.include_router(series_routes.router)
    app.include_router(workflow_routes.router)
    app.dependency_overrides[_current_user] = _test_user
    return app


@pytest.fixture(scope="module")
def api(stack: SeriesStack) -> Iterator[ServedApp]:
    stack.use()
    served = ServedApp(build_app(stack)).start()
    yield served
    served.stop()


def client(api: ServedApp, user: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=api.url, headers={"x-test-user": user}, timeout=30)


def body(stack: SeriesStack, list_id: str, **fields: Any) -> dict[str, Any]:
    start = dt.datetime.combine((stack.now() + dt.timedelta(days=1)).date(), dt.time(9))
    return {
        "list_id": list_id,
        "template": {"title": "bins out"},
        "rule": "FREQ=WEEKLY",
        "dtstart": start.isoformat(),
    } | fields


async def test_series_routes(api: ServedApp, stack: SeriesStack, owner: str, list_id: str) -> None:
    async with client(api, owner) as http:
        r = await http.post("/v1/series", json=body(stack, list_id), headers={"Idempotency-Key": "k1"})
        assert r.status_code == 201, r.text
        created = r.json()
        assert r.headers["location"] == f"/v1/series/{created['id']}"
        assert (
            created["workflow"]["instance_id"] == f"series-{created['id']}" and created["status"] == "running"
        )
        again = await http.post("/v1/series", json=body(stack, list_id), headers={"Idempotency-Key": "k1"})
        assert again.status_code == 201 and again.json()["id"] == created["id"]
        sid = created["id"]

        r = await http.get(f"/v1/series/{sid}", params={"upcoming": 3})
        assert r.status_code == 200 and len(r.json()["upcoming"]) == 3
        r = await http.get("/v1/series")
        assert [s["id"] for s in r.json()["items"]] == [sid]

        r = await http.patch(f"/v1/series/{sid}", json={"template": {"title": "bins out (recycling)"}})
        assert r.status_code == 200 and r.json()["template"]["title"] == "bins out (recycling)"

        r = await http.post(f"/v1/series/{sid}:pause")
        assert r.status_code == 200 and r.json()["status"] == "paused"
        r = await http.post(f"/v1/series/{sid}:resume")
        assert r.status_code == 200 and r.json()["status"] == "running"
        await wait_until(lambda: waiting(http, sid))
        r = await http.post(f"/v1/series/{sid}:skip")
        assert r.status_code == 200 and r.json()["next_occurrence_index"] == 1, r.text
        r = await http.get(f"/v1/series/{sid}/occurrences")
        assert [(e["index"], e["status"]) for e in r.json()["items"]] == [(0, "skipped")]
        assert r.json()["upcoming"][0]["index"] == 1

        r = await http.post(f"/v1/series/{sid}:cancel")
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        r = await http.post(f"/v1/series/{sid}:pause")
        assert r.status_code == 409 and r.headers["content-type"] == "application/problem+json"
        assert r.json()["type"] == "/problems/conflict"

    async with client(api, f"other-{uuid.uuid4().hex[:6]}") as other:
        r = await other.get(f"/v1/series/{sid}")
        assert r.status_code == 404 and r.json()["type"] == "/problems/not-found"
        assert (await other.post(f"/v1/series/{sid}:cancel")).status_code == 404
        assert (await other.get(f"/v1/workflows/series-{sid}")).status_code == 404


async def waiting(http: httpx.AsyncClient, sid: str) -> bool:
    r = await http.get(f"/v1/series/{sid}")
    return bool(r.json()["next_occurrence_index"] == 0)


async def test_invalid_series_are_problems(
    api: ServedApp, stack: SeriesStack, owner: str, list_id: str
) -> None:
    async with client(api, owner) as http:
        r = await http.post("/v1/series", json=body(stack, list_id, rule="FREQ=MINUTELY"))
        assert r.status_code == 422 and r.json()["type"] == "/problems/invalid-input"
        assert r.json()["errors"][0]["loc"] == ["body", "rule"]
        r = await http.post("/v1/series", json=body(stack, list_id, tz="Nowhere/Land"))
        assert r.status_code == 422 and r.json()["type"] == "/problems/validation-error"
        r = await http.post("/v1/series", json=body(stack, list_id, id="mine"))
        assert r.status_code == 422
        r = await http.post("/v1/series", json=body(stack, "l-not-mine"))
        assert r.status_code == 404


async def test_workflow_routes(api: ServedApp, stack: SeriesStack, owner: str, list_id: str) -> None:
    async with client(api, owner) as http:
        sid = (await http.post("/v1/series", json=body(stack, list_id))).json()["id"]
        iid = f"series-{sid}"
        r = await http.get(f"/v1/workflows/{iid}")
        assert r.status_code == 200 and r.json()["name"] == "series" and r.json()["series_id"] == sid
        r = await http.get("/v1/workflows", params={"status": "RUNNING", "name": "series"})
        assert iid in [w["instance_id"] for w in r.json()["items"]]
        r = await http.get(f"/v1/workflows/{iid}/history")
        assert r.status_code == 200 and r.json()["events"][0]["kind"] == "started"
        assert (await http.post(f"/v1/workflows/{iid}:pause")).json()["runtime_status"] == "SUSPENDED"
        assert (await http.post(f"/v1/workflows/{iid}:resume")).json()["runtime_status"] == "RUNNING"
        r = await http.delete(f"/v1/workflows/{iid}")
        assert r.status_code == 409
        assert (await http.post(f"/v1/workflows/{iid}:terminate")).json()["runtime_status"] == "TERMINATED"
        assert (await http.delete(f"/v1/workflows/{iid}")).status_code == 204
        assert (await http.get(f"/v1/workflows/{iid}")).status_code == 404
        r = await http.get("/v1/workflows", params={"status": "napping"})
        assert r.status_code == 422
        assert (await http.get(f"/v1/series/{sid}")).json()["status"] == "cancelled"
