"""The HTTP API's busiest routes are served in front of Starlette's router (`sidecar.http.hot_routes`):
the answers must be the router's, errors included, and anything else must still reach the router."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from sidecar.clock import ManualClock
from sidecar.components import Components
from sidecar.errors import DaprError
from sidecar.http import app as http_app
from sidecar.http.hot_routes import HotRoutes
from sidecar.http.state_routes import routes as state_routes
from sidecar.state import SqliteOptions, SqliteStateStore
from tests.harness import ServedApp


@pytest.fixture
def both(tmp_path: Path) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """Clients of one state API served twice: through `HotRoutes` and through the router alone."""
    store = SqliteStateStore("statestore", SqliteOptions(path=str(tmp_path / "s.db")), ManualClock())
    routes = state_routes(Components(state_stores={"statestore": store}), "myapp")
    routed = Starlette(routes=routes, exception_handlers={DaprError: http_app._dapr_error})
    hot = [r for r in routes if isinstance(r, Route) and r.path.endswith(("/bulk", "/transaction"))]
    assert len(hot) == 2
    served = [ServedApp(HotRoutes(routed, hot), lifespan="off").start(), ServedApp(routed, lifespan="off")]
    served[1].start()
    try:
        with httpx.Client(base_url=served[0].url) as a, httpx.Client(base_url=served[1].url) as b:
            yield a, b
    finally:
        for s in served:
            s.stop()
        store.shutdown()


def test_answers_are_the_routers(both: tuple[httpx.Client, httpx.Client]) -> None:
    hot, routed = both
    ops = {"operations": [{"operation": "upsert", "request": {"key": "k", "value": {"n": 1.0}}}]}
    requests = [
        ("POST", "/v1.0/state/statestore/transaction", ops),
        ("POST", "/v1.0/state/statestore/bulk", {"keys": ["k", "missing"]}),
        ("PUT", "/v1.0/state/statestore/bulk", {"keys": ["k"]}),
        ("POST", "/v1.0/state/nostore/bulk", {"keys": ["k"]}),  # a DaprError
        ("POST", "/v1.0/state/statestore/transaction", {"operations": [{"operation": "nope"}]}),
        ("POST", "/v1.0/state/statestore/bulk", "not json"),
        ("GET", "/v1.0/state/statestore/transaction", None),  # not a method of the route: the router's
        ("DELETE", "/v1.0/state/statestore/bulk", None),
        ("POST", "/v1.0/state/statestore", [{"key": "j", "value": 2}]),  # not a hot route
    ]
    for method, path, body in requests:
        a = hot.request(method, path, json=body) if body is not None else hot.request(method, path)
        b = routed.request(method, path, json=body) if body is not None else routed.request(method, path)
        assert (a.status_code, a.content) == (b.status_code, b.content), (method, path)
        assert a.headers.get("content-type") == b.headers.get("content-type")
    assert hot.post("/v1.0/state/statestore/bulk", json={"keys": ["k"]}).json()[0]["data"] == {"n": 1}
