"""The scheduler's single writer: puts, deletes, tick completions and window loads queued in order and
committed in batches, one transaction (one fsync) per batch, then handed back in the same order so
their in-memory effect follows the commit order; one bad write fails alone, not its batch."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from sidecar.db import Database
from sidecar.scheduler import store
from sidecar.scheduler.window import Entry

__all__ = ["Failed", "Queued", "WriteQueue"]

log = logging.getLogger("sidecar.scheduler.jobs")


@dataclass(eq=False)
class Queued:
    op: store.StoreOp
    future: asyncio.Future[object] | None = None
    entry: Entry | None = None  # the firing a `Complete` closes


@dataclass(frozen=True)
class Failed:
    error: Exception


class WriteQueue:
    """Queued writes for the scheduler's database. `apply(queued, result)` is called for each write of a
    committed batch, in order (`result` is a `Failed` when that write could not be committed), and
    `committed()` once the batch is done."""

    def __init__(
        self, db: Database, apply: Callable[[Queued, object], None], committed: Callable[[], None]
    ) -> None:
        self._db = db
        self._apply = apply
        self._committed = committed
        self._ops: list[Queued] = []
        self.pending = 0  # queued or being committed
        self._ops_ready = asyncio.Event()
        self.closing = False

    def enqueue(self, queued: Queued) -> None:
        self._ops.append(queued)
        self.pending += 1
        self._ops_ready.set()

    async def submit(self, op: store.StoreOp) -> object:
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self.enqueue(Queued(op, future))
        return await future

    def close(self) -> None:
        """`run` commits what is queued, then returns."""
        self.closing = True
        self._ops_ready.set()

    async def run(self) -> None:
        while True:
            if not self._ops:
                if self.closing:
                    return
                self._ops_ready.clear()
                await self._ops_ready.wait()
                continue
            batch, self._ops = self._ops, []
            await self._commit(batch)
            del batch  # do not pin the last batch (maybe a large put_many) while idle

    async def _commit(self, batch: list[Queued]) -> None:
        try:
            results = await self._execute([q.op for q in batch])
            for queued, result in zip(batch, results, strict=True):
                self._apply(queued, result)
        except Exception as exc:  # a bug here must not wedge every caller
            log.exception("scheduler writer failed on a batch of %d", len(batch))
            for queued in batch:
                if queued.future is not None and not queued.future.done():
                    queued.future.set_exception(exc)
        finally:
            self.pending -= len(batch)
            self._committed()

    async def _execute(self, ops: list[store.StoreOp]) -> list[object]:
        try:
            return await self._db.transaction(lambda conn: [op.execute(conn) for op in ops])
        except Exception as exc:
            if len(ops) == 1:
                return [Failed(exc)]
        # One bad write must not fail its neighbours: redo them one transaction each.
        results: list[object] = []
        for op in ops:
            try:
                results.append(await self._db.transaction(op.execute))
            except Exception as exc:
                results.append(Failed(exc))
        return results
