"""A workflow sidecar in a process of its own, for the kill -9 test: `python -m <this> DB PORT`.

Prints the bound port once serving and runs until it is killed; nothing is shut down cleanly.
"""

from __future__ import annotations

import asyncio
import sys

import grpc

from sidecar.clock import SystemClock
from sidecar.db import Database
from sidecar.scheduler import Scheduler
from sidecar.workflows import GRPC_SERVER_OPTIONS, WorkflowEngine, add_workflow_service


async def serve(db_path: str, port: int) -> None:
    clock = SystemClock()
    db = Database(db_path)
    scheduler = Scheduler(db, clock)
    engine = WorkflowEngine(db, scheduler, clock)
    await scheduler.start()
    await engine.start()
    server = grpc.aio.server(options=[*GRPC_SERVER_OPTIONS, ("grpc.so_reuseport", 0)])
    add_workflow_service(server, engine)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    sys.stdout.write(f"{bound}\n")
    sys.stdout.flush()
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1], int(sys.argv[2])))
