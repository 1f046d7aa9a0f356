"""`todo-engine sidecar run`: the embedded sidecar as a drop-in for `dapr run`.

Accepts `dapr run`'s flags; with `-- <app command>` it starts the app with DAPR_HTTP_PORT, DAPR_GRPC_PORT and
APP_ID set and stops both together; with no app command it runs the sidecar alone.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from sidecar import heap
from sidecar.components import ComponentError
from sidecar.config import SidecarConfig
from sidecar.jsonlog import DaprJsonFormatter
from sidecar.server import Sidecar

__all__ = ["build_parser", "config_from_args", "main"]

log = logging.getLogger("sidecar")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="todo-engine sidecar run",
        description="Run the embedded Dapr-compatible sidecar (a drop-in for `dapr run`).",
    )
    p.add_argument("--app-id", "-a", default="app")
    p.add_argument("--app-port", "-p", type=int, default=None)
    p.add_argument("--app-protocol", "-P", default="http", choices=["http"])
    p.add_argument("--app-channel-address", default="127.0.0.1")
    p.add_argument("--dapr-http-port", "-H", type=int, default=3500)
    p.add_argument("--dapr-grpc-port", "-G", type=int, default=50001)
    p.add_argument("--dapr-internal-grpc-port", "-I", type=int, default=None)
    p.add_argument("--metrics-port", "-M", type=int, default=None)
    p.add_argument("--resources-path", action="append", default=[], type=Path)
    p.add_argument(
        "--components-path",
        "-d",
        action="append",
        default=[],
        type=Path,
        help="deprecated alias of --resources-path",
    )
    p.add_argument("--config", "-c", type=Path, default=None)
    p.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warn", "warning", "error", "fatal"],
    )
    p.add_argument(
        "--log-as-json",
        action="store_true",
        help="log one JSON object per line, with daprd's fields (time, level, type, msg, scope, ...)",
    )
    p.add_argument("--data-dir", type=Path, default=Path(".data"))
    p.add_argument(
        "--dev-clock",
        action="store_true",
        help='make time controllable: POST /v1.0-dev/clock/advance {"seconds": N}',
    )
    p.add_argument("--bind", default="127.0.0.1", help="address the sidecar's APIs listen on")
    p.add_argument(
        "--port-file",
        type=Path,
        default=None,
        help="write the bound ports as JSON to this file once listening",
    )
    p.add_argument("app_command", nargs=argparse.REMAINDER, help="-- followed by the app command to start")
    return p


def config_from_args(args: argparse.Namespace, environ: dict[str, str]) -> SidecarConfig:
    api_token, app_token = SidecarConfig.tokens_from_env(environ)
    if args.config is not None and not args.config.exists():
        raise SystemExit(f"error: --config {args.config} does not exist")
    return SidecarConfig(
        app_id=args.app_id,
        app_port=args.app_port,
        app_protocol=args.app_protocol,
        app_channel_address=args.app_channel_address,
        host=args.bind,
        http_port=args.dapr_http_port,
        grpc_port=args.dapr_grpc_port,
        internal_grpc_port=args.dapr_internal_grpc_port,
        metrics_port=args.metrics_port,
        resources_paths=[*args.resources_path, *args.components_path],
        config_path=args.config,
        data_dir=args.data_dir,
        log_level=args.log_level,
        dev_clock=args.dev_clock,
        api_token=api_token,
        app_token=app_token,
    )


# A full collection of everything (one pause of a few hundred ms with 100,000 active actors) this often.
_HEAP_SWEEP_SECONDS = 600.0


def _log_level(name: str) -> int:
    level: int = {"warn": logging.WARNING, "fatal": logging.CRITICAL}.get(name) or getattr(
        logging, name.upper()
    )
    return level


async def _run(config: SidecarConfig, command: list[str], port_file: Path | None) -> int:
    sidecar = Sidecar(config)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, sidecar.request_stop)
    await sidecar.start()
    if port_file is not None:  # written atomically: a watcher never reads half a file
        tmp = port_file.with_name(port_file.name + ".tmp")
        tmp.write_text(
            json.dumps(
                {"http": sidecar.http_port, "grpc": sidecar.grpc_port, "metrics": sidecar.metrics_port}
            )
        )
        os.replace(tmp, port_file)
    app: subprocess.Popen[bytes] | None = None
    code = 0
    heap.freeze_survivors()
    sweeps = asyncio.ensure_future(heap.sweep_periodically(_HEAP_SWEEP_SECONDS))
    try:
        if command:
            env = dict(os.environ)
            env.update(
                DAPR_HTTP_PORT=str(sidecar.http_port),
                DAPR_GRPC_PORT=str(sidecar.grpc_port),
                APP_ID=config.app_id,
            )
            if config.app_port is not None:
                env["APP_PORT"] = str(config.app_port)
            log.info("starting app: %s", " ".join(command))
            app = subprocess.Popen(command, env=env)
            waiter = asyncio.ensure_future(asyncio.to_thread(app.wait))
            stop = asyncio.ensure_future(sidecar.stopped.wait())
            await asyncio.wait({waiter, stop}, return_when=asyncio.FIRST_COMPLETED)
            if app.poll() is not None:
                code = app.returncode
                log.info("app exited with code %s", code)
            stop.cancel()
        else:
            await sidecar.stopped.wait()
    finally:
        sweeps.cancel()
        if app is not None and app.poll() is None:
            app.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                await loop.run_in_executor(None, lambda: app.wait(10))
            if app.poll() is None:
                app.kill()
        await sidecar.stop()
    return code


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = list(args.app_command)
    if command and command[0] == "--":
        command = command[1:]
    logging.basicConfig(
        level=_log_level(args.log_level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if args.log_as_json:
        for handler in logging.getLogger().handlers:
            handler.setFormatter(DaprJsonFormatter(args.app_id))
    config = config_from_args(args, dict(os.environ))
    try:
        import uvloop  # a dependency through uvicorn[standard]; ~2x faster I/O than asyncio's loop

        loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - platforms without uvloop wheels
        loop_factory = None
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            return runner.run(_run(config, command, args.port_file))
    except (ComponentError, ValueError, OSError) as exc:
        # Start-up errors (bad component files, busy ports) are the user's to fix: say so plainly.
        log.error("sidecar failed to start: %s", exc)
        return 1
