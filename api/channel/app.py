"""`create_channel_app(settings)`: the app channel, i.e. what the sidecar calls, as one Starlette app with
one route table: actor methods, reminders, timers and deactivation (`api.channel.actors`), `/dapr/config`,
`/dapr/subscribe`, event deliveries (`api.channel.deliveries`) and the `housekeeping` binding's ticks.

It listens on its own loopback port and answers only requests carrying `dapr-api-token: APP_API_TOKEN`
(daprd sends it on every call, `/dapr/config` included).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from dapr.actor import ActorRuntime
from dapr.ext.workflow.aio import DaprWorkflowClient
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Router

from api.channel.actors import actor_routes
from api.channel.dead_letters import DeadLetters
from api.channel.deliveries import REMINDERS_TOPIC, TASK_EVENTS_TOPIC, Batching, Deliveries, DeliveryHandler
from api.channel.feed import Feed
from api.channel.housekeeping import HOUSEKEEPING_ROUTE, Housekeeping, tick_time
from api.channel.workflow_outcomes import WorkflowOutcomeInterceptor
from api.middleware.app_token import AppTokenMiddleware
from api.middleware.dev_clock import DevClockMiddleware
from api.middleware.metrics import ReminderMetricsMiddleware
from api.middleware.span_export import SpanExport
from api.middleware.tracing import TraceContextMiddleware, outgoing_headers
from api.plain_endpoint import raw_route
from api.process.logs import sdk_logger_options
from api.process.settings import Settings, series_settings
from api.process.shared import Shared
from api.process.sidecar_link import actor_host_http, sidecar_http, wait_for_sidecar
from api.webhooks import open_webhooks
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

__all__ = ["REMINDERS_TOPIC", "TASK_EVENTS_TOPIC", "create_channel_app"]

log = logging.getLogger("api.channel")


def create_channel_app(
    settings: Settings,
    *,
    shared: Shared | None = None,
    clock: Callable[[], dt.datetime] | None = None,
    publisher: EventPublisher | None = None,
) -> Router:
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
    async def lifespan(app: Router) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            spans.start()
            stack.push_async_callback(spans.aclose)
            http = sidecar_http(settings, shared)
            stack.push_async_callback(http.close)
            await wait_for_sidecar(settings, http)
            serializer = PydanticSerializer()
            proxies = ActorProxies(PooledActorClient(http, serializer), serializer)
            host_http = actor_host_http(settings)
            stack.push_async_callback(host_http.close)
            events_publisher = publisher
            if events_publisher is None:
                events_publisher = DaprPublisher(host_http, trace_context=outgoing_headers)
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
                # State, reminder and timer calls of the actors: on connections of their own.
                actor_client=PooledActorClient(host_http, serializer),
            )
            await register_actors(ActorRuntime, config)
            webhooks = open_webhooks(settings, proxies.client.http, clock=clock or shared.clock.now)
            # The series worker runs in the app process, beside the actors its activities call.
            worker = await asyncio.to_thread(
                start_worker,
                series_settings(settings),
                host=settings.dapr_host,
                grpc_port=settings.dapr_grpc_port,
                # The same proxies: on the worker's own event loop they get that loop's connections.
                list_actor=functools.partial(proxies.get, TodoListActorInterface, LIST_ACTOR_TYPE),
                webhook_attempt=webhooks.attempts(metrics),
                interceptors=[WorkflowOutcomeInterceptor(metrics.count_workflow_outcome)],
                logger_options=sdk_logger_options(),
            )
            stack.callback(worker.shutdown)
            # Closed before the worker stops: its activities send on this loop, which the join would block.
            stack.push_async_callback(webhooks.aclose)
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
            fan_out = webhooks.fan_out(wf_client, metrics)
            deliveries.start(
                feed, owner_of, functools.partial(forward_completion, wf_client), dead_letters, fan_out
            )
            stack.callback(deliveries.stop)
            log.info("app channel ready (actors registered, subscribed to %s)", settings.pubsub)
            yield
            state.clear()

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

    async def subscribe(request: Request) -> Response:
        return JSONResponse(deliveries.subscriptions())

    async def housekeeping_probe(request: Request) -> Response:
        return Response(status_code=200)  # daprd's probe: the app reads the `housekeeping` binding

    async def housekeeping_tick(request: Request) -> Response:
        housekeeping: Housekeeping = state["housekeeping"]
        run = await housekeeping.run(tick_time(request.headers))
        return JSONResponse({"skipped": True} if run is None else run.as_json())

    routes: list[BaseRoute] = [
        *actor_routes(),
        *(raw_route(path, ["POST"], _delivery(handler)) for path, handler in deliveries.handlers().items()),
        raw_route("/dapr/subscribe", ["GET"], subscribe),
        raw_route(HOUSEKEEPING_ROUTE, ["OPTIONS"], housekeeping_probe),
        raw_route(HOUSEKEEPING_ROUTE, ["POST"], housekeeping_tick),
    ]
    # A plain router, not an application: every actor call passes here, and the endpoints answer their
    # own errors (an unexpected one is the server's 500, logged), so no error middleware is needed.
    return Router(
        routes=routes,
        lifespan=lifespan,
        middleware=[
            Middleware(TraceContextMiddleware, spans=spans, sample_ratio=settings.trace_sample_ratio),
            Middleware(AppTokenMiddleware, token=settings.app_api_token.get_secret_value()),
            *([Middleware(DevClockMiddleware, clock=shared.clock)] if settings.dev_clock else []),
            Middleware(ReminderMetricsMiddleware, metrics=metrics),
        ],
    )


def _delivery(handler: DeliveryHandler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return JSONResponse(await handler(await request.body()))

    return endpoint
