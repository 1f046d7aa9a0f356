"""Fixtures for the component and secrets tests: routes served over real HTTP on loopback by uvicorn."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from sidecar.errors import DaprError
from tests.harness import ServedApp


async def _dapr_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DaprError)
    return JSONResponse(exc.body(), status_code=exc.http_status)


@pytest.fixture
def serve() -> Iterator[Callable[[list[BaseRoute]], str]]:
    """Serve routes (with the sidecar's DaprError rendering); returns the base URL."""
    running: list[ServedApp] = []

    def start(routes: list[BaseRoute]) -> str:
        app = Starlette(routes=routes, exception_handlers={DaprError: _dapr_error})
        served = ServedApp(app, lifespan="off").start()
        running.append(served)
        return served.url

    yield start
    for served in running:
        served.stop()
