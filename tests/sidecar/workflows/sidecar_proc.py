"""A workflow sidecar in a process of its own, for the kill -9 test: `python -m <this> DB PORT`.

The factory's `serve_workflow_engine` on the system clock; prints the bound port once serving and runs
until it is killed; nothing is shut down cleanly.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from sidecar.clock import SystemClock
from tests.stack.engines import serve_workflow_engine


async def serve(db_path: str, port: int) -> None:
    served = await serve_workflow_engine(Path(db_path), SystemClock(), port)
    sys.stdout.write(f"{served.port}\n")
    sys.stdout.flush()
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1], int(sys.argv[2])))
