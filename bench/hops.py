"""The floor under S1: what the facade's request shape costs with no work in it.

    .venv/bin/python bench/hops.py [--seconds S] [--client http1|aiohttp]

A facade request crosses three HTTP servers and two HTTP clients in two processes: client -> public API
(app process) -> sidecar (own process) -> app channel (app process, same event loop as the public API) ->
back. This runs that shape with empty handlers (raw ASGI on uvicorn + httptools; the two inner hops on
`sidecar.wire.http1`, as the engine, or on pooled aiohttp sessions to compare) and, as the peer's shape,
one server answering directly; both driven like `bench/api.py` (closed loop, 32 workers, on loopback,
sharing the 2 cores with the driver).

The facade can never be faster than its shape with empty handlers, so (shape req/s) / (plain peer's S1
req/s) bounds S1's facade/peer ratio from above, whatever work the handlers shed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sidecar.wire.http1 import Http1Client

_BODY = b'{"items":[],"next_cursor":null,"list_version":1}'
_HEADERS = [(b"content-type", b"application/json")]


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


async def _drain(receive: Any) -> None:
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)


def leaf_app() -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await _drain(receive)
        await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
        await send({"type": "http.response.body", "body": _BODY})

    return app


def forwarding_app(port: int, path: str, client: str) -> Any:
    sessions: list[aiohttp.ClientSession] = []
    wire = Http1Client("127.0.0.1", port)

    async def forward() -> bytes:
        if client == "http1":
            return (await wire.request("PUT", path, b"{}", {"Content-Type": "application/json"})).body
        if not sessions:
            sessions.append(aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256)))
        async with sessions[0].put(f"http://127.0.0.1:{port}{path}", data=b"{}") as resp:
            return await resp.read()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await _drain(receive)
        body = await forward()
        await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
        await send({"type": "http.response.body", "body": body})

    return app


async def serve(apps: list[tuple[Any, socket.socket]]) -> None:
    servers = [
        uvicorn.Server(uvicorn.Config(app, http="httptools", log_level="warning", lifespan="off"))
        for app, _ in apps
    ]
    await asyncio.gather(*(s.serve(sockets=[sock]) for s, (_, sock) in zip(servers, apps, strict=True)))


def run_role(role: str, ports: dict[str, int], client: str) -> None:
    """Child process entry: `app` serves public + channel, `sidecar` forwards to the channel."""
    socks = {name: free_socket() for name in ("public", "channel", "sidecar", "peer")}
    if role == "app":
        # The sidecar's port comes in on stdin once the sidecar is up.
        own = {"public": socks["public"].getsockname()[1], "channel": socks["channel"].getsockname()[1]}
        print(json.dumps(own), flush=True)
        sidecar_port = int(sys.stdin.readline())
        apps = [
            (forwarding_app(sidecar_port, "/v1.0/actors/T/x/method/m", client), socks["public"]),
            (leaf_app(), socks["channel"]),
        ]
    elif role == "sidecar":
        print(json.dumps({"sidecar": socks["sidecar"].getsockname()[1]}), flush=True)
        apps = [(forwarding_app(ports["channel"], "/actors/T/x/method/m", client), socks["sidecar"])]
    else:
        print(json.dumps({"peer": socks["peer"].getsockname()[1]}), flush=True)
        apps = [(leaf_app(), socks["peer"])]
    asyncio.run(serve(apps))


async def drive(url: str, seconds: float, workers: int = 32) -> float:
    done = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256)) as session:

        async def worker(stop_at: float) -> None:
            nonlocal done
            while time.perf_counter() < stop_at:
                async with session.get(url) as r:
                    await r.read()
                    if r.status != 200:
                        raise RuntimeError(f"{url} answered {r.status}")
                done += 1

        await asyncio.gather(*(worker(time.perf_counter() + 2) for _ in range(workers)))  # warm-up
        done = 0
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(t0 + seconds) for _ in range(workers)))
        return done / (time.perf_counter() - t0)


def start(
    role: str, client: str, ports: dict[str, int] | None = None
) -> tuple[subprocess.Popen[str], dict[str, int]]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--role", role, "--client", client, "--ports", json.dumps(ports or {})],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, json.loads(proc.stdout.readline())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--client", choices=("http1", "aiohttp"), default="http1", help="the inner hops' client")
    p.add_argument("--role", default=None, help=argparse.SUPPRESS)
    p.add_argument("--ports", default="{}", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.role:
        run_role(args.role, json.loads(args.ports), args.client)
        return
    procs: list[subprocess.Popen[str]] = []
    try:
        app, app_ports = start("app", args.client)
        procs.append(app)
        sidecar, sidecar_ports = start("sidecar", args.client, app_ports)
        procs.append(sidecar)
        assert app.stdin is not None
        app.stdin.write(f"{sidecar_ports['sidecar']}\n")
        app.stdin.flush()
        peer, peer_ports = start("peer", args.client)
        procs.append(peer)
        time.sleep(1.0)
        chain = asyncio.run(drive(f"http://127.0.0.1:{app_ports['public']}/", args.seconds))
        single = asyncio.run(drive(f"http://127.0.0.1:{peer_ports['peer']}/", args.seconds))
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)
    print(
        json.dumps(
            {
                "inner hops' client": args.client,
                "facade shape, empty handlers (req/s)": round(chain, 1),
                "one server, empty handler (req/s)": round(single, 1),
                "shape / one server": round(chain / single, 3),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
