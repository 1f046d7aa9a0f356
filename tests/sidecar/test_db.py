"""The sidecar's SQLite files in WAL mode are checkpointed by their thread when it is idle, not by the
commit that crosses SQLite's auto-checkpoint threshold (which held up every write queued behind it)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from sidecar.db import IDLE_CHECKPOINT_COMMITS, Database


def _fill(conn: sqlite3.Connection, n: int) -> None:
    conn.execute("INSERT OR REPLACE INTO t VALUES (?, ?)", (n % 50, b"x" * 8000))


def _open(path: Path) -> Database:
    db = Database(path)
    db.transaction_sync(lambda c: c.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)"))
    return db


async def test_an_idle_thread_checkpoints_and_the_wal_is_reused(tmp_path: Path) -> None:
    db = _open(tmp_path / "s.db")
    try:
        assert db.run_sync(lambda c: c.execute("PRAGMA wal_autocheckpoint").fetchone()[0]) == 0
        for n in range(10 * IDLE_CHECKPOINT_COMMITS):  # one at a time: the thread is idle after each
            await db.transaction(lambda c, n=n: _fill(c, n))
        await db.run(lambda c: None)  # after the last queued checkpoint
        assert db.checkpoints >= 9
        # ~1,000 commits of 8 kB went through the WAL; checkpointed frames are reused.
        assert (tmp_path / "s.db-wal").stat().st_size < 3 * IDLE_CHECKPOINT_COMMITS * 8192
    finally:
        db.close()
    with sqlite3.connect(tmp_path / "s.db") as check:
        assert check.execute("SELECT count(*) FROM t").fetchone()[0] == 50


def test_no_checkpoints_without_a_wal(tmp_path: Path) -> None:
    db = Database(tmp_path / "r.db", wal=False)
    try:
        db.transaction_sync(lambda c: c.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)"))
        for n in range(IDLE_CHECKPOINT_COMMITS + 10):
            db.transaction_sync(lambda c, n=n: _fill(c, n))
        assert db.checkpoints == 0
    finally:
        db.close()


async def test_a_call_cancelled_before_it_started_is_skipped(tmp_path: Path) -> None:
    db = _open(tmp_path / "c.db")
    try:
        started, release = threading.Event(), threading.Event()

        def hold(conn: sqlite3.Connection) -> None:
            started.set()
            release.wait(10)

        holding = asyncio.ensure_future(db.run(hold))
        await asyncio.to_thread(started.wait, 10)  # the thread is busy: the next call waits in the queue
        queued = asyncio.ensure_future(db.transaction(lambda c: _fill(c, 1)))
        await asyncio.sleep(0)
        queued.cancel()
        release.set()
        await holding
        assert await db.run(lambda c: c.execute("SELECT count(*) FROM t").fetchone()[0]) == 0
    finally:
        db.close()


async def test_an_error_reaches_the_caller_and_rolls_back(tmp_path: Path) -> None:
    db = _open(tmp_path / "e.db")
    try:

        def fail(conn: sqlite3.Connection) -> None:
            _fill(conn, 1)
            raise ValueError("no")

        with pytest.raises(ValueError, match="no"):
            await db.transaction(fail)
        with pytest.raises(sqlite3.OperationalError):
            db.run_sync(lambda c: c.execute("SELECT nothing FROM t"))
        assert await db.run(lambda c: c.execute("SELECT count(*) FROM t").fetchone()[0]) == 0
    finally:
        db.close()
