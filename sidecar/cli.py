"""`todo-engine sidecar run`: the embedded sidecar as a drop-in for `dapr run`.

Accepts `dapr run`'s flags; with `-- <app command>` it starts the app with DAPR_HTTP_PORT, DAPR_GRPC_PORT and
APP_ID set and stops both together; with no app command it runs the sidecar alone. It locks its data dir
(sidecar/datadir.py) and, under `todo-engine up`, dies with `up` (sidecar/supervision.py).
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

from sidecar.config import SidecarConfig
from sidecar.datadir import DataDirBusy, DataDirLock
from sidecar.heap import HeapPolicy
from sidecar.supervision import PARENT_GONE_GRACE, die_with_parent, exit_after, watch_parent_pipe
from sidecar.wire.jsonlog import DaprJsonFormatter

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
    p.add_argument(
        "--parent-pid",
        type=int,
        default=None,
        metavar="PID",
        help="our parent: stop when it dies (SIGTERM via Linux prctl PR_SET_PDEATHSIG); refuse to start "
        "if it already has",
    )
    p.add_argument(
        "--parent-pipe",
        type=int,
        default=None,
        metavar="FD",
        help="inherited read end of a pipe whose write end only the parent holds: stop at EOF, i.e. when "
        f"the parent dies (any POSIX). On parent death the graceful stop gets {PARENT_GONE_GRACE} s",
    )
    p.add_argument(
        "--data-dir-lock-fd",
        type=int,
        default=None,
        metavar="FD",
        help="inherited descriptor of <data-dir>/engine.lock that the parent (todo-engine up) has locked: "
        "share that lock instead of taking it; without it the sidecar locks the data dir itself",
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


async def _run(
    config: SidecarConfig,
    command: list[str],
    port_file: Path | None,
    *,
    lock: DataDirLock,
    parent_pid: int | None,
    parent_pipe: int | None,
) -> int:
    from sidecar.server import Sidecar  # here, not at import: the parent-death signal is set before this

    sidecar = Sidecar(config, data_dir_lock=lock)
    loop = asyncio.get_running_loop()
    started = gone = False

    def parent_gone() -> None:
        nonlocal gone
        if gone:
            return
        gone = True
        log.warning("the parent process (pid %s) is gone: stopping", parent_pid or "unknown")
        if not started:  # nothing to stop gracefully yet
            logging.shutdown()
            os._exit(1)
        exit_after(PARENT_GONE_GRACE, 1)
        sidecar.request_stop()

    def on_term() -> None:
        # The parent-death signal is SIGTERM too: tell it from a user's by who our parent is now.
        if parent_pid is not None and os.getppid() != parent_pid:
            parent_gone()
        else:
            sidecar.request_stop()

    def pipe_eof() -> None:
        with contextlib.suppress(RuntimeError):  # the loop already closed: we are exiting anyway
            loop.call_soon_threadsafe(parent_gone)

    loop.add_signal_handler(signal.SIGINT, sidecar.request_stop)
    loop.add_signal_handler(signal.SIGTERM, on_term)
    if parent_pipe is not None:
        watch_parent_pipe(parent_pipe, pipe_eof)
    await sidecar.start()
    started = True
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
    heap = HeapPolicy(_HEAP_SWEEP_SECONDS)
    heap.install()
    sweeps = asyncio.ensure_future(heap.sweeps())
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
    # First, before the heavy imports: a parent that dies from here on takes us with it.
    if args.parent_pid is not None and not die_with_parent(args.parent_pid):
        sys.stderr.write(f"sidecar: the parent process (pid {args.parent_pid}) is gone; not starting\n")
        return 1
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
        lock = (
            DataDirLock.adopt(args.data_dir_lock_fd, args.data_dir)
            if args.data_dir_lock_fd is not None
            else DataDirLock.acquire(args.data_dir, "todo-engine sidecar run")
        )
    except (DataDirBusy, ValueError, OSError) as exc:
        log.error("sidecar failed to start: %s", exc)
        return 1
    from sidecar.components import ComponentError

    try:
        import uvloop  # a dependency through uvicorn[standard]; ~2x faster I/O than asyncio's loop

        loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - platforms without uvloop wheels
        loop_factory = None
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            return runner.run(
                _run(
                    config,
                    command,
                    args.port_file,
                    lock=lock,
                    parent_pid=args.parent_pid,
                    parent_pipe=args.parent_pipe,
                )
            )
    except (ComponentError, ValueError, OSError) as exc:
        # Start-up errors (bad component files, busy ports) are the user's to fix: say so plainly.
        log.error("sidecar failed to start: %s", exc)
        return 1
