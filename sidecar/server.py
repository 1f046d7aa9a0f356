"""The sidecar process: components, engines and the HTTP + gRPC servers, with a uvicorn-style lifecycle.

`start()` brings the API servers up first and reports outbound health at once (the SDK's synchronous health
probe must never wait for the app), then waits for the app port, reads `/dapr/config` and `/dapr/subscribe`
in the background and only then reports full health. `stop()` deactivates actors and closes everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from pathlib import Path
from typing import Any

import grpc
import uvicorn

from sidecar.actors import ActorHost, ActorState, Reminders, Timers
from sidecar.appchannel import AppChannel
from sidecar.clock import Clock, ManualClock, SystemClock
from sidecar.components import Components, default_components, load_components
from sidecar.config import SidecarConfig
from sidecar.daprconfig import DaprConfiguration, load_configuration
from sidecar.db import Database
from sidecar.grpc.auth import TokenInterceptor
from sidecar.grpc.dapr_service import add_dapr_service
from sidecar.http.app import build_http_app
from sidecar.http.metrics import build_metrics_app
from sidecar.pubsub import BrokerSpec, DeclarativeSubscription, PubSubEngine, SubscriptionError
from sidecar.scheduler import Scheduler
from sidecar.workflows import GRPC_SERVER_OPTIONS, WorkflowEngine, add_workflow_service

__all__ = ["RUNTIME_VERSION", "Sidecar"]

log = logging.getLogger("sidecar")

RUNTIME_VERSION = "1.16.0-todo-engine"

# The workflow streams' keepalive needs (answer idle pings, any message size) plus no SO_REUSEPORT, so a
# busy port fails loudly instead of being shared with another sidecar.
GRPC_OPTIONS: list[tuple[str, Any]] = [*GRPC_SERVER_OPTIONS, ("grpc.so_reuseport", 0)]


class _Uvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: the sidecar's owner decides when to stop."""

    def capture_signals(self) -> contextlib.AbstractContextManager[None]:  # type: ignore[override]
        return contextlib.nullcontext()


class Sidecar:
    def __init__(self, config: SidecarConfig, *, clock: Clock | None = None) -> None:
        self.config = config
        self.clock: Clock = clock or (ManualClock() if config.dev_clock else SystemClock())
        self.extended_metadata: dict[str, str] = {}
        self.http_port = 0
        self.grpc_port = 0
        self.metrics_port: int | None = None

    # lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        cfg = self.config
        self.ready = asyncio.Event()
        self.outbound_ready = asyncio.Event()
        self.stopped = asyncio.Event()
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        if isinstance(self.clock, ManualClock):
            self._restore_dev_clock(self.clock)
        self.dapr_config: DaprConfiguration = load_configuration(cfg.config_path)
        self.db = Database(cfg.data_dir / "sidecar.db", synchronous=cfg.sqlite_synchronous)
        if cfg.resources_paths:
            self.components: Components = load_components(
                cfg.resources_paths,
                app_id=cfg.app_id,
                data_dir=cfg.data_dir,
                clock=self.clock,
                sqlite_synchronous=cfg.sqlite_synchronous,
            )
        else:
            self.components = default_components(
                cfg.data_dir, clock=self.clock, sqlite_synchronous=cfg.sqlite_synchronous
            )
        for line in self.components.describe():
            log.info("component loaded: %s (%s/%s)", line["name"], line["type"], line["version"])
        self.scheduler = Scheduler(self.db, self.clock)
        self.channel = AppChannel(cfg.app_channel_address, cfg.app_port, app_token=cfg.app_token)
        self.actor_host = ActorHost(self.channel, self.clock)
        actor_store = (
            self.components.state_stores.get(self.components.actor_state_store)
            if self.components.actor_state_store
            else None
        )
        self.actor_state = ActorState(self.actor_host, actor_store, cfg.app_id)
        self.actor_state.ttl_enabled = self.dapr_config.feature("ActorStateTTL")
        shape = "1.14" if not self.dapr_config.feature("SchedulerReminders", True) else "1.15"
        self.reminders = Reminders(
            self.actor_host,
            self.scheduler,
            self.clock,
            callback_shape=cfg.reminder_callback_shape if shape == "1.15" else shape,
        )
        self.timers = Timers(self.actor_host, self.clock)
        self.pubsub = PubSubEngine(
            [
                BrokerSpec(p.name, p.type, p.version, dict(p.metadata))
                for p in self.components.pubsubs.values()
            ],
            cfg.app_id,
            self.channel,
            self.clock,
            declarative=[
                DeclarativeSubscription(
                    name=s.name,
                    pubsubname=s.pubsubname,
                    topic=s.topic,
                    routes=s.routes,
                    dead_letter_topic=s.dead_letter_topic,
                    metadata=dict(s.metadata),
                    scopes=list(s.scopes),
                    bulk_subscribe=s.bulk_subscribe,
                )
                for s in self.components.subscriptions
            ],
            data_dir=cfg.data_dir,
            sqlite_synchronous=cfg.sqlite_synchronous,
        )
        self.workflows = WorkflowEngine(
            self.db,
            self.scheduler,
            self.clock,
            max_concurrent_workflows=self.dapr_config.max_concurrent_workflows,
            max_concurrent_activities=self.dapr_config.max_concurrent_activities,
        )
        await self.scheduler.start()
        await self.pubsub.start()
        await self.workflows.start()
        await self._start_http()
        await self._start_grpc()
        await self._start_metrics()
        self.outbound_ready.set()
        log.info(
            "dapr sidecar %r listening: HTTP %s:%d, gRPC %s:%d, data in %s",
            cfg.app_id,
            cfg.host,
            self.http_port,
            cfg.host,
            self.grpc_port,
            cfg.data_dir,
        )
        self._app_init = asyncio.create_task(self._init_app(), name="app-init")

    async def _serve_asgi(self, app: Any, port: int, name: str) -> tuple[_Uvicorn, asyncio.Task[None], int]:
        # proto=IPPROTO_TCP: asyncio then sets TCP_NODELAY on accepted connections (else ~40 ms Nagle stalls).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.config.host, port))
        # log_config None: uvicorn's records go through the process's handler (text, or JSON with
        # --log-as-json), not a formatter of its own.
        ucfg = uvicorn.Config(
            app,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_keep_alive=60,
            backlog=4096,
        )
        server = _Uvicorn(ucfg)
        task = asyncio.create_task(server.serve(sockets=[sock]), name=name)
        while not server.started:
            if task.done():
                task.result()
                raise OSError(f"the {name} server stopped during start-up")
            await asyncio.sleep(0.005)
        return server, task, int(sock.getsockname()[1])

    async def _start_http(self) -> None:
        self._http, self._http_task, self.http_port = await self._serve_asgi(
            build_http_app(self), self.config.http_port, "http"
        )

    async def _start_metrics(self) -> None:
        self._metrics: tuple[_Uvicorn, asyncio.Task[None]] | None = None
        if self.config.metrics_port is None:
            return
        server, task, port = await self._serve_asgi(
            build_metrics_app(self), self.config.metrics_port, "metrics"
        )
        self._metrics = (server, task)
        self.metrics_port = port
        log.info("metrics on http://%s:%d/metrics", self.config.host, port)

    async def _start_grpc(self) -> None:
        server = grpc.aio.server(interceptors=[TokenInterceptor(self.config.api_token)], options=GRPC_OPTIONS)
        add_dapr_service(server, self)
        add_workflow_service(server, self.workflows)
        self.grpc_port = server.add_insecure_port(f"{self.config.host}:{self.config.grpc_port}")
        if self.grpc_port == 0:
            raise OSError(f"could not bind gRPC port {self.config.grpc_port}")
        await server.start()
        self._grpc = server

    async def _init_app(self) -> None:
        try:
            if self.channel.configured:
                log.info("waiting for the app on %s", self.channel.base_url)
                await self.channel.wait_until_listening()
                log.info("app is listening on port %s", self.config.app_port)
                await self.actor_host.load_config()
                try:
                    await self.pubsub.load_subscriptions()
                except SubscriptionError as exc:
                    log.error("app subscriptions refused, none started from the app: %s", exc)
            else:
                self.actor_host.mark_no_app()
            self.ready.set()
            log.info("dapr sidecar is ready")
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("app initialisation failed")

    async def serve(self) -> None:
        """Start and run until `request_stop()` (or cancellation), then stop."""
        await self.start()
        try:
            await self.stopped.wait()
        finally:
            await self.stop()

    def request_stop(self) -> None:
        self.stopped.set()

    async def stop(self) -> None:
        self._app_init.cancel()
        await asyncio.gather(self._app_init, return_exceptions=True)
        await self.actor_host.stop()
        await self.timers.stop()
        await self.workflows.stop()
        # In-flight deliveries finish first: the app's handler may still call back over gRPC or HTTP.
        await self.pubsub.stop()
        await self._grpc.stop(grace=1.0)
        self._http.should_exit = True
        await asyncio.gather(self._http_task, return_exceptions=True)
        if self._metrics is not None:
            self._metrics[0].should_exit = True
            await asyncio.gather(self._metrics[1], return_exceptions=True)
        await self.scheduler.stop()
        await self.channel.close()
        await self.components.close()
        self.db.close()
        log.info("dapr sidecar stopped")

    def _dev_clock_file(self) -> Path:
        return self.config.data_dir / "dev-clock.json"

    def _restore_dev_clock(self, clock: ManualClock) -> None:
        """A restarted dev-clock sidecar resumes the time it had reached: never moves backwards."""
        try:
            saved = float(json.loads(self._dev_clock_file().read_text())["offset_seconds"])
        except (OSError, ValueError, KeyError, TypeError):
            return
        if saved > clock.offset:
            clock.advance(saved - clock.offset)
            log.info("dev clock restored: %+.0f s from wall time", clock.offset)

    def save_dev_clock(self) -> None:
        if isinstance(self.clock, ManualClock):
            tmp = self._dev_clock_file().with_suffix(".tmp")
            tmp.write_text(json.dumps({"offset_seconds": self.clock.offset}))
            os.replace(tmp, self._dev_clock_file())

    # introspection -----------------------------------------------------------------------------

    def metadata(self) -> dict[str, Any]:
        actors = [{"type": t, "count": c} for t, c in sorted(self.actor_host.active_counts().items())]
        meta: dict[str, Any] = {
            "id": self.config.app_id,
            "runtimeVersion": RUNTIME_VERSION,
            "enabledFeatures": self.dapr_config.enabled_features(),
            "actors": actors,
            "components": self.components.describe(),
            "extended": {"daprRuntimeVersion": RUNTIME_VERSION, **self.extended_metadata},
            "subscriptions": self.pubsub.subscriptions(),
            "actorRuntime": {
                "runtimeStatus": "RUNNING" if self.actor_host.ready.is_set() else "INITIALIZING",
                "activeActors": actors,
                "hostReady": self.actor_host.ready.is_set(),
                "placement": "placement: connected (embedded, single host)",
            },
        }
        if self.config.app_port is not None:
            meta["appConnectionProperties"] = {
                "port": self.config.app_port,
                "protocol": self.config.app_protocol,
                "channelAddress": self.config.app_channel_address,
                "health": {},
            }
        return {k: v for k, v in meta.items() if v not in (None, [], {})}
