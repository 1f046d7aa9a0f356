"""The client side of the workflow engine: start, wait for, raise events to, terminate, suspend, resume,
purge, list, read and rerun instances. `WorkflowEngine` (engine.py) mixes it in, so its own module keeps
the lifecycle and the worker side, and each half reads alone.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import grpc

from sidecar.clock import Clock
from sidecar.db import Database
from sidecar.groupcommit import GroupCommit
from sidecar.workflows import control, rerun, store
from sidecar.workflows.control import WorkflowError
from sidecar.workflows.courier import Courier
from sidecar.workflows.dispatch import Dispatcher
from sidecar.workflows.history import RUNNING, STALLED, SUSPENDED, TERMINAL
from sidecar.workflows.lifecycle import Effects
from sidecar.workflows.status import Waiters, has_started, is_terminal
from sidecar.workflows.store import InstanceRow

__all__ = ["InstanceRequests"]

log = logging.getLogger("sidecar.workflows.engine")  # the engine's half: it logs as the engine


class InstanceRequests:
    """The TaskHub client requests on instances, over the engine's database, dispatcher and waiters."""

    _db: Database
    _tx: GroupCommit
    _clock: Clock
    _start_wait: float
    _app_id: str
    _started: bool
    _waiters: Waiters
    _dispatch: Dispatcher
    _courier: Courier
    _apply: Callable[[Effects], Awaitable[None]]

    async def start_instance(self, request: Any) -> str:
        """StartInstance; returns once the first turn committed (daprd) unless scheduled later."""
        instance_id = request.instanceId or uuid.uuid4().hex
        now = self._clock.now()
        fx = await self._tx.run(lambda c: control.start(c, request, instance_id, now))
        await self._apply(fx)
        if instance_id in fx.ready and self._dispatch.connected:
            started = await self._within(self.wait_for(instance_id, has_started), self._start_wait)
            if not started:
                log.debug("instance %s not started within %.0fs", instance_id, self._start_wait)
        return instance_id

    async def get_instance(self, instance_id: str) -> InstanceRow | None:
        return await self._db.run(lambda c: store.get_instance(c, instance_id))

    async def wait_for(
        self, instance_id: str, condition: Callable[[InstanceRow | None], bool]
    ) -> InstanceRow:
        """Park until the instance satisfies `condition` (the gRPC deadline cancels the wait)."""
        while True:
            with self._waiters.watch(instance_id) as woken:
                row = await self.get_instance(instance_id)
                if row is not None and condition(row):
                    return row
                if not self._started:
                    raise WorkflowError(grpc.StatusCode.UNAVAILABLE, "the sidecar is stopping")
                await woken.wait()

    async def wait_started(self, instance_id: str) -> InstanceRow:
        return await self.wait_for(instance_id, has_started)

    async def wait_completed(self, instance_id: str) -> InstanceRow:
        return await self.wait_for(instance_id, is_terminal)

    async def raise_event(self, request: Any) -> None:
        now = self._clock.now()
        await self._apply(await self._tx.run(lambda c: control.raise_event(c, request, now)))

    async def terminate(self, request: Any) -> None:
        """Queue the terminate and block until the instance is terminal (daprd behaviour)."""
        now = self._clock.now()
        fx = await self._tx.run(lambda c: control.request_terminate(c, request, now))
        await self._apply(fx)
        if fx.changed:
            await self.wait_completed(request.instanceId)

    async def suspend(self, request: Any) -> None:
        now = self._clock.now()
        fx, wait = await self._tx.run(lambda c: control.request_suspend(c, request, now))
        await self._apply(fx)
        if wait:
            await self.wait_for(
                request.instanceId, lambda r: r is not None and r.status in TERMINAL | {SUSPENDED}
            )

    async def resume(self, request: Any) -> None:
        now = self._clock.now()
        fx, wait = await self._tx.run(lambda c: control.request_resume(c, request, now))
        await self._apply(fx)
        if wait:
            await self.wait_for(
                request.instanceId,
                lambda r: r is not None and r.status in TERMINAL | {RUNNING, STALLED},
            )

    async def purge(self, request: Any) -> tuple[int, bool]:
        """How many instances were deleted, and whether the request is done (a filtered purge works in
        batches: call again while it is not). A recursive purge purges the children other apps run first,
        on their sidecars (as daprd does), then this app's instances."""
        remote = 0
        for app, child_id in await self._db.run(lambda c: control.remote_children(c, request)):
            remote += await self._courier.purge(app, child_id, request.force)
        fx, count, complete = await self._tx.run(lambda c: control.purge(c, request))
        await self._apply(fx)
        return remote + count, complete

    async def list_ids(self, after: str | None, page_size: int | None) -> tuple[list[str], str | None]:
        """One page of instance ids in id order; the token is the last id of a full page."""
        limit = None if page_size is None else page_size + 1
        ids = await self._db.run(lambda c: store.list_ids(c, after, limit))
        if page_size is not None and len(ids) > page_size:
            ids = ids[:page_size]
            return ids, ids[-1]
        return ids, None

    async def history(self, instance_id: str) -> list[bytes]:
        def read(conn: sqlite3.Connection) -> list[bytes] | None:
            if store.get_instance(conn, instance_id) is None:
                return None
            return store.history_blobs(conn, instance_id)

        blobs = await self._db.run(read)
        self._dispatch.traffic.history_fetches += 1
        if blobs is None:
            raise WorkflowError(
                grpc.StatusCode.NOT_FOUND,
                f"unable to find workflow '{instance_id}': no such instance exists",
            )
        return blobs

    async def rerun(self, request: Any) -> str:
        new_id = request.newInstanceID if request.HasField("newInstanceID") else uuid.uuid4().hex
        now = self._clock.now()
        fx = await self._tx.run(lambda c: rerun.rerun_from_event(c, request, new_id, now, self._app_id))
        await self._apply(fx)
        return new_id

    async def _within(self, waiting: Coroutine[Any, Any, Any], seconds: float) -> bool:
        """Await `waiting` for at most `seconds` of Clock time; False if it did not finish."""
        task = asyncio.ensure_future(waiting)
        deadline = asyncio.ensure_future(self._clock.wait_until(self._clock.now() + seconds))
        try:
            await asyncio.wait({task, deadline}, return_when=asyncio.FIRST_COMPLETED)
            return task.done() and not task.cancelled() and task.exception() is None
        finally:
            for pending in (task, deadline):
                pending.cancel()
