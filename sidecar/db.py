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
import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["FORCED_CHECKPOINT_COMMITS", "IDLE_CHECKPOINT_COMMITS", "Database", "open_connection"]

T = TypeVar("T")
A = TypeVar("A")

log = logging.getLogger("sidecar.db")

IDLE_CHECKPOINT_COMMITS = 100
FORCED_CHECKPOINT_COMMITS = 2000

# A call for the database thread: the function, its argument, and where its outcome goes (an asyncio future
# with its loop, or a concurrent future for blocking callers). None stops the thread.
_Call = tuple[Callable[[Any], Any], Any, Any, "asyncio.AbstractEventLoop | None"]


def open_connection(path: str | Path, *, synchronous: str = "FULL", wal: bool = True) -> sqlite3.Connection:
    """Open a connection with the sidecar's durability settings (WAL, fsync on commit by default)."""
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30.0)
    if wal and str(path) != ":memory:":
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def _settle(future: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    """On the caller's loop: hand the outcome over unless the caller gave up waiting."""
    if future.cancelled():
        return
    if exc is None:
        future.set_result(result)
    else:
        future.set_exception(exc)


class Database:
    """A SQLite connection confined to one worker thread.

    Calls reach the thread through a plain queue and come back with one `call_soon_threadsafe`: a
    thread-pool executor's work items, idle semaphore and future chaining cost the event loop about twice
    as much per call, and every state read, commit and publish passes here.
    """

    def __init__(self, path: str | Path, *, synchronous: str = "FULL", wal: bool = True) -> None:
        self.path = Path(path) if str(path) != ":memory:" else None
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name="sidecar-db", daemon=True)
        self._thread.start()
        self._closed = False
        self._close_lock = threading.Lock()
        self._commits = 0  # since the last checkpoint (database thread only)
        self._check_queued = False
        self.checkpoints = 0
        self.commits = 0  # since the file was opened (tests and benchmarks count them)
        self._conn = self._blocking(lambda _: open_connection(path, synchronous=synchronous, wal=wal), None)
        self._checkpointing = wal and self.path is not None
        if self._checkpointing:
            self.run_sync(lambda conn: conn.execute("PRAGMA wal_autocheckpoint=0"))

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(conn)` on the database thread (autocommit: use for reads)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._calls.put((fn, self._conn, future, loop))
        return await future

    async def transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(conn)` inside BEGIN IMMEDIATE ... COMMIT; roll back if it raises."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._calls.put((self._in_transaction, fn, future, loop))
        return await future

    def run_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Blocking variant for start-up and shutdown code that runs outside the event loop."""
        return self._blocking(fn, self._conn)

    def transaction_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return self._blocking(self._in_transaction, fn)

    def _blocking(self, fn: Callable[[A], T], arg: A) -> T:
        future: Future[T] = Future()
        self._calls.put((fn, arg, future, None))
        return future.result()

    def _serve(self) -> None:
        """The database thread: run calls in order; a caller that stopped waiting (cancelled before its
        call started) is skipped, as an executor skips a cancelled work item."""
        while (call := self._calls.get()) is not None:
            fn, arg, future, loop = call
            if loop is None:
                assert isinstance(future, Future)
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(fn(arg))
                    except BaseException as exc:
                        future.set_exception(exc)
                continue
            assert isinstance(future, asyncio.Future)
            if future.cancelled():
                continue
            result, error = None, None
            try:
                result = fn(arg)
            except BaseException as exc:
                error = exc
            try:
                loop.call_soon_threadsafe(_settle, future, result, error)
            except RuntimeError:  # the loop is closed: nobody waits for this outcome
                pass
            del call, fn, arg, future, loop, result, error

    def _checkpoint_when_idle(self, _: object) -> None:
        """Queued after a commit: checkpoint if nothing else waits (or it is overdue)."""
        self._check_queued = False
        if not self._calls.empty() and self._commits < FORCED_CHECKPOINT_COMMITS:
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
        self.commits += 1
        if self._checkpointing:
            self._commits += 1
            if self._commits >= IDLE_CHECKPOINT_COMMITS and not self._check_queued:
                self._check_queued = True
                self._calls.put((self._checkpoint_when_idle, None, Future(), None))
        return result

    def close(self) -> None:
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        self._blocking(lambda conn: conn.close(), self._conn)
        self._calls.put(None)
        self._thread.join()
