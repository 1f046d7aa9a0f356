"""The `scheduler_jobs` table and the write operations the scheduler batches into one transaction.

Every operation is a small object run on the database thread; the engine queues them in order,
commits a whole batch at once (one fsync), then applies each one's in-memory effect in the same
order. Completions carry the generation they fired, so they never touch a row that was replaced or
deleted meanwhile.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from sidecar.scheduler.model import Job

__all__ = [
    "Complete",
    "DeleteKey",
    "DeletePrefix",
    "LoadWindow",
    "PutJobs",
    "StoreOp",
    "count_jobs",
    "create_schema",
    "get_job",
    "list_prefix",
    "max_generation",
]

_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS scheduler_jobs (
        key TEXT PRIMARY KEY NOT NULL,
        kind TEXT NOT NULL,
        due REAL NOT NULL,
        period REAL,
        remaining INTEGER,
        expires REAL,
        payload BLOB NOT NULL,
        generation INTEGER NOT NULL
    )
    """,
    "CREATE INDEX IF NOT EXISTS scheduler_jobs_due ON scheduler_jobs (due, key)",
)

_COLUMNS = "key, kind, due, period, remaining, expires, payload, generation"


def create_schema(conn: sqlite3.Connection) -> None:
    for statement in _SCHEMA:
        conn.execute(statement)


def max_generation(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT COALESCE(MAX(generation), 0) FROM scheduler_jobs").fetchone()
    return int(row[0])


def _job(row: tuple[Any, ...]) -> tuple[Job, int]:
    key, kind, due, period, remaining, expires, payload, generation = row
    job = Job(key, kind, float(due), period, remaining, expires, bytes(payload))
    return job, int(generation)


def get_job(conn: sqlite3.Connection, key: str) -> Job | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM scheduler_jobs WHERE key = ?", (key,)).fetchone()
    return None if row is None else _job(row)[0]


def _prefix_bounds(prefix: str) -> tuple[str, str | None]:
    """[low, high) key range of `prefix` in SQLite's BINARY order (= code point order)."""
    for i in range(len(prefix) - 1, -1, -1):
        code = ord(prefix[i]) + 1
        if 0xD800 <= code <= 0xDFFF:  # surrogates are not valid text; jump past them
            code = 0xE000
        if code <= 0x10FFFF:
            return prefix, prefix[:i] + chr(code)
    return prefix, None


def _prefix_where(prefix: str) -> tuple[str, tuple[str, ...]]:
    low, high = _prefix_bounds(prefix)
    if high is None:
        return "key >= ?", (low,)
    return "key >= ? AND key < ?", (low, high)


def list_prefix(conn: sqlite3.Connection, prefix: str) -> list[Job]:
    where, args = _prefix_where(prefix)
    rows = conn.execute(f"SELECT {_COLUMNS} FROM scheduler_jobs WHERE {where} ORDER BY key", args)
    return [_job(row)[0] for row in rows]


def count_jobs(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM scheduler_jobs").fetchone()[0])


def next_due_after(conn: sqlite3.Connection, now: float) -> float | None:
    """The earliest stored tick later than `now` (the index on (due, key) makes it one seek)."""
    row = conn.execute("SELECT MIN(due) FROM scheduler_jobs WHERE due > ?", (now,)).fetchone()
    return None if row[0] is None else float(row[0])


class StoreOp:
    """One queued write; `execute` runs on the database thread inside the batch transaction."""

    def execute(self, conn: sqlite3.Connection) -> object:
        raise NotImplementedError


@dataclass(eq=False)
class PutJobs(StoreOp):
    """Upsert jobs, each stamped with a fresh generation."""

    jobs: list[tuple[Job, int]]

    def execute(self, conn: sqlite3.Connection) -> None:
        conn.executemany(
            f"INSERT OR REPLACE INTO scheduler_jobs ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (j.key, j.kind, j.due, j.period, j.remaining, j.expires, j.payload, gen)
                for j, gen in self.jobs
            ],
        )


@dataclass(eq=False)
class DeleteKey(StoreOp):
    key: str

    def execute(self, conn: sqlite3.Connection) -> bool:
        return conn.execute("DELETE FROM scheduler_jobs WHERE key = ?", (self.key,)).rowcount > 0


@dataclass(eq=False)
class DeletePrefix(StoreOp):
    prefix: str

    def execute(self, conn: sqlite3.Connection) -> int:
        where, args = _prefix_where(self.prefix)
        return int(conn.execute(f"DELETE FROM scheduler_jobs WHERE {where}", args).rowcount)


@dataclass(eq=False)
class Complete(StoreOp):
    """A tick is done: delete the job or move it to `next`, unless the row's generation changed."""

    key: str
    generation: int
    next: Job | None

    def execute(self, conn: sqlite3.Connection) -> bool:
        if self.next is None:
            cur = conn.execute(
                "DELETE FROM scheduler_jobs WHERE key = ? AND generation = ?",
                (self.key, self.generation),
            )
        else:
            cur = conn.execute(
                "UPDATE scheduler_jobs SET due = ?, remaining = ? WHERE key = ? AND generation = ?",
                (self.next.due, self.next.remaining, self.key, self.generation),
            )
        return cur.rowcount > 0


@dataclass(eq=False)
class LoadWindow(StoreOp):
    """Rows after keyset position (`after_due`, `after_key`) with due <= `until`, by (due, key).

    `after_key=None` means after every key at `after_due`. At most `limit` rows.
    """

    after_due: float
    after_key: str | None
    until: float
    limit: int

    def execute(self, conn: sqlite3.Connection) -> list[tuple[Job, int]]:
        args: tuple[object, ...]
        if self.after_key is None:
            where, args = "due > ?", (self.after_due,)
        else:
            where, args = "(due, key) > (?, ?)", (self.after_due, self.after_key)
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM scheduler_jobs WHERE {where} AND due <= ? ORDER BY due, key LIMIT ?",
            (*args, self.until, self.limit),
        )
        return [_job(row) for row in rows]
