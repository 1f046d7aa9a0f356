"""One SQLite file per sidecar (scheduler jobs, workflow history), reached from asyncio through one thread.

SQLite allows one writer at a time, so a single dedicated thread owns the connection: calls queue up in
order, the event loop never blocks on disk, and a caller groups its writes into one transaction (one fsync)
by passing a single function to `transaction()`.

In WAL mode the thread checkpoints when it has nothing else to do (every `IDLE_CHECKPOINT_COMMITS`
commits or so), not in whichever commit crosses SQLite's auto-checkpoint threshold: that commit took
~12 ms more and held up every write queued behind it (seen as p99.9 spikes under load). With no idle
moment a checkpoint still runs after `FORCED_CHECKPOINT_COMMITS`. Durability is unchanged: a commit is
durable once its WAL frames are synced, whenever they are copied back.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["FORCED_CHECKPOINT_COMMITS", "IDLE_CHECKPOINT_COMMITS", "Database", "open_connection"]

T = TypeVar("T")

log = logging.getLogger("sidecar.db")

IDLE_CHECKPOINT_COMMITS = 100
FORCED_CHECKPOINT_COMMITS = 2000


def open_connection(path: str | Path, *, synchronous: str = "FULL", wal: bool = True) -> sqlite3.Connection:
    """Open a connection with the sidecar's durability settings (WAL, fsync on commit by default)."""
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30.0)
    if wal and str(path) != ":memory:":
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


class Database:
    """A SQLite connection confined to one worker thread."""

    def __init__(self, path: str | Path, *, synchronous: str = "FULL", wal: bool = True) -> None:
        self.path = Path(path) if str(path) != ":memory:" else None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sidecar-db")
        self._conn = self._executor.submit(open_connection, path, synchronous=synchronous, wal=wal).result()
        self._closed = False
        self._thread_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._queued = 0  # calls submitted and not started yet
        self._commits = 0  # since the last checkpoint (database thread only)
        self._check_queued = False
        self.checkpoints = 0
        self._checkpointing = wal and self.path is not None
        if self._checkpointing:
            self.run_sync(lambda conn: conn.execute("PRAGMA wal_autocheckpoint=0"))

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(conn)` on the database thread (autocommit: use for reads)."""
        return await asyncio.wrap_future(self._submit(fn, self._conn))

    async def transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(conn)` inside BEGIN IMMEDIATE ... COMMIT; roll back if it raises."""
        return await asyncio.wrap_future(self._submit(self._in_transaction, fn))

    def run_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Blocking variant for start-up and shutdown code that runs outside the event loop."""
        return self._submit(fn, self._conn).result()

    def transaction_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        future: Future[T] = self._submit(self._in_transaction, fn)
        return future.result()

    def _submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        with self._count_lock:
            self._queued += 1
        future: Future[T] = self._executor.submit(self._started, fn, *args)
        return future

    def _started(self, fn: Callable[..., T], *args: Any) -> T:
        with self._count_lock:
            self._queued -= 1
        return fn(*args)

    def _checkpoint_when_idle(self) -> None:
        """Queued after a commit: checkpoint if nothing else waits (or it is overdue)."""
        self._check_queued = False
        if self._queued and self._commits < FORCED_CHECKPOINT_COMMITS:
            return  # the next commit queues another look
        try:
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as exc:
            log.warning("checkpoint of %s failed (retried after the next commits): %s", self.path, exc)
            return
        self._commits = 0
        self.checkpoints += 1

    def _in_transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        if self._checkpointing:
            self._commits += 1
            if self._commits >= IDLE_CHECKPOINT_COMMITS and not self._check_queued:
                self._check_queued = True
                self._executor.submit(self._checkpoint_when_idle)
        return result

    def close(self) -> None:
        with self._thread_lock:
            if self._closed:
                return
            self._closed = True
        self._executor.submit(self._conn.close).result()
        self._executor.shutdown(wait=True)
