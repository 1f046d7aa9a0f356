"""Subscriber apps the pub/sub tests deliver to: one built with the SDK's `DaprApp`, one answering
`/dapr/subscribe` with raw v2 routing rules, one with bulk subscriptions. All record every delivery and
can be scripted to reply with a given status/body or to hold a delivery until released."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dapr.ext.fastapi import DaprApp
from fastapi import FastAPI, Request, Response
from starlette.applications import Starlette
from starlette.routing import Route

PUBSUB = "pubsub"


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)  # when the app had read the request

    @property
    def event(self) -> dict[str, Any]:
        parsed = json.loads(self.body)
        assert isinstance(parsed, dict)
        return parsed


@dataclass
class Recorder:
    """Thread-safe record of deliveries plus per-path scripted replies and gates."""

    deliveries: list[Delivery] = field(default_factory=list)
    replies: dict[str, list[tuple[int, bytes]]] = field(default_factory=dict)
    gates: dict[str, threading.Event] = field(default_factory=dict)
    in_flight: dict[str, int] = field(default_factory=dict)
    max_in_flight: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.deliveries.clear()
            self.replies.clear()
            self.gates.clear()
            self.in_flight.clear()
            self.max_in_flight.clear()

    def script(self, path: str, *replies: tuple[int, bytes | str]) -> None:
        """Reply to the next deliveries on `path` with these (status, body); then `None` (200 null)."""
        with self.lock:
            self.replies[path] = [(s, b.encode() if isinstance(b, str) else b) for s, b in replies]

    def on(self, path: str) -> list[Delivery]:
        with self.lock:
            return [d for d in self.deliveries if d.path == path]

    async def handle(self, request: Request) -> Response | None:
        path = request.url.path
        body = await request.body()
        with self.lock:
            self.deliveries.append(Delivery(path, dict(request.headers), body))
            self.in_flight[path] = self.in_flight.get(path, 0) + 1
            self.max_in_flight[path] = max(self.max_in_flight.get(path, 0), self.in_flight[path])
            scripted = self.replies.get(path)
            reply = scripted.pop(0) if scripted else None
            gate = self.gates.get(path)
        try:
            if gate is not None:
                for _ in range(500):
                    if gate.is_set():
                        break
                    await asyncio.sleep(0.01)
            if reply is None:
                return None  # FastAPI answers 200 `null`, which daprd counts as success
            return Response(reply[1], status_code=reply[0], media_type="application/json")
        finally:
            with self.lock:
                self.in_flight[path] -= 1


# topic -> SDK subscribe() keyword arguments
SDK_SUBSCRIPTIONS: dict[str, dict[str, Any]] = {
    "orders": {},
    "custom": {"route": "/custom/orders"},
    "flaky": {"dead_letter_topic": "flaky-dlq"},
    "flaky-dlq": {},
    "nodlq": {},
    "raw": {"metadata": {"rawPayload": "true"}},
    "slow": {"dead_letter_topic": "slow-dlq"},
    "slow-dlq": {},
}


def build_sdk_app(recorder: Recorder) -> FastAPI:
    app = FastAPI()
    dapr_app = DaprApp(app)

    async def handler(request: Request) -> Any:  # `Any`: FastAPI derives no response model
        return await recorder.handle(request)

    for topic, kwargs in SDK_SUBSCRIPTIONS.items():
        dapr_app.subscribe(pubsub=PUBSUB, topic=topic, **kwargs)(handler)
    return app


ROUTED_SUBSCRIPTIONS: list[dict[str, Any]] = [
    {
        "pubsubname": PUBSUB,
        "topic": "routed",
        "routes": {
            "rules": [
                {"match": 'event.type == "order.created"', "path": "/orders/created"},
                {
                    "match": 'event.data.priority == "high" && event.source.startsWith("pub")',
                    "path": "/orders/high",
                },
                {"match": "event.data.qty > 10 || has(event.data.bulk)", "path": "/orders/big"},
            ],
            "default": "/orders/other",
        },
        "deadLetterTopic": "routed-dlq",
        "metadata": {"team": "blue"},
    },
    {"pubsubname": PUBSUB, "topic": "routed-dlq", "route": "/dlq"},
    {
        "pubsubname": PUBSUB,
        "topic": "strict",
        "routes": {"rules": [{"match": 'event.type == "only.this"', "path": "/strict"}]},
        "deadLetterTopic": "strict-dlq",
    },
    {"pubsubname": PUBSUB, "topic": "strict-dlq", "route": "/strict-dlq"},
    {"pubsubname": PUBSUB, "topic": "noroute"},
]


@dataclass
class RawApp:
    """A Starlette app whose `/dapr/subscribe` reply the test sets; every POST is recorded."""

    recorder: Recorder
    subscribe_status: int = 200
    subscribe_body: Any = field(default_factory=lambda: ROUTED_SUBSCRIPTIONS)

    def build(self) -> Starlette:
        async def subscribe(request: Request) -> Response:
            return Response(
                json.dumps(self.subscribe_body),
                status_code=self.subscribe_status,
                media_type="application/json",
            )

        async def record(request: Request) -> Response:
            reply = await self.recorder.handle(request)
            return reply if reply is not None else Response(b"null")

        return Starlette(
            routes=[
                Route("/dapr/subscribe", subscribe, methods=["GET"]),
                Route("/{path:path}", record, methods=["POST"]),
            ]
        )


def _bulk(topic: str, route: str, max_messages: int, await_ms: int, **extra: Any) -> dict[str, Any]:
    bulk = {"enabled": True, "maxMessagesCount": max_messages, "maxAwaitDurationMs": await_ms}
    return {"pubsubname": PUBSUB, "topic": topic, "route": route, "bulkSubscribe": bulk, **extra}


BULK_SUBSCRIPTIONS: list[dict[str, Any]] = [
    _bulk("bulk", "/bulk", 100, 200, deadLetterTopic="bulk-dlq", metadata={"team": "blue"}),
    {"pubsubname": PUBSUB, "topic": "bulk-dlq", "route": "/bulk-dlq"},
    _bulk("capped", "/capped", 3, 300),
    _bulk("lone", "/lone", 0, 50),
    _bulk("nodlq-bulk", "/nodlq-bulk", 0, 100),
    _bulk("raw-bulk", "/raw-bulk", 0, 100, metadata={"rawPayload": "true"}),
    {
        **_bulk("split", "", 0, 500),
        "routes": {
            "rules": [{"match": 'event.type == "kind.a"', "path": "/split/a"}],
            "default": "/split/other",
        },
    },
]

Verdict = Callable[[dict[str, Any]], str]


@dataclass
class BulkApp:
    """Bulk subscriptions; a delivery without a scripted reply is answered with one status per entry,
    `verdict(entry)` (SUCCESS unless the test sets it)."""

    recorder: Recorder
    verdict: Verdict = field(default=lambda entry: "SUCCESS")

    def build(self) -> Starlette:
        async def subscribe(request: Request) -> Response:
            return Response(json.dumps(BULK_SUBSCRIPTIONS), media_type="application/json")

        async def deliver(request: Request) -> Response:
            reply = await self.recorder.handle(request)
            if reply is not None:
                return reply
            envelope = json.loads(await request.body())
            if "entries" not in envelope:  # a plain (dead letter) delivery
                return Response(b"null", media_type="application/json")
            statuses = [{"entryId": e["entryId"], "status": self.verdict(e)} for e in envelope["entries"]]
            return Response(json.dumps({"statuses": statuses}), media_type="application/json")

        return Starlette(
            routes=[
                Route("/dapr/subscribe", subscribe, methods=["GET"]),
                Route("/{path:path}", deliver, methods=["POST"]),
            ]
        )
