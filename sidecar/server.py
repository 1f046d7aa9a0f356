"""The sidecar process: components, engines and the HTTP + gRPC servers, with a uvicorn-style lifecycle.

`start()` brings the API servers up first and reports outbound health at once (the SDK's synchronous health
probe must never wait for the app), then waits for the app port, reads `/dapr/config` and `/dapr/subscribe`
in the background and only then reports full health. `stop()` deactivates actors and closes everything.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

import grpc

from sidecar.actors import ActorHost, ActorState, Reminders, Timers
from sidecar.apilog import ApiLogging, GrpcApiLog
from sidecar.appchannel import AppChannel
from sidecar.appchannel_grpc import GrpcAppChannel
from sidecar.bindings.registry import InputBindings
from sidecar.clock import Clock, ManualClock, SystemClock
from sidecar.components import Components, default_components, load_components
from sidecar.config import SidecarConfig
from sidecar.configuration import ConfigurationAPI
from sidecar.conversation import ConversationAPI
from sidecar.crypto import CryptoAPI
from sidecar.daprconfig import DaprConfiguration, load_configuration
from sidecar.datadir import DataDirLock
from sidecar.db import Database
from sidecar.devclock import restore_dev_clock, save_dev_clock, time_skipper
from sidecar.grpc.auth import TokenInterceptor
from sidecar.grpc.dapr_service import add_dapr_service
from sidecar.health import AppHealth, HealthSettings
from sidecar.hosts import HostMembership
from sidecar.hosts.clock import LocalClock
from sidecar.http.app import InFlight, build_http_app
from sidecar.http.metrics import build_metrics_app
from sidecar.invoke import AccessControlList, Invoker
from sidecar.invoke.grpc_proxy import GrpcProxy
from sidecar.jobs import JobsService
from sidecar.listeners import UvicornServer, claim_socket_path, serve_asgi, socket_path
from sidecar.lock import LockAPI
from sidecar.pubsub import PubSubEngine, SubscriptionError
from sidecar.resiliency import load_resiliency
from sidecar.resiliency.components import apply_outbound, delivery_retry, publish_guard
from sidecar.scheduler import Scheduler
from sidecar.secrets.api import SecretsAPI
from sidecar.state.transactions import StateTransactions
from sidecar.timeskip import TimeSkipper
from sidecar.workflows import GRPC_SERVER_OPTIONS, WorkflowEngine, add_workflow_service
from sidecar.workflows.api import WorkflowAPI

__all__ = ["Sidecar"]

log = logging.getLogger("sidecar")

# The workflow streams' keepalive needs (answer idle pings, any message size) plus no SO_REUSEPORT, so a
# busy port fails loudly instead of being shared with another sidecar.
GRPC_OPTIONS: list[tuple[str, Any]] = [*GRPC_SERVER_OPTIONS, ("grpc.so_reuseport", 0)]


class Sidecar:
    def __init__(
        self,
        config: SidecarConfig,
        *,
        clock: Clock | None = None,
        hold_outbox: bool = False,
        data_dir_lock: DataDirLock | None = None,
    ) -> None:
        """`hold_outbox`: outbox events commit but are never published (tests of a crash before publish).
        `data_dir_lock`: given by the CLI (which locked the data dir, or adopted `up`'s lock); else `start()`
        takes it."""
        self.config = config
        self.hold_outbox = hold_outbox
        self._data_dir_lock = data_dir_lock
        self.clock: Clock = clock or (ManualClock() if config.dev_clock else SystemClock())
        self.extended_metadata: dict[str, str] = {}
        self.http_port = 0
        self.grpc_port = 0
        self.metrics_port: int | None = None
        self.http_app: InFlight | None = None
        self.timeskip: TimeSkipper | None = None

    # lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Lock the data directory (`DataDirBusy` if another engine has it), then start everything."""
        if self._data_dir_lock is None:
            self._data_dir_lock = DataDirLock.acquire(self.config.data_dir, "an in-process sidecar")
        try:
            await self._start()
        except BaseException:
            self._release_data_dir()
            raise

    def _release_data_dir(self) -> None:
        if self._data_dir_lock is not None:
            self._data_dir_lock.release()
            self._data_dir_lock = None

    async def _start(self) -> None:
        cfg = self.config
        self.ready = asyncio.Event()
        self.outbound_ready = asyncio.Event()
        self.stopped = asyncio.Event()
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        for api in ("http", "grpc"):  # a live sidecar on our sockets: fail before anything starts
            unix = self._socket(api)
            if unix is not None:
                claim_socket_path(unix)
        restore_dev_clock(self)
        self.dapr_config: DaprConfiguration = load_configuration(cfg.config_path)
        enabled, omit_health = self.dapr_config.api_logging
        self.api_logging = ApiLogging(cfg.enable_api_logging or enabled, omit_health)
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
        self.channel, self.app_health = self._app_channel()
        # Actors are called over HTTP only: a gRPC app hosts none (daprd 1.16's gRPC channel has no app
        # config), so its actor host gets a channel without a port and every actor call fails loudly.
        actor_channel = (
            self.channel if isinstance(self.channel, AppChannel) else AppChannel("127.0.0.1", None)
        )
        self.actor_host = ActorHost(actor_channel, self.clock)
        acl = self.dapr_config.access_control
        self.resiliency = load_resiliency(cfg.resources_paths, cfg.app_id)
        apply_outbound(self.resiliency, self.components)  # before anything holds a state store
        # Invocation reaches the app on its channel: HTTP, or a gRPC app's `OnInvoke`.
        self.invoker = Invoker(
            cfg.app_id,
            self.channel,
            acl=AccessControlList(acl) if acl else None,
            resiliency=self.resiliency,
        )
        # Other sidecars on this host (--registry-dir): None runs this one alone, as a single host.
        self.membership = (
            HostMembership(cfg.registry_dir, self.invoker) if cfg.registry_dir is not None else None
        )
        self.secrets = SecretsAPI(self.components.secret_stores, self.dapr_config.secret_scopes)
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
        self.bindings = InputBindings(self.components.bindings, self.scheduler, self.channel, self.clock)
        self.jobs = JobsService(self.scheduler, self.channel, self.clock, cfg.app_id, cfg.app_protocol)
        self.locks = LockAPI(self.components.locks, cfg.app_id)
        self.configuration = ConfigurationAPI(self.components.configurations, self.channel)
        self.conversation = ConversationAPI(self.components.conversations)
        self.crypto = CryptoAPI(self.components.crypto)
        self.pubsub = PubSubEngine(
            list(self.components.pubsubs.values()),
            cfg.app_id,
            self.channel,
            self.clock,
            declarative=self.components.subscriptions,
            data_dir=cfg.data_dir,
            sqlite_synchronous=cfg.sqlite_synchronous,
            health=self.app_health,
            publish_guard=publish_guard(self.resiliency),
            delivery_retry=delivery_retry(self.resiliency),
        )
        self.transactions = StateTransactions(
            self.components.state_stores,
            self.components.outboxes,
            self.pubsub,
            self.clock,
            cfg.app_id,
            hold_relays=self.hold_outbox,
        )
        self.workflows = WorkflowEngine(
            self.db,
            self.scheduler,
            self.clock,
            max_concurrent_workflows=self.dapr_config.max_concurrent_workflows,
            max_concurrent_activities=self.dapr_config.max_concurrent_activities,
            app_id=cfg.app_id,
        )
        self.workflow_api = WorkflowAPI(self.workflows)  # daprd's Workflow API, on both wires
        self.timeskip = time_skipper(self)
        await self.scheduler.start()
        await self.pubsub.start()
        await self.transactions.start()
        await self.workflows.start()
        await self._start_http()
        await self._start_grpc()
        await self._start_metrics()
        if self.membership is not None:
            self.membership.join(cfg.app_id, "default", cfg.host, self.http_port, self.grpc_port)
            self.membership.serve_workflows(self.workflows.receive_remote)
            self.workflows.connect_apps(self.membership.send_workflow)
            if isinstance(self.clock, ManualClock) and self.timeskip is not None:
                local = LocalClock(self.clock, self.timeskip, lambda: save_dev_clock(self))
                await self.membership.share_clock(local)
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

    def _app_channel(self) -> tuple[AppChannel | GrpcAppChannel, AppHealth | None]:
        """The app channel of `--app-protocol` and, with `--enable-app-health-check`, its health probes."""
        cfg = self.config
        channel: AppChannel | GrpcAppChannel
        if cfg.app_protocol == "grpc":
            channel = GrpcAppChannel(
                cfg.app_channel_address,
                cfg.app_port,
                app_token=cfg.app_token,
                max_message_size=cfg.max_body_bytes,
                max_concurrency=cfg.app_max_concurrency,
            )
        elif cfg.app_protocol == "http":
            channel = AppChannel(
                cfg.app_channel_address,
                cfg.app_port,
                app_token=cfg.app_token,
                health_path=cfg.app_health_check_path,
                max_concurrency=cfg.app_max_concurrency,
            )
        else:
            raise ValueError(
                f"app protocol {cfg.app_protocol!r} is not supported by the embedded sidecar (http, grpc)"
            )
        if not cfg.app_health_check or cfg.app_port is None:
            return channel, None
        settings = HealthSettings(
            path=cfg.app_health_check_path,
            interval=cfg.app_health_probe_interval,
            timeout=cfg.app_health_probe_timeout,
            threshold=cfg.app_health_threshold,
        )
        return channel, AppHealth(channel, settings)

    async def _start_http(self) -> None:
        self.http_app = build_http_app(self)
        self._http, self._http_task, self.http_port = await serve_asgi(
            self.http_app, self.config.host, self.config.http_port, "http", self._socket("http")
        )

    async def _start_metrics(self) -> None:
        self._metrics: tuple[UvicornServer, asyncio.Task[None]] | None = None
        if self.config.metrics_port is None:
            return
        server, task, port = await serve_asgi(
            build_metrics_app(self), self.config.host, self.config.metrics_port, "metrics"
        )
        self._metrics = (server, task)
        self.metrics_port = port
        log.info("metrics on http://%s:%d/metrics", self.config.host, port)

    async def _start_grpc(self) -> None:
        self.grpc_proxy = GrpcProxy(
            self.invoker,
            self.membership.find_grpc_peer if self.membership is not None else None,
            self.membership.registry.secret if self.membership is not None else None,
        )
        interceptors: list[grpc.aio.ServerInterceptor] = [
            TokenInterceptor(self.config.api_token, self.grpc_proxy.trusts)
        ]
        if self.api_logging.enabled:
            interceptors.append(GrpcApiLog(self.api_logging))
        server = grpc.aio.server(interceptors=interceptors, options=GRPC_OPTIONS)
        add_dapr_service(server, self)
        add_workflow_service(server, self.workflows)
        server.add_generic_rpc_handlers((self.grpc_proxy,))  # after every service: only unknown methods
        self.grpc_port = server.add_insecure_port(f"{self.config.host}:{self.config.grpc_port}")
        if self.grpc_port == 0:
            raise OSError(f"could not bind gRPC port {self.config.grpc_port}")
        unix = self._socket("grpc")
        if unix is not None:  # claimed at start
            server.add_insecure_port(f"unix:{unix}")
        await server.start()
        self._grpc = server

    def _socket(self, api: str) -> Path | None:
        """`--unix-domain-socket`: daprd's socket for `api`. The TCP ports stay open beside it: other
        sidecars on the host reach this one there (daprd's internal gRPC port stays TCP too)."""
        directory = self.config.unix_domain_socket
        return None if directory is None else socket_path(directory, self.config.app_id, api)

    async def _init_app(self) -> None:
        try:
            if self.channel.configured:
                log.info("waiting for the app on %s", self.channel.base_url)
                await self.channel.wait_until_listening()
                log.info("app is listening on port %s", self.config.app_port)
                if self.app_health is not None:
                    self.app_health.start()
                if isinstance(self.channel, AppChannel):
                    await self.actor_host.load_config()
                    if self.membership is not None:
                        self.membership.claim_actor_types(self.actor_host)
                else:
                    log.info(
                        "app protocol %s: the app hosts no actors (actors need HTTP)", self.channel.protocol
                    )
                    self.actor_host.mark_no_app()
                try:
                    await self.pubsub.load_subscriptions()
                except SubscriptionError as exc:
                    log.error("app subscriptions refused, none started from the app: %s", exc)
                await self.bindings.start()
            else:
                self.actor_host.mark_no_app()
            self.transactions.open()  # outbox events published before subscriptions would be dropped
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

    def shutdown(self, *, force: bool) -> None:
        """daprd's shutdown API: a graceful stop once the reply is out, or (`dapr-force-shutdown: true`)
        exit status 1 after 100 ms, skipping the graceful stop, as daprd's force path does."""
        loop = asyncio.get_running_loop()
        if force:
            log.warning("Force shutdown requested, exiting immediately without graceful shutdown")
            loop.call_later(0.1, os._exit, 1)
        else:
            log.info("Shutdown requested via API")
            loop.call_soon(self.request_stop)

    async def stop(self) -> None:
        if self.membership is not None:
            self.membership.leave()
        if self.timeskip is not None:
            await self.timeskip.stop()
        self._app_init.cancel()
        await asyncio.gather(self._app_init, return_exceptions=True)
        if self.app_health is not None:
            await self.app_health.stop()
        await self.actor_host.stop()
        await self.timers.stop()
        await self.workflows.stop()
        await self.transactions.stop()
        # In-flight deliveries finish first: the app's handler may still call back over gRPC or HTTP.
        await self.pubsub.stop()
        self.configuration.stop_streams()
        await self._grpc.stop(grace=1.0)
        await self.grpc_proxy.close()
        self._http.should_exit = True
        await asyncio.gather(self._http_task, return_exceptions=True)
        if self._metrics is not None:
            self._metrics[0].should_exit = True
            await asyncio.gather(self._metrics[1], return_exceptions=True)
        await self.scheduler.stop()
        await self.channel.close()
        if self.actor_host.channel is not self.channel:
            await self.actor_host.channel.close()
        await self.components.close()
        if self.membership is not None:
            await self.membership.close()
        self.configuration.close()
        self.db.close()
        for api in ("http", "grpc"):  # daprd removes its sockets at shutdown
            unix = self._socket(api)
            if unix is not None:
                unix.unlink(missing_ok=True)
        self._release_data_dir()
        log.info("dapr sidecar stopped")
