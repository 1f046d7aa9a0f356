"""`todo-engine up`: a whole local instance in one command, like `dapr run` with the embedded sidecar.

Secrets come from the environment or are generated once into the data directory; the sidecar runs as a
child process on free ports (it reports them through a port file), the app runs in this process. Ctrl-C
stops the sidecar first (it deactivates actors through the still-open app channel), then the app.
`up` locks the data dir first and hands the lock to its sidecar, which dies with `up` (sidecar/datadir.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from api.process.listeners import bind
from api.process.local_secrets import load_or_create
from api.process.logs import LOG_FORMATS, configure_logging
from sidecar.datadir import DataDirBusy, DataDirLock  # a standard-library leaf: no sidecar engine loads

if TYPE_CHECKING:  # the app loads after the sidecar started (see `_up`)
    from api.process.serve import AppServers
    from api.process.settings import Settings

__all__ = ["build_parser", "main_up"]

log = logging.getLogger("api.process.up")

_SIDECAR_START_SECONDS = 30.0
DEV_TOKEN_TTL = 30 * 24 * 3600


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="todo-engine up", description="Run the embedded sidecar and the app together, locally."
    )
    p.add_argument("--host", default="127.0.0.1", help="address of the public API (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port of the public API (default 8000)")
    p.add_argument("--data-dir", type=Path, default=Path(".data"), help="where SQLite files and secrets live")
    p.add_argument(
        "--dev-clock",
        action="store_true",
        help='controllable time: POST /v1/dev/clock:advance {"seconds": N}; prints a dev token',
    )
    p.add_argument(
        "--resources-path", type=Path, default=None, help="Dapr component files (default: built in)"
    )
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default=None,
        help="text, or json for log pipelines (app and sidecar alike); default TODO_LOG_FORMAT or text",
    )
    p.add_argument("--access-log", action="store_true", help="log every request (public API and app channel)")
    return p


def _sidecar_command(
    args: argparse.Namespace, channel_port: int, port_file: Path, *, lock_fd: int, parent_pipe: int
) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "sidecar",
        "run",
        "--app-id",
        "todo-engine",
        "--app-port",
        str(channel_port),
        "--dapr-http-port",
        "0",
        "--dapr-grpc-port",
        "0",
        "--data-dir",
        str(args.data_dir),
        "--port-file",
        str(port_file),
        "--log-level",
        "warn" if args.log_level == "warning" else args.log_level,
        "--data-dir-lock-fd",
        str(lock_fd),
        "--parent-pid",
        str(os.getpid()),
        "--parent-pipe",
        str(parent_pipe),
        # One self-contained engine: its actor types and app id stay its own, never joined to (or
        # claimed from) other sidecars on the host through the shared registry.
        "--registry-dir",
        "none",
    ]
    if args.dev_clock:
        command.append("--dev-clock")
    if args.log_format == "json":
        command.append("--log-as-json")  # daprd's flag
    if args.resources_path is not None:
        command += ["--resources-path", str(args.resources_path)]
    return command


def _wait_for_ports(sidecar: subprocess.Popen[bytes], port_file: Path) -> dict[str, int]:
    deadline = time.monotonic() + _SIDECAR_START_SECONDS
    while time.monotonic() < deadline:
        if sidecar.poll() is not None:
            raise RuntimeError(f"the sidecar exited with code {sidecar.returncode} during start-up")
        with contextlib.suppress(FileNotFoundError, ValueError):
            ports: dict[str, int] = json.loads(port_file.read_text())
            return ports
        time.sleep(0.01)  # a stat every 10 ms costs nothing; a coarser poll adds to start-up
    raise RuntimeError(f"the sidecar did not start within {_SIDECAR_START_SECONDS:.0f} s")


def _stop(sidecar: subprocess.Popen[bytes]) -> None:
    if sidecar.poll() is None:
        sidecar.terminate()
        try:
            sidecar.wait(20)
        except subprocess.TimeoutExpired:
            sidecar.kill()
            sidecar.wait(5)


def main_up(argv: Sequence[str], environ: Mapping[str, str]) -> int:
    args = build_parser().parse_args(argv)
    args.log_format = args.log_format or environ.get("TODO_LOG_FORMAT", "").strip().lower() or "text"
    if args.log_format not in LOG_FORMATS:
        sys.stderr.write(f"todo-engine up: TODO_LOG_FORMAT must be text or json, not {args.log_format!r}\n")
        return 2
    configure_logging(args.log_format, args.log_level, app_id="todo-engine")
    try:  # first: a second `up` on this data dir must refuse before it binds or starts anything
        lock = DataDirLock.acquire(args.data_dir, "todo-engine up")
    except DataDirBusy as exc:
        log.error("%s", exc)
        return 1
    try:
        return _up(args, environ, lock)
    finally:
        lock.release()


def _up(args: argparse.Namespace, environ: Mapping[str, str], lock: DataDirLock) -> int:
    data_dir: Path = args.data_dir
    local = load_or_create(data_dir)
    tokens = {
        "APP_API_TOKEN": environ.get("APP_API_TOKEN") or local.app_api_token,
        "DAPR_API_TOKEN": environ.get("DAPR_API_TOKEN") or local.dapr_api_token,
    }
    jwt_secret = environ.get("TODO_JWT_SECRET") or local.jwt_secret
    try:
        public_sock = bind(args.host, args.port)  # fail on a busy port before starting anything
        channel_sock = bind("127.0.0.1", 0)
    except OSError as exc:
        log.error("cannot listen on %s:%s: %s", args.host, args.port, exc)
        return 1
    port_file = data_dir / "sidecar-ports.json"
    port_file.unlink(missing_ok=True)
    channel_port = int(channel_sock.getsockname()[1])
    # Listening already: the sidecar's first probe of the app port (daprd polls it every 100 ms) succeeds,
    # and its first request waits in the backlog until the channel serves, instead of a poll later.
    channel_sock.listen(4096)
    # Only this process holds the write end: the sidecar sees EOF on the read end once we are gone.
    # Popen runs on the main thread, which lives as long as the process: Linux's parent-death signal
    # follows the thread that forked, not the process.
    watch_end, alive_end = os.pipe()
    try:
        sidecar = subprocess.Popen(
            _sidecar_command(args, channel_port, port_file, lock_fd=lock.fileno(), parent_pipe=watch_end),
            env={**os.environ, **environ, **tokens},
            pass_fds=(lock.fileno(), watch_end),
        )
    finally:
        os.close(watch_end)
    # The app's modules load here, while the sidecar starts in its own process: each takes about a second
    # of CPU, and the two overlap on separate cores instead of adding up.
    from api.process.serve import AppServers, run_loop
    from api.process.settings import SettingsError, configure_dapr, load_settings

    try:
        ports = _wait_for_ports(sidecar, port_file)
        settings = load_settings(
            {**environ, **tokens},
            host=args.host,
            port=int(public_sock.getsockname()[1]),
            channel_port=channel_port,
            dapr_http_port=ports["http"],
            dapr_grpc_port=ports["grpc"],
            jwt_secret=jwt_secret,
            dev_clock=args.dev_clock,
            data_dir=data_dir,
            log_format=args.log_format,
            **({"access_log": True} if args.access_log else {}),
        )
        configure_dapr(settings)
        servers = AppServers(
            settings,
            public_sock=public_sock,
            channel_sock=channel_sock,
            log_level=args.log_level,
            access_log=settings.access_log,
        )
        run_loop(_run(servers, sidecar, settings))
    except (RuntimeError, SettingsError) as exc:
        log.error("%s", exc)
        return 1
    finally:
        _stop(sidecar)
        os.close(alive_end)
    return 0


async def _run(servers: AppServers, sidecar: subprocess.Popen[bytes], settings: Settings) -> None:
    from api.auth import mint_token
    from api.process.serve import install_signal_handlers

    loop = asyncio.get_running_loop()

    def stop() -> None:
        async def stop_both() -> None:
            await loop.run_in_executor(None, _stop, sidecar)
            servers.request_stop()

        loop.create_task(stop_both())

    install_signal_handlers(stop)
    watcher = loop.run_in_executor(None, sidecar.wait)
    watcher.add_done_callback(lambda _: servers.request_stop())

    def banner() -> None:
        base = f"http://{settings.host}:{servers.public_port}"
        lines = [
            f"todo-engine is up: API {base}/v1, docs {base}/docs, health {base}/health/ready",
            f"data in {settings.data_dir.resolve()}; Ctrl-C stops",
        ]
        if settings.dev_clock:
            assert settings.jwt_secret is not None
            token = mint_token(
                settings.jwt_secret.get_secret_value(),
                "dev",
                now=int(time.time()),
                ttl_seconds=min(DEV_TOKEN_TTL, settings.jwt_max_ttl_seconds),
            )
            lines.append(f'dev clock on: POST {base}/v1/dev/clock:advance {{"seconds": N}}')
            lines.append(f"dev token (user 'dev'): {token}")
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()

    try:
        await servers.serve(banner)
    finally:
        # Also when the app stopped by itself: the watcher thread above waits for the sidecar to exit.
        await loop.run_in_executor(None, _stop, sidecar)
