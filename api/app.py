"""`create_app(settings)`: the public REST API. Routes proxy to the actors through the sidecar; the
lifespan opens (and closes) the connections every request shares.

The public app never serves the app channel (`/actors/...`, `/dapr/...`): that is `create_channel_app`,
on its own loopback port behind APP_API_TOKEN.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from starlette.middleware import Middleware
from starlette.types import Scope

from api.auth import TokenVerifier
from api.channel.feed import Feed
from api.deps import Resources
from api.middleware.body_limit import BodyLimitMiddleware
from api.middleware.idempotency import IdempotencyMiddleware, IdempotencyStore
from api.middleware.metrics import MetricsMiddleware
from api.middleware.span_export import SpanExport
from api.middleware.tracing import TraceContextMiddleware
from api.openapi import install_openapi
from api.problems import install_problem_handlers
from api.process.logs import sdk_logger_options
from api.process.settings import MIN_SECRET_BYTES, Settings, series_settings
from api.process.shared import Shared
from api.process.sidecar_link import open_dapr_client, sidecar_http, wait_for_sidecar
from api.ratelimit import RateLimiter
from api.routes import admin, batch, calendar, dev, events, health, lists, members, todos
from api.routes import series as series_routes
from api.routes import webhooks as webhook_routes
from api.routes import workflows as workflow_routes
from api.web import router as web_router
from api.webhooks import open_webhooks
from todo_actors.client import ActorProxies, PooledActorClient
from todo_actors.interface import LIST_ACTOR_TYPE, TodoListActorInterface
from todo_actors.serializer import PydanticSerializer
from todo_actors.sidecar_http import SidecarHttp, SidecarHttpError
from workflows.hosting import open_series

__all__ = ["create_app"]

log = logging.getLogger("api.app")

_DESCRIPTION = """\
Todo lists and items as Dapr virtual actors.

* Authenticate with `Authorization: Bearer <JWT>` (HS256, `sub` = user); `todo-engine token <user>` mints one.
* Errors are RFC 9457 `application/problem+json` with a stable `type`.
* `ETag` on every list and item; send it back in `If-Match` on PATCH/DELETE (412 when stale).
* `Idempotency-Key` on POST makes retries safe.
* Collections page with `limit` + `cursor` → `next_cursor`.
"""


def create_app(settings: Settings, *, shared: Shared | None = None) -> FastAPI:
    """The public API. Pass the same `shared` to `create_channel_app` when both run in one process."""
    shared = shared or Shared()
    metrics = shared.metrics
    spans = SpanExport(settings.otel, role="public")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            spans.start()
            stack.push_async_callback(spans.aclose)
            http = sidecar_http(settings, shared)
            stack.push_async_callback(http.close)
            await wait_for_sidecar(settings, http)
            dapr = open_dapr_client(settings)
            stack.push_async_callback(dapr.close)
            secret = await _jwt_secret(settings, http)
            serializer = PydanticSerializer()
            proxies = ActorProxies(
                PooledActorClient(http, serializer, on_call=metrics.count_actor_call), serializer
            )
            resources = Resources(
                settings=settings,
                shared=shared,
                metrics=metrics,
                limiter=RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst),
                verifier=TokenVerifier(
                    secret,
                    issuer=settings.jwt_issuer,
                    audience=settings.jwt_audience,
                    max_ttl_seconds=settings.jwt_max_ttl_seconds,
                ),
                proxies=proxies,
                dapr=dapr,
                feed=Feed(
                    proxies.client.http,
                    settings.state_store,
                    max_events=settings.feed_max_events,
                    seen_ttl_seconds=settings.feed_seen_ttl_seconds,
                ),
                idempotency=IdempotencyStore(dapr, settings.state_store, settings.idempotency_ttl_seconds),
                http=http,
            )
            if settings.dev_clock:
                await dev.sync_clock(resources)
            app.state.resources = resources
            series = open_series(
                series_settings(settings),
                dapr=dapr,
                host=settings.dapr_host,
                grpc_port=settings.dapr_grpc_port,
                api_token=settings.dapr_token,
                list_actor=lambda list_id: proxies.get(TodoListActorInterface, LIST_ACTOR_TYPE, list_id),
                clock=shared.clock.now,
                on_started=metrics.count_workflow_started,
                logger_options=sdk_logger_options(),
            )
            stack.push_async_callback(series.aclose)
            app.state.series = series
            app.state.webhooks = open_webhooks(settings, http, clock=shared.clock.now)
            stack.push_async_callback(app.state.webhooks.aclose)
            log.info("public API ready (sidecar %s)", settings.dapr_http_endpoint)
            yield

    app = FastAPI(
        title="todo-engine",
        version="0.1.0",
        lifespan=lifespan,
        docs_url="/docs" if settings.docs else None,
        redoc_url=None,
        openapi_url="/openapi.json",
        # Tracing and metrics are this app's own (api.middleware): FastAPI's native OpenTelemetry would
        # add spans with other ids, and costs time per request even when switched off by environment.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        middleware=[
            Middleware(TraceContextMiddleware, spans=spans, sample_ratio=settings.trace_sample_ratio),
            Middleware(MetricsMiddleware, metrics=metrics),
            Middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes),
            Middleware(IdempotencyMiddleware, store=_idempotency_store, verifier=_verifier),
        ],
    )
    install_problem_handlers(app)
    # The busiest routes first in the one router: matched at once, before the included routers are searched.
    app.router.routes[:0] = todos.plain_routes
    for module in (
        lists,
        members,
        todos,
        batch,
        calendar,
        series_routes,
        workflow_routes,
        events,
        admin,
        health,
    ):
        app.include_router(module.router)
    app.include_router(webhook_routes.router)
    if settings.dev_clock:
        app.include_router(dev.router)
    app.include_router(web_router)  # the reference page at `/` (not in the OpenAPI document)
    install_openapi(app, description=_DESCRIPTION)
    return app


def _resources_of(scope: Scope) -> Resources | None:
    app: Any = scope.get("app")
    return getattr(getattr(app, "state", None), "resources", None)


def _idempotency_store(scope: Scope) -> IdempotencyStore | None:
    resources = _resources_of(scope)
    return None if resources is None else resources.idempotency


def _verifier(scope: Scope) -> TokenVerifier | None:
    resources = _resources_of(scope)
    return None if resources is None else resources.verifier


async def _jwt_secret(settings: Settings, http: SidecarHttp) -> str:
    """The configured secret, or the one in the Dapr secret store (read over the HTTP API, which daprd
    and the embedded sidecar both serve)."""
    if settings.jwt_secret is not None:
        return settings.jwt_secret.get_secret_value()
    store, key = settings.jwt_secret_store, settings.jwt_secret_key
    try:
        _, _, body = await http.request("GET", f"/v1.0/secrets/{store}/{key}")
    except SidecarHttpError as exc:
        raise RuntimeError(f"cannot read secret {key!r} from store {store!r}: {exc}") from exc
    secret = json.loads(body).get(key)
    if not isinstance(secret, str) or len(secret.encode()) < MIN_SECRET_BYTES:
        raise RuntimeError(
            f"secret {key!r} in store {store!r} is missing or shorter than {MIN_SECRET_BYTES} bytes"
        )
    return secret
