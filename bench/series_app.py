"""The app side of the series benchmarks: the todo list actors (app channel) and the series worker in one
process, as the real app hosts them. Not part of the product.

Run by `bench/series_procs.py` as `uvicorn --factory bench.series_app:create_app`; it reads DAPR_GRPC_PORT
and SERIES_MIN_INTERVAL_S when the factory runs.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from dapr.ext.fastapi import DaprActor
from fastapi import FastAPI

from todo_actors.host import ActorsConfig, register_actors
from todo_actors.transitions import Limits
from workflows.config import SeriesSettings
from workflows.hosting import start_worker

log = logging.getLogger("bench.series_app")


def create_app() -> FastAPI:
    grpc_port = int(os.environ["DAPR_GRPC_PORT"])
    settings = SeriesSettings(
        min_interval=timedelta(seconds=float(os.environ.get("SERIES_MIN_INTERVAL_S", "60")))
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await register_actors(actor, ActorsConfig(limits=Limits(items_per_list=10_000)))
        # The worker's start() blocks until its stream is up, and the sidecar waits for this app first.
        task = asyncio.create_task(
            asyncio.to_thread(start_worker, settings, host="127.0.0.1", grpc_port=grpc_port)
        )
        yield
        runtime = await task
        runtime.shutdown()  # type: ignore[no-untyped-call]

    app = FastAPI(lifespan=lifespan)
    actor = DaprActor(app)
    return app
