"""`create_channel_app(settings)`: the app channel, i.e. what the sidecar calls. Actor methods, reminders
and timers (`DaprActor`), `/dapr/config`, `/dapr/subscribe`, event deliveries (`api.deliveries`) and the
`housekeeping` cron binding's ticks (`api.housekeeping`).

It listens on its own loopback port and answers only requests carrying `dapr-api-token: APP_API_TOKEN`
(the SDK's `DaprActor` checks no token, and daprd sends it on every call, `/dapr/config` included).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import hmac
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from dapr.ext.fastapi import DaprActor
from dapr.ext.workflow.aio import DaprWorkflowClient
from fastapi import FastAPI, Request
from starlette.middleware import Middleware
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from api.channel_routes import ChannelRoutes, DeliveryHandler
from api.dead_letters import DeadLetters
from api.deliveries import REMINDERS_TOPIC, TASK_EVENTS_TOPIC, Batching, Deliveries
from api.feed import Feed
from api.housekeeping import HOUSEKEEPING_ROUTE, Housekeeping, tick_time
from api.logs import sdk_logger_options
from api.metrics import ReminderMetricsMiddleware
from api.settings import Settings, series_settings
from api.shared import OffsetClock, Shared
from api.sidecar_link import sidecar_http, wait_for_sidecar
from api.span_export import SpanExport
from api.tracing import TraceContextMiddleware, outgoing_headers
from api.workflow_outcomes import WorkflowOutcomeInterceptor
from todo_actors.client import ActorProxies, PooledActorClient
from todo_actors.config import ActorsConfig
from todo_actors.errors import NotFound
from todo_actors.host import DaprPublisher, EventPublisher, register_actors
from todo_actors.interface import LIST_ACTOR_TYPE, GetList, TodoListActorInterface
from todo_actors.model import ListSummary
from todo_actors.serializer import PydanticSerializer
from todo_actors.transitions import Limits
from workflows.completion import forward_completion
from workflows.hosting import start_worker
from workflows.taskhub import TaskHub, close_workflow_client

__all__ = [
    "REMINDERS_TOPIC",
    "TASK_EVENTS_TOPIC",
    "AppTokenMiddleware",
    "DevClockMiddleware",
    "create_channel_app",
]

log = logging.getLogger("api.channel")


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


class DevClockMiddleware:
    """With the dev clock: adopt the offset the sidecar sends with each call (`x-dev-clock-offset`).

    The sidecar steps its clock through due instants; a reminder's handler must see the instant that
    fired it, not the offset of the last advance request.
    """

    def __init__(self, app: ASGIApp, clock: OffsetClock) -> None:
        self.app = app
        self._clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == b"x-dev-clock-offset":
                    try:
                        self._clock.follow(float(value))
                    except ValueError:
                        log.warning("ignoring a malformed x-dev-clock-offset header: %r", value[:40])
                    break
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
    deliveries = Deliveries(
        settings.pubsub,
        metrics,
        Batching(max_messages=settings.feed_batch_max, window_ms=settings.feed_batch_window_ms),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            spans.start()
            stack.push_async_callback(spans.aclose)
            http = sidecar_http(settings, shared)
            stack.push_async_callback(http.close)
            await wait_for_sidecar(settings, http)
            serializer = PydanticSerializer()
            proxies = ActorProxies(PooledActorClient(http, serializer), serializer)
            events_publisher = publisher
            if events_publisher is None:
                events_publisher = DaprPublisher(http, trace_context=outgoing_headers)
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
                # State, reminder and timer calls of the actors share the process's connections.
                actor_client=proxies.client,
            )
            await register_actors(actor, config)
            # The series worker runs in the app process, beside the actors its activities call.
            worker = await asyncio.to_thread(
                start_worker,
                series_settings(settings),
                host=settings.dapr_host,
                grpc_port=settings.dapr_grpc_port,
                # The same proxies: on the worker's own event loop they get that loop's connections.
                list_actor=functools.partial(proxies.get, TodoListActorInterface, LIST_ACTOR_TYPE),
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
            feed = Feed(
                proxies.client.http,
                settings.state_store,
                max_events=settings.feed_max_events,
                seen_ttl_seconds=settings.feed_seen_ttl_seconds,
                on_append=appended,
            )
            taskhub = TaskHub(settings.dapr_grpc_address, settings.dapr_token)
            stack.push_async_callback(taskhub.aclose)
            state["housekeeping"] = Housekeeping(
                taskhub=taskhub,
                feed=feed,
                http=proxies.client.http,
                store=settings.state_store,
                metrics=metrics,
                clock=clock or shared.clock.now,
                workflow_retention_seconds=settings.workflow_retention_seconds,
                feed_retention_seconds=settings.feed_retention_seconds,
            )
            state["proxies"] = proxies
            dead_letters = DeadLetters(
                proxies.client.http,
                settings.state_store,
                max_kept=settings.dead_letters_max,
                clock=shared.clock.now,
            )
            deliveries.start(feed, owner_of, functools.partial(forward_completion, wf_client), dead_letters)
            stack.callback(deliveries.stop)
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
            *([Middleware(DevClockMiddleware, clock=shared.clock)] if settings.dev_clock else []),
            Middleware(ReminderMetricsMiddleware, metrics=metrics),
            Middleware(ChannelRoutes, deliveries=deliveries.handlers()),
        ],
    )
    actor = DaprActor(app)

    def appended(user: str) -> None:
        shared.signal.notify(user)
        housekeeping: Housekeeping | None = state.get("housekeeping")
        if housekeeping is not None:
            housekeeping.touched(user)

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

    @app.get("/dapr/subscribe", include_in_schema=False)
    async def subscribe() -> list[dict[str, Any]]:
        return deliveries.subscriptions()

    @app.options(HOUSEKEEPING_ROUTE, include_in_schema=False)
    async def housekeeping_probe() -> Response:
        return Response(status_code=200)  # daprd's probe: the app reads the `housekeeping` binding

    @app.post(HOUSEKEEPING_ROUTE, include_in_schema=False)
    async def housekeeping_tick(request: Request) -> dict[str, Any]:
        housekeeping: Housekeeping = state["housekeeping"]
        run = await housekeeping.run(tick_time(request.headers))
        return {"skipped": True} if run is None else run.as_json()

    for path, handler in deliveries.handlers().items():
        # `ChannelRoutes` serves these first; FastAPI's routes answer the same if it is not installed.
        app.add_api_route(path, _as_endpoint(handler), methods=["POST"], include_in_schema=False)

    return app


def _as_endpoint(handler: DeliveryHandler) -> Callable[[Request], Awaitable[Mapping[str, Any]]]:
    async def endpoint(request: Request) -> Mapping[str, Any]:
        return await handler(await request.body())

    return endpoint
