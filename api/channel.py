"""`create_channel_app(settings)`: the app channel, i.e. what the sidecar calls. Actor methods, reminders
and timers (`DaprActor`), `/dapr/config`, `/dapr/subscribe` and event deliveries (`DaprApp`).

It listens on its own loopback port and answers only requests carrying `dapr-api-token: APP_API_TOKEN`
(the SDK's `DaprActor` checks no token, and daprd sends it on every call, `/dapr/config` included).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hmac
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import aiohttp
from dapr.ext.fastapi import DaprActor, DaprApp
from dapr.ext.workflow.aio import DaprWorkflowClient
from fastapi import FastAPI, Request
from pydantic import JsonValue
from starlette.middleware import Middleware
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from api.actor_client import ActorProxies, PooledActorClient
from api.channel_routes import ChannelRoutes, DeliveryHandler
from api.feed import Feed
from api.logs import sdk_logger_options
from api.metrics import ReminderMetricsMiddleware
from api.settings import Settings, series_settings
from api.shared import Shared
from api.sidecar_link import SidecarError, wait_for_sidecar
from api.span_export import SpanExport
from api.tracing import TraceContextMiddleware, outgoing_headers
from api.workflow_outcomes import WorkflowOutcomeInterceptor
from todo_actors.config import ActorsConfig
from todo_actors.errors import NotFound
from todo_actors.hosting import DaprPublisher, EventPublisher, register_actors
from todo_actors.interface import LIST_ACTOR_TYPE, GetList, TodoListActorInterface
from todo_actors.model import ListSummary
from todo_actors.serializer import PydanticSerializer
from todo_actors.transitions import Limits
from workflows.completion import forward_completion
from workflows.hosting import start_worker
from workflows.taskhub import close_workflow_client

__all__ = ["REMINDERS_TOPIC", "TASK_EVENTS_TOPIC", "AppTokenMiddleware", "create_channel_app"]

log = logging.getLogger("api.channel")

TASK_EVENTS_TOPIC = "task-events"
REMINDERS_TOPIC = "reminders"


class AppTokenMiddleware:
    """401 for any request without the right `dapr-api-token` header (constant-time comparison)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            sent = next((v for k, v in scope["headers"] if k == b"dapr-api-token"), b"")
            if not hmac.compare_digest(sent, self._token):
                response = JSONResponse(
                    {"errorCode": "ERR_UNAUTHORIZED", "message": "missing or invalid dapr-api-token"},
                    status_code=401,
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_channel_app(
    settings: Settings,
    *,
    shared: Shared | None = None,
    clock: Callable[[], dt.datetime] | None = None,
    publisher: EventPublisher | None = None,
) -> FastAPI:
    """The app channel. `clock` is the actors' `now` (default: the shared clock, which follows the
    sidecar's dev clock); `publisher` defaults to a `DaprPublisher` on the configured sidecar."""
    shared = shared or Shared()
    metrics = shared.metrics
    spans = SpanExport(settings.otel, role="channel")
    state: dict[str, Any] = {}
    deliveries: dict[str, DeliveryHandler] = {}  # filled below, before the app first starts

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            spans.start()
            stack.push_async_callback(spans.aclose)
            http = aiohttp.ClientSession()
            stack.push_async_callback(http.close)
            await wait_for_sidecar(settings, http)
            serializer = PydanticSerializer()
            proxies = ActorProxies(
                PooledActorClient(
                    settings.dapr_http_endpoint,
                    serializer,
                    api_token=settings.dapr_token,
                    extra_headers=outgoing_headers,
                ),
                serializer,
            )
            stack.push_async_callback(proxies.close)
            events_publisher = publisher
            if events_publisher is None:
                # Through the channel's own pool (closed with the proxies).
                events_publisher = DaprPublisher(proxies.client.http, trace_context=outgoing_headers)
            config = ActorsConfig(
                pubsub_name=settings.pubsub,
                task_events_topic=TASK_EVENTS_TOPIC,
                reminders_topic=REMINDERS_TOPIC,
                limits=Limits(
                    items_per_list=settings.items_per_list,
                    reminders_per_item=settings.reminders_per_item,
                ),
                clock=clock or shared.clock.now,
                publisher=events_publisher,
                # State, reminder and timer calls of the actors share the channel's connection pool.
                actor_client=proxies.client,
            )
            await register_actors(actor, config)
            # The series worker runs in the app process, beside the actors its activities call.
            worker = await asyncio.to_thread(
                start_worker,
                series_settings(settings),
                host=settings.dapr_host,
                grpc_port=settings.dapr_grpc_port,
                # No shared pooled client here: activities run on the worker's own event loops.
                list_actor=None,
                interceptors=[WorkflowOutcomeInterceptor(metrics.count_workflow_outcome)],
                logger_options=sdk_logger_options(),
            )
            stack.callback(worker.shutdown)
            wf_client = DaprWorkflowClient(
                host=settings.dapr_host,
                port=str(settings.dapr_grpc_port),
                logger_options=sdk_logger_options(),
            )
            stack.push_async_callback(close_workflow_client, wf_client)
            state["workflows"] = wf_client
            state["feed"] = Feed(
                proxies.client.http,
                settings.state_store,
                max_events=settings.feed_max_events,
                seen_ttl_seconds=settings.feed_seen_ttl_seconds,
                on_append=shared.signal.notify,
            )
            state["proxies"] = proxies
            log.info("app channel ready (actors registered, subscribed to %s)", settings.pubsub)
            yield
            state.clear()

    app = FastAPI(
        title="todo-engine app channel",
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        # Tracing and metrics are this app's own (api.tracing, api.metrics); FastAPI's native OpenTelemetry
        # would add spans with other ids, and even off-by-environment it costs ~5 us per request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        middleware=[
            Middleware(TraceContextMiddleware, spans=spans, sample_ratio=settings.trace_sample_ratio),
            Middleware(AppTokenMiddleware, token=settings.app_api_token.get_secret_value()),
            Middleware(ReminderMetricsMiddleware, metrics=metrics),
            Middleware(ChannelRoutes, deliveries=deliveries),
        ],
    )
    actor = DaprActor(app)
    subscriptions = DaprApp(app)

    async def owner_of(list_id: str) -> str | None:
        owner = shared.owners.get(list_id)
        if owner is not None:
            return owner
        proxies: ActorProxies = state["proxies"]
        list_actor = proxies.get(TodoListActorInterface, LIST_ACTOR_TYPE, list_id)
        try:
            summary: ListSummary = (await list_actor.get_list(GetList())).unwrap()
        except NotFound:
            return None
        shared.owners.record(list_id, summary.owner)
        return summary.owner

    async def deliver(topic: str, body: bytes) -> tuple[dict[str, str], dict[str, Any] | None]:
        """Record one delivered event in its owner's feed: the reply, and the event's `data` when recorded."""
        try:
            envelope = json.loads(body)
        except ValueError:
            envelope = None
        if not isinstance(envelope, dict):
            log.warning("%s: dropping a delivery that is not a JSON CloudEvent", topic)
            metrics.count_delivery(topic, "dropped")
            return {"status": "DROP"}, None
        event_id, event_type = envelope.get("id"), envelope.get("type")
        data = envelope.get("data")
        if isinstance(data, str):
            with contextlib.suppress(ValueError):
                data = json.loads(data)
        if not isinstance(event_id, str) or not isinstance(event_type, str) or not isinstance(data, dict):
            log.warning("%s: dropping a malformed event %r", topic, str(envelope)[:200])
            metrics.count_delivery(topic, "dropped")
            return {"status": "DROP"}, None
        list_id, item_id = data.get("list_id"), data.get("item_id")
        owner = data.get("owner")
        if not isinstance(owner, str) and isinstance(list_id, str):
            owner = await owner_of(list_id)
        if not isinstance(owner, str):
            log.warning("%s: dropping event %s: the owner of list %r is unknown", topic, event_id, list_id)
            metrics.count_delivery(topic, "dropped")
            return {"status": "DROP"}, None
        feed: Feed = state["feed"]
        try:
            cursor = await feed.append(
                owner,
                event_id,
                event_type,
                _json_object(data),
                at=_instant(data.get("at") or data.get("fire_at")),
                list_id=list_id if isinstance(list_id, str) else None,
                item_id=item_id if isinstance(item_id, str) else None,
            )
        except (*SidecarError, TimeoutError) as exc:
            log.warning("%s: could not record event %s (will be retried): %r", topic, event_id, exc)
            metrics.count_delivery(topic, "retry")
            return {"status": "RETRY"}, None
        metrics.count_delivery(topic, "duplicate" if cursor is None else "appended")
        log.debug("%s: event %s %s", topic, event_id, "duplicate" if cursor is None else f"at {cursor}")
        return {"status": "SUCCESS"}, data

    async def on_task_event(body: bytes) -> dict[str, str]:
        outcome, data = await deliver(TASK_EVENTS_TOPIC, body)
        if data is not None and "workflows" in state:
            # A completed occurrence item advances its series (anchor=completion); redelivery is harmless.
            try:
                await forward_completion(state["workflows"], data)
            except Exception as exc:
                log.warning("could not forward a completion to its series: %r", exc)
                return {"status": "RETRY"}
        return outcome

    async def on_reminder(body: bytes) -> dict[str, str]:
        # "Handling" a notification is, for now, recording `reminder.fired` in the owner's feed (once).
        outcome, _ = await deliver(REMINDERS_TOPIC, body)
        return outcome

    for topic, handler in ((TASK_EVENTS_TOPIC, on_task_event), (REMINDERS_TOPIC, on_reminder)):
        # Registered with `DaprApp` for `/dapr/subscribe` (and as a FastAPI route); `ChannelRoutes`
        # serves the same path first.
        deliveries[_delivery_route(settings.pubsub, topic)] = handler
        subscriptions.subscribe(pubsub=settings.pubsub, topic=topic)(_as_endpoint(handler))

    return app


def _delivery_route(pubsub: str, topic: str) -> str:
    """The route `DaprApp.subscribe` gives a subscription without one of its own."""
    return f"/events/{pubsub}/{topic}"


def _as_endpoint(handler: DeliveryHandler) -> Callable[[Request], Awaitable[Mapping[str, Any]]]:
    async def endpoint(request: Request) -> Mapping[str, Any]:
        return await handler(await request.body())

    return endpoint


def _json_object(data: dict[str, Any]) -> dict[str, JsonValue]:
    return {str(k): v for k, v in data.items()}


def _instant(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None
