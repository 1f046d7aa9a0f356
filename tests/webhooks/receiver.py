"""A local webhook receiver for the tests: a tiny Starlette app on loopback that answers with the statuses
queued for it (200 when none is) and keeps every request, plus an independent Standard Webhooks check."""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.harness import ServedApp

__all__ = ["Received", "Receiver", "receiver", "verifies"]


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str = ""
    statuses: list[int] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, *statuses: int) -> None:
        with self.lock:
            self.statuses.extend(statuses)

    def at(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.path == path]

    async def endpoint(self, request: Request) -> Response:
        body = await request.body()
        with self.lock:
            self.requests.append(Received(request.url.path, dict(request.headers), body))
            status = self.statuses.pop(0) if self.statuses else 200
        headers = {"location": self.url + "/elsewhere"} if 300 <= status < 400 else None
        return Response(status_code=status, headers=headers)


@contextmanager
def receiver() -> Iterator[Receiver]:
    got = Receiver()
    app = Starlette(routes=[Route("/{path:path}", got.endpoint, methods=["POST"])])
    served = ServedApp(app).start()
    got.url = served.url
    try:
        yield got
    finally:
        served.stop()


def verifies(secret: str, received: Received) -> bool:
    """Whether one of the `v1` signatures of `received` is the HMAC-SHA256 of `id.timestamp.body` under
    `secret` (written from the Standard Webhooks spec, not from the app's signing code)."""
    key = base64.b64decode(secret.split("_", 1)[1])
    content = (
        received.headers["webhook-id"].encode()
        + b"."
        + received.headers["webhook-timestamp"].encode()
        + b"."
        + received.body
    )
    expected = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest())
    for signature in received.headers["webhook-signature"].split(" "):
        version, _, value = signature.partition(",")
        if version == "v1" and hmac.compare_digest(value.encode(), expected):
            return True
    return False
