"""Client CPU per request of the HTTP/1.1 clients we could use on the two wires (app -> sidecar, sidecar
-> app): `sidecar.wire.http1.Http1Client`, aiohttp's `ClientSession`, httpx's `AsyncClient`.

    .venv/bin/python bench/http_clients.py [--requests N]

Each client POSTs an actor-call-shaped request (a small JSON body, four headers) over one kept-alive
connection to a raw asyncio server in another process, so only the client's CPU is counted
(`time.process_time`, best of three runs), on uvloop (as the app and sidecar serve) and on asyncio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

_SERVER = r"""
import asyncio
BODY = b'{"ok":true,"items":[1,2,3]}'
REPLY = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
REPLY += b"Content-Length: %d\r\n\r\n%s" % (len(BODY), BODY)
async def handle(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            if length:
                await reader.readexactly(length)
            writer.write(REPLY)
    except Exception:
        writer.close()
async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()
asyncio.run(main())
"""

_PATH = "/v1.0/actors/TodoListActor/l-1/method/AddTodo"
_PAYLOAD = b'{"caller":"alice","title":"milk"}'
_HEADERS = {
    "Content-Type": "application/json",
    "User-Agent": "dapr-sdk-python",
    "dapr-api-token": "t" * 32,
    "traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01",
}

Call = Callable[[], Awaitable[bytes]]
Close = Callable[[], Awaitable[Any]]


async def http1(port: int) -> tuple[Call, Close]:
    from sidecar.wire.http1 import Http1Client

    client = Http1Client("127.0.0.1", port)

    async def call() -> bytes:
        return (await client.request("POST", _PATH, _PAYLOAD, _HEADERS)).body

    return call, client.close


async def aiohttp_session(port: int) -> tuple[Call, Close]:
    import aiohttp

    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256))
    url = f"http://127.0.0.1:{port}{_PATH}"

    async def call() -> bytes:
        async with session.post(url, data=_PAYLOAD, headers=_HEADERS) as resp:
            return await resp.read()

    return call, session.close


async def httpx_client(port: int) -> tuple[Call, Close]:
    import httpx

    client = httpx.AsyncClient()
    url = f"http://127.0.0.1:{port}{_PATH}"

    async def call() -> bytes:
        return (await client.post(url, content=_PAYLOAD, headers=_HEADERS)).content

    return call, client.aclose


async def cpu_per_request(make: Callable[[int], Awaitable[tuple[Call, Close]]], port: int, n: int) -> float:
    call, close = await make(port)
    try:
        for _ in range(300):  # connect, warm caches
            await call()
        runs = []
        for _ in range(3):
            started = time.process_time()
            for _ in range(n):
                await call()
            runs.append((time.process_time() - started) / n * 1e6)
        return round(min(runs), 1)
    finally:
        await close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=4000)
    args = p.parse_args()
    import uvloop

    server = subprocess.Popen([sys.executable, "-c", _SERVER], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        results: dict[str, dict[str, float]] = {}
        for loop, runner in (("uvloop", uvloop.run), ("asyncio", asyncio.run)):
            results[loop] = {
                name: runner(cpu_per_request(make, port, args.requests))
                for name, make in (("http1", http1), ("aiohttp", aiohttp_session), ("httpx", httpx_client))
            }
        print(json.dumps({"client CPU us per request": results}, indent=2))
    finally:
        server.kill()
        server.wait()


if __name__ == "__main__":
    main()
