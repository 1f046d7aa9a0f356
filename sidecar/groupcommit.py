"""Group commit: transactions that queue up while one commits share the next fsync (the workflow engine's,
and the SQLite state store's, which every actor state save and state API write passes).

Each function still runs alone inside a SAVEPOINT (so one failure rolls back only itself) and in
submission order; its caller is answered only after the shared COMMIT, so nothing is acknowledged
before it is durable. Under load this turns one fsync per turn into one per batch.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

from sidecar.db import Database

__all__ = ["GroupCommit"]

T = TypeVar("T")

_MAX_BATCH = 256


class GroupCommit:
    """Runs transaction functions on the database thread, batching those that arrive together."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._pending: list[tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any]]] = []
        self._draining = False

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(conn)` atomically; returns once the transaction holding it has committed."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending.append((fn, future))
        if not self._draining:
            self._draining = True
            asyncio.get_running_loop().call_soon(self._start_drain)
        return await future

    def _start_drain(self) -> None:
        task = asyncio.ensure_future(self._drain())
        task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch = self._pending[:_MAX_BATCH]
                del self._pending[:_MAX_BATCH]
                try:
                    outcomes = await self._db.transaction(functools.partial(_run_batch, batch=batch))
                except BaseException as exc:  # the COMMIT itself failed: nobody's work is durable
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    if not isinstance(exc, Exception):
                        raise
                    continue
                for (_, future), (ok, value) in zip(batch, outcomes, strict=True):
                    if future.done():
                        continue
                    if ok:
                        future.set_result(value)
                    else:
                        future.set_exception(value)
        finally:
            self._draining = False
            if self._pending:  # arrived while the last batch was being answered
                self._draining = True
                asyncio.get_running_loop().call_soon(self._start_drain)


def _run_batch(
    conn: sqlite3.Connection, *, batch: list[tuple[Callable[[sqlite3.Connection], Any], Any]]
) -> list[tuple[bool, Any]]:
    if len(batch) == 1:  # alone: a failure rolls back the whole transaction, no savepoint needed
        return [(True, batch[0][0](conn))]
    outcomes: list[tuple[bool, Any]] = []
    for fn, _ in batch:
        conn.execute("SAVEPOINT wf_op")
        try:
            value = fn(conn)
        except Exception as exc:
            conn.execute("ROLLBACK TO wf_op")
            conn.execute("RELEASE wf_op")
            outcomes.append((False, exc))
        else:
            conn.execute("RELEASE wf_op")
            outcomes.append((True, value))
    return outcomes
