"""A small HTTP app for the invocation tests: echoes what the sidecar delivered, and answers errors."""

from __future__ import annotations

import asyncio
import json

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


async def echo(request: Request) -> Response:
    body = await request.body()
    return Response(
        json.dumps(
            {
                "method": request.method,
                "path": request.url.path,
                "query": request.url.query,
                "headers": {k: v for k, v in request.headers.items()},
                "body": body.decode(),
            }
        ),
        media_type="application/json",
        headers={"x-echo": "yes"},
    )


async def teapot(request: Request) -> Response:
    return Response(b"short and stout", status_code=418, media_type="text/plain", headers={"x-pot": "1"})


async def broken(request: Request) -> Response:
    return Response(b"x" * 100, status_code=500, media_type="text/plain")


ATTEMPTS: dict[str, int] = {}


async def flaky(request: Request) -> Response:
    """503 for the first `fail` calls with one `key`, then 200 with the number of calls."""
    key = request.query_params["key"]
    ATTEMPTS[key] = ATTEMPTS.get(key, 0) + 1
    if ATTEMPTS[key] <= int(request.query_params["fail"]):
        return Response(b"not yet", status_code=503)
    return Response(str(ATTEMPTS[key]).encode())


GUARDED: dict[str, int] = {}  # key -> the status `guarded` answers (200 unless set)
GUARDED_CALLS: dict[str, int] = {}


async def guarded(request: Request) -> Response:
    """Answers the status the test set for its `key` (a circuit breaker's app failing on demand); each key
    is its own method, so its own breaker."""
    key = request.path_params["key"]
    GUARDED_CALLS[key] = GUARDED_CALLS.get(key, 0) + 1
    return Response(b"guarded", status_code=GUARDED.get(key, 200))


async def slow(request: Request) -> Response:
    await asyncio.sleep(3)  # longer than the resiliency timeout of the tests (500 ms)
    return Response(b"late")


def build() -> Starlette:
    return Starlette(
        routes=[
            Route("/flaky", flaky, methods=["GET"]),
            Route("/slow", slow, methods=["GET"]),
            Route("/guarded/{key}", guarded, methods=["GET", "POST"]),
            Route("/teapot", teapot, methods=["GET", "POST"]),
            Route("/broken", broken, methods=["GET", "POST"]),
            Route("/{path:path}", echo, methods=["GET", "POST", "PUT", "DELETE", "PATCH", "NONE"]),
        ]
    )
