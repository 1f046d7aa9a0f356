"""The sidecar's HTTP listeners: an ASGI app served by uvicorn on a TCP socket of our own making, so the
port can be 0 (a free one, read back), Nagle is off, and stopping is the sidecar's decision, not uvicorn's
signal handlers'; and daprd's Unix sockets for `--unix-domain-socket`."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from pathlib import Path
from typing import Any

import uvicorn

__all__ = ["UvicornServer", "claim_socket_path", "serve_asgi", "socket_path", "unix_socket"]


def socket_path(directory: Path, app_id: str, api: str) -> Path:
    """daprd's socket for `api` ("http" or "grpc") under `--unix-domain-socket`."""
    return directory / f"dapr-{app_id}-{api}.socket"


def claim_socket_path(path: Path) -> None:
    """Make `path` free for a Unix socket: a file left there by a sidecar that died (nothing listening)
    is removed; a live one is not (`OSError`, as daprd's listen fails)."""
    if not path.exists():
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:
        path.unlink()  # stale: its sidecar is gone
    else:
        raise OSError(f"another process listens on {path}")
    finally:
        probe.close()


def unix_socket(path: Path) -> socket.socket:
    """A Unix stream socket bound at `path` (claimed first)."""
    claim_socket_path(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    return sock


class UvicornServer(uvicorn.Server):
    """uvicorn without its own signal handling: the sidecar's owner decides when to stop."""

    def capture_signals(self) -> contextlib.AbstractContextManager[None]:  # type: ignore[override]
        return contextlib.nullcontext()


async def serve_asgi(
    app: Any, host: str, port: int, name: str, unix_path: Path | None = None
) -> tuple[UvicornServer, asyncio.Task[None], int]:
    """Serve `app` on `host:port` (0: a free port), and on the Unix socket `unix_path` when given; returns
    the server, its task and the bound port once it accepts connections (a failure during start-up
    raises)."""
    # proto=IPPROTO_TCP: asyncio then sets TCP_NODELAY on accepted connections (else ~40 ms Nagle stalls).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sockets = [sock] if unix_path is None else [sock, unix_socket(unix_path)]
    # log_config None: uvicorn's records go through the process's handler (text, or JSON with
    # --log-as-json), not a formatter of its own.
    config = uvicorn.Config(
        app,
        log_config=None,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_keep_alive=60,
        backlog=4096,
        server_header=False,  # no "server: uvicorn" banner (and one header less to write)
    )
    server = UvicornServer(config)
    task = asyncio.create_task(server.serve(sockets=sockets), name=name)
    while not server.started:
        if task.done():
            task.result()
            raise OSError(f"the {name} server stopped during start-up")
        await asyncio.sleep(0.005)
    return server, task, int(sock.getsockname()[1])
