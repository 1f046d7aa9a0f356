"""`todo-engine sidecar run`: the embedded sidecar as a drop-in for `dapr run`.

Accepts `dapr run`'s flags (sidecar/flags.py: each implemented, or refused with the reason); with
`-- <app command>` it starts the app with `dapr run`'s environment and stops both together; with no app
command it runs the sidecar alone. It locks its data dir (sidecar/datadir.py) and, under
`todo-engine up`, dies with `up` (sidecar/supervision.py).
"""

from __future__ import annotations

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
from sidecar.flags import app_environment, build_parser, config_from_args, log_accepted
from sidecar.heap import HeapPolicy
from sidecar.supervision import PARENT_GONE_GRACE, die_with_parent, exit_after, watch_parent_pipe
from sidecar.wire.jsonlog import DaprJsonFormatter, TextFormatter

__all__ = ["main"]

log = logging.getLogger("sidecar")

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
            env.update(app_environment(config, sidecar.http_port, sidecar.grpc_port, sidecar.metrics_port))
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
    given = list(sys.argv[1:] if argv is None else argv)
    if given[:1] in (["-f"], ["--run-file"]):  # `dapr run -f`: a multi-app run file (sidecar/runfile.py)
        from sidecar.runfile import main as run_file

        return run_file(given)
    args = build_parser().parse_args(argv)
    # First, before the heavy imports: a parent that dies from here on takes us with it.
    if args.parent_pid is not None and not die_with_parent(args.parent_pid):
        sys.stderr.write(f"sidecar: the parent process (pid {args.parent_pid}) is gone; not starting\n")
        return 1
    command = list(args.app_command)
    if command and command[0] == "--":
        command = command[1:]
    logging.basicConfig(level=_log_level(args.log_level), stream=sys.stderr)
    formatter: logging.Formatter = (
        DaprJsonFormatter(args.app_id)
        if args.log_as_json
        else TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    for handler in logging.getLogger().handlers:
        handler.setFormatter(formatter)
    config = config_from_args(args, dict(os.environ))
    log_accepted(args)
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
