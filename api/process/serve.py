"""Serving the public API and the app channel from one process, on one event loop (`todo-engine serve`).

Two uvicorn servers share the loop and a `Shared`; signals are handled here once (uvicorn's own handlers
would fight over them), and stopping one stops both.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

import uvicorn

from api.app import create_app
from api.channel.app import create_channel_app
from api.limits import server_limits, uvicorn_options
from api.process.listeners import bind
from api.process.logs import LOG_FORMATS, configure_logging
from api.process.settings import Settings, SettingsError, configure_dapr, load_settings
from api.process.shared import Shared
from sidecar.heap import HeapPolicy  # a standard-library leaf: no engine loads

__all__ = ["AppServers", "build_serve_parser", "main_serve", "run_loop"]

log = logging.getLogger("api.process.serve")


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: `AppServers` decides when to stop."""

    def capture_signals(self) -> contextlib.AbstractContextManager[None]:  # type: ignore[override]
        return contextlib.nullcontext()


class AppServers:
    """Both apps of one process. `public_sock`/`channel_sock` may be pre-bound (ports known early).

    uvicorn configures no logging of its own (`log_config=None`): its loggers, the access log included,
    reach the process's root handler (`api.process.logs.configure_logging`)."""

    def __init__(
        self,
        settings: Settings,
        *,
        public_sock: socket.socket | None = None,
        channel_sock: socket.socket | None = None,
        shared: Shared | None = None,
        log_level: str = "warning",
        access_log: bool = False,
    ) -> None:
        self.settings = settings
        self.shared = shared or Shared()
        self.public_sock = public_sock or bind(settings.host, settings.port)
        self.channel_sock = channel_sock or bind(settings.channel_host, settings.channel_port)

        def server(app: object, *, proxy_headers: bool = True) -> _Server:
            config = uvicorn.Config(
                app,  # type: ignore[arg-type]
                log_level=log_level,
                log_config=None,
                access_log=access_log,
                lifespan="on",
                timeout_keep_alive=60,
                backlog=4096,
                proxy_headers=proxy_headers,
                server_header=False,  # no "server: uvicorn" banner (and one header less to write)
                **uvicorn_options(server_limits(settings)),
            )
            return _Server(config)

        # Only the sidecar calls the channel, directly: no proxy's X-Forwarded-* to honour there.
        self.channel = server(create_channel_app(settings, shared=self.shared), proxy_headers=False)
        self.public = server(create_app(settings, shared=self.shared))

    @property
    def public_port(self) -> int:
        return int(self.public_sock.getsockname()[1])

    @property
    def channel_port(self) -> int:
        return int(self.channel_sock.getsockname()[1])

    def request_stop(self) -> None:
        self.public.should_exit = True
        self.channel.should_exit = True

    async def serve(self, on_started: Callable[[], None] | None = None) -> None:
        """Run until `request_stop()`, or until either server stops by itself (then stop the other).

        The process's garbage collection follows `HeapPolicy` meanwhile (unless `gc_sweep_seconds` is 0)."""
        heap = HeapPolicy(self.settings.gc_sweep_seconds) if self.settings.gc_sweep_seconds > 0 else None
        sweeps = None
        if heap is not None:
            heap.install()
            sweeps = asyncio.create_task(heap.sweeps(), name="heap-sweeps")
        try:
            await self._serve(on_started)
        finally:
            if heap is not None and sweeps is not None:
                sweeps.cancel()
                heap.uninstall()

    async def _serve(self, on_started: Callable[[], None] | None) -> None:
        # The channel first: the sidecar waits for it before it reports ready.
        channel = asyncio.create_task(self.channel.serve(sockets=[self.channel_sock]), name="channel")
        public = asyncio.create_task(self.public.serve(sockets=[self.public_sock]), name="public")
        started = asyncio.create_task(self._started(), name="started")
        done, _ = await asyncio.wait({channel, public, started}, return_when=asyncio.FIRST_COMPLETED)
        if started in done and on_started is not None:
            on_started()
        await asyncio.wait({channel, public}, return_when=asyncio.FIRST_COMPLETED)
        self.request_stop()
        started.cancel()
        results = await asyncio.gather(channel, public, started, return_exceptions=True)
        for result in results[:2]:
            if isinstance(result, BaseException):
                raise result
        if not (self.public.started and self.channel.started):
            raise RuntimeError("the app did not start (see the log above)")

    async def _started(self) -> None:
        while not (self.public.started and self.channel.started):
            await asyncio.sleep(0.02)


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run `main` on uvloop when it is installed (it comes with uvicorn[standard]), else asyncio."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    uvloop.run(main)


def install_signal_handlers(stop: Callable[[], None]) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)


def build_serve_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="todo-engine serve",
        description="Run the app (public API + app channel); settings come from the environment.",
    )
    p.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default=None,
        help="text or json (default: TODO_LOG_FORMAT, else text)",
    )
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument(
        "--access-log", action="store_true", default=None, help="log every request (default: TODO_ACCESS_LOG)"
    )
    return p


def main_serve(environ: Mapping[str, str], argv: Sequence[str] = ()) -> int:
    """`todo-engine serve`: both apps from environment settings (under `dapr run` or in a pod); the flags
    override TODO_LOG_FORMAT and TODO_ACCESS_LOG."""
    args = build_serve_parser().parse_args(argv)
    flags = {"log_format": args.log_format, "access_log": args.access_log}
    try:
        settings = load_settings(environ, **{k: v for k, v in flags.items() if v is not None})
    except SettingsError as exc:
        configure_logging(args.log_format or "text", args.log_level, app_id="todo-engine")
        log.error("%s", exc)
        return 2
    configure_logging(settings.log_format, args.log_level, app_id=settings.app_id)
    configure_dapr(settings)
    servers = AppServers(settings, log_level=args.log_level, access_log=settings.access_log)

    async def run() -> None:
        install_signal_handlers(servers.request_stop)
        await servers.serve(
            lambda: log.info(
                "todo-engine API on http://%s:%d (docs /docs), app channel on %s:%d",
                settings.host,
                servers.public_port,
                settings.channel_host,
                servers.channel_port,
            )
        )

    try:
        run_loop(run())
    except RuntimeError as exc:
        log.error("%s", exc)
        return 1
    return 0
