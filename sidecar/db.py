"""One SQLite file per sidecar (scheduler jobs, workflow history), reached from asyncio through one thread.

SQLite allows one writer at a time, so a single dedicated thread owns the connection: calls queue up in
order, the event loop never blocks on disk, and a caller groups its writes into one transaction (one fsync)
by passing a single function to `transaction()`.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

__all__ = ["Database", "open_connection"]

T = TypeVar("T")


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

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(conn)` on the database thread (autocommit: use for reads)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, self._conn)

    async def transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(conn)` inside BEGIN IMMEDIATE ... COMMIT; roll back if it raises."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._in_transaction, fn)

    def run_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Blocking variant for start-up and shutdown code that runs outside the event loop."""
        return self._executor.submit(fn, self._conn).result()

    def transaction_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return self._executor.submit(self._in_transaction, fn).result()

    def _in_transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    def close(self) -> None:
        with self._thread_lock:
            if self._closed:
                return
            self._closed = True
        self._executor.submit(self._conn.close).result()
        self._executor.shutdown(wait=True)
