"""The workflow tables in the sidecar's SQLite file: instances, history, inbox, activities, timers.

History and inbox rows hold serialized `HistoryEvent` bytes (they round-trip every Dapr-only field).
All functions are synchronous and run on the database thread, inside the caller's transaction.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, fields

from sidecar.workflows import outbox

__all__ = [
    "ActivityRow",
    "InstanceRow",
    "TimerRow",
    "activities",
    "add_activity",
    "add_timer",
    "clear_instance_work",
    "create_schema",
    "delete_inbox",
    "get_instance",
    "has_inbox",
    "history_blobs",
    "inbox",
    "inbox_append",
    "inbox_prepend",
    "list_ids",
    "matching_instances",
    "pending_starts",
    "propagated",
    "ready_ids",
    "save_instance",
    "set_propagated",
    "stalled_ids",
    "take_activity",
    "take_timer",
    "timers",
    "wipe_instance",
    "append_history",
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS wf_instances (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    status INTEGER NOT NULL,
    generation INTEGER NOT NULL,
    execution_id TEXT NOT NULL,
    created REAL NOT NULL,
    last_updated REAL NOT NULL,
    completed REAL,
    started_at REAL,
    start_due REAL,
    suspended INTEGER NOT NULL DEFAULT 0,
    history_len INTEGER NOT NULL DEFAULT 0,
    input TEXT,
    output TEXT,
    custom_status TEXT,
    failure BLOB,
    parent_id TEXT,
    parent_execution_id TEXT,
    parent_task_id INTEGER,
    version TEXT
);
CREATE INDEX IF NOT EXISTS wf_instances_status ON wf_instances(status);
CREATE TABLE IF NOT EXISTS wf_history (
    instance_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    event BLOB NOT NULL,
    PRIMARY KEY (instance_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS wf_inbox (
    instance_id TEXT NOT NULL,
    ord INTEGER NOT NULL,
    event BLOB NOT NULL,
    PRIMARY KEY (instance_id, ord)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS wf_activities (
    instance_id TEXT NOT NULL,
    generation INTEGER NOT NULL,
    task_id INTEGER NOT NULL,
    request BLOB NOT NULL,
    PRIMARY KEY (instance_id, generation, task_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS wf_propagated (
    instance_id TEXT PRIMARY KEY,
    history BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS wf_timers (
    instance_id TEXT NOT NULL,
    generation INTEGER NOT NULL,
    timer_id INTEGER NOT NULL,
    fire_s INTEGER NOT NULL,
    fire_ns INTEGER NOT NULL,
    PRIMARY KEY (instance_id, generation, timer_id)
) WITHOUT ROWID;
"""


@dataclass
class InstanceRow:
    """One workflow instance; the status columns cache what its committed history says."""

    id: str
    name: str
    status: int
    generation: int
    execution_id: str
    created: float
    last_updated: float
    completed: float | None = None
    started_at: float | None = None
    start_due: float | None = None  # set while a scheduled start is not reached yet
    suspended: int = 0
    history_len: int = 0
    input: str | None = None
    output: str | None = None
    custom_status: str | None = None
    failure: bytes | None = None  # serialized TaskFailureDetails
    parent_id: str | None = None
    parent_execution_id: str | None = None
    parent_task_id: int | None = None
    version: str | None = None


_COLUMNS = [f.name for f in fields(InstanceRow)]
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM wf_instances"
_UPSERT = (
    f"INSERT OR REPLACE INTO wf_instances ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)})"
)


@dataclass(frozen=True)
class ActivityRow:
    instance_id: str
    generation: int
    task_id: int
    request: bytes  # serialized ActivityRequest


@dataclass(frozen=True)
class TimerRow:
    instance_id: str
    generation: int
    timer_id: int
    fire_s: int
    fire_ns: int

    @property
    def due(self) -> float:
        return self.fire_s + self.fire_ns / 1e9


def create_schema(conn: sqlite3.Connection) -> None:
    """Create the workflow tables, the cross-app ones (outbox.py) included."""
    conn.executescript(_SCHEMA)
    outbox.create_schema(conn)


def get_instance(conn: sqlite3.Connection, instance_id: str) -> InstanceRow | None:
    row = conn.execute(f"{_SELECT} WHERE id = ?", (instance_id,)).fetchone()
    return None if row is None else InstanceRow(*row)


def save_instance(conn: sqlite3.Connection, row: InstanceRow) -> None:
    conn.execute(_UPSERT, tuple(getattr(row, c) for c in _COLUMNS))


def wipe_instance(conn: sqlite3.Connection, instance_id: str) -> None:
    """Delete every row of an instance (purge, or reuse of a terminal instance's id)."""
    conn.execute("DELETE FROM wf_instances WHERE id = ?", (instance_id,))
    conn.execute("DELETE FROM wf_history WHERE instance_id = ?", (instance_id,))
    conn.execute("DELETE FROM wf_inbox WHERE instance_id = ?", (instance_id,))
    conn.execute("DELETE FROM wf_propagated WHERE instance_id = ?", (instance_id,))
    conn.execute("DELETE FROM wf_remote_parents WHERE instance_id = ?", (instance_id,))
    clear_instance_work(conn, instance_id)


def clear_instance_work(conn: sqlite3.Connection, instance_id: str) -> None:
    """Forget outstanding activities and timers (terminal instance or a new generation)."""
    conn.execute("DELETE FROM wf_activities WHERE instance_id = ?", (instance_id,))
    conn.execute("DELETE FROM wf_timers WHERE instance_id = ?", (instance_id,))
    conn.execute("DELETE FROM wf_remote_tasks WHERE instance_id = ?", (instance_id,))


def history_blobs(conn: sqlite3.Connection, instance_id: str, limit: int = -1, start: int = 0) -> list[bytes]:
    """The current generation's history from event `start` on (a stateful worker holds the rest)."""
    rows = conn.execute(
        "SELECT event FROM wf_history WHERE instance_id = ? AND seq >= ? ORDER BY seq LIMIT ?",
        (instance_id, start, limit),
    ).fetchall()
    return [r[0] for r in rows]


def propagated(conn: sqlite3.Connection, instance_id: str) -> bytes | None:
    """The serialized PropagatedHistory the instance received from its parent, if any."""
    row = conn.execute("SELECT history FROM wf_propagated WHERE instance_id = ?", (instance_id,)).fetchone()
    return None if row is None else bytes(row[0])


def set_propagated(conn: sqlite3.Connection, instance_id: str, history: bytes | None) -> None:
    if history is None:
        conn.execute("DELETE FROM wf_propagated WHERE instance_id = ?", (instance_id,))
    else:
        conn.execute("INSERT OR REPLACE INTO wf_propagated VALUES (?, ?)", (instance_id, history))


def append_history(conn: sqlite3.Connection, row: InstanceRow, blobs: Sequence[bytes]) -> None:
    """Append to the current generation's history, advancing `row.history_len`."""
    start = row.history_len
    conn.executemany(
        "INSERT INTO wf_history (instance_id, seq, event) VALUES (?, ?, ?)",
        [(row.id, start + i, b) for i, b in enumerate(blobs)],
    )
    row.history_len = start + len(blobs)


def inbox(conn: sqlite3.Connection, instance_id: str) -> list[tuple[int, bytes]]:
    return conn.execute(
        "SELECT ord, event FROM wf_inbox WHERE instance_id = ? ORDER BY ord", (instance_id,)
    ).fetchall()


def has_inbox(conn: sqlite3.Connection, instance_id: str) -> bool:
    row = conn.execute("SELECT 1 FROM wf_inbox WHERE instance_id = ? LIMIT 1", (instance_id,))
    return row.fetchone() is not None


def inbox_append(conn: sqlite3.Connection, instance_id: str, blobs: Iterable[bytes]) -> None:
    (top,) = conn.execute(
        "SELECT COALESCE(MAX(ord), 0) FROM wf_inbox WHERE instance_id = ?", (instance_id,)
    ).fetchone()
    conn.executemany(
        "INSERT INTO wf_inbox (instance_id, ord, event) VALUES (?, ?, ?)",
        [(instance_id, top + 1 + i, b) for i, b in enumerate(blobs)],
    )


def inbox_prepend(conn: sqlite3.Connection, instance_id: str, blobs: Sequence[bytes]) -> None:
    """Put events ahead of everything queued (a new generation's start and carry-over events)."""
    (low,) = conn.execute(
        "SELECT COALESCE(MIN(ord), 1) FROM wf_inbox WHERE instance_id = ?", (instance_id,)
    ).fetchone()
    first = low - len(blobs)
    conn.executemany(
        "INSERT INTO wf_inbox (instance_id, ord, event) VALUES (?, ?, ?)",
        [(instance_id, first + i, b) for i, b in enumerate(blobs)],
    )


def delete_inbox(conn: sqlite3.Connection, instance_id: str, ords: Sequence[int] | None) -> None:
    """Delete the given inbox entries, or all of them when `ords` is None."""
    if ords is None:
        conn.execute("DELETE FROM wf_inbox WHERE instance_id = ?", (instance_id,))
    else:
        conn.executemany(
            "DELETE FROM wf_inbox WHERE instance_id = ? AND ord = ?",
            [(instance_id, o) for o in ords],
        )


def add_activity(conn: sqlite3.Connection, act: ActivityRow) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO wf_activities VALUES (?, ?, ?, ?)",
        (act.instance_id, act.generation, act.task_id, act.request),
    )


def take_activity(conn: sqlite3.Connection, instance_id: str, generation: int, task_id: int) -> bool:
    """Remove an outstanding activity; False if it was already resolved or never existed."""
    cur = conn.execute(
        "DELETE FROM wf_activities WHERE instance_id = ? AND generation = ? AND task_id = ?",
        (instance_id, generation, task_id),
    )
    return cur.rowcount > 0


def activities(conn: sqlite3.Connection) -> list[ActivityRow]:
    rows = conn.execute("SELECT instance_id, generation, task_id, request FROM wf_activities")
    return [ActivityRow(*r) for r in rows.fetchall()]


def add_timer(conn: sqlite3.Connection, timer: TimerRow) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO wf_timers VALUES (?, ?, ?, ?, ?)",
        (timer.instance_id, timer.generation, timer.timer_id, timer.fire_s, timer.fire_ns),
    )


def take_timer(conn: sqlite3.Connection, instance_id: str, generation: int, timer_id: int) -> TimerRow | None:
    row = conn.execute(
        "DELETE FROM wf_timers WHERE instance_id = ? AND generation = ? AND timer_id = ? "
        "RETURNING instance_id, generation, timer_id, fire_s, fire_ns",
        (instance_id, generation, timer_id),
    ).fetchone()
    return None if row is None else TimerRow(*row)


def timers(conn: sqlite3.Connection) -> list[TimerRow]:
    rows = conn.execute("SELECT instance_id, generation, timer_id, fire_s, fire_ns FROM wf_timers")
    return [TimerRow(*r) for r in rows.fetchall()]


def pending_starts(conn: sqlite3.Connection) -> list[tuple[str, int, float]]:
    """(id, generation, due) of instances waiting for a scheduled start."""
    rows = conn.execute("SELECT id, generation, start_due FROM wf_instances WHERE start_due IS NOT NULL")
    return [(r[0], r[1], r[2]) for r in rows.fetchall()]


def ready_ids(conn: sqlite3.Connection) -> list[str]:
    """Instances that have undelivered events and may run a turn (used on start-up)."""
    rows = conn.execute(
        "SELECT DISTINCT i.id FROM wf_inbox b JOIN wf_instances i ON i.id = b.instance_id "
        "WHERE i.start_due IS NULL AND i.status NOT IN (1, 3, 5)"
    )
    return [r[0] for r in rows.fetchall()]


def stalled_ids(conn: sqlite3.Connection, status_stalled: int) -> list[str]:
    rows = conn.execute("SELECT id FROM wf_instances WHERE status = ?", (status_stalled,))
    return [r[0] for r in rows.fetchall()]


def list_ids(conn: sqlite3.Connection, after: str | None, limit: int | None) -> list[str]:
    rows = conn.execute(
        "SELECT id FROM wf_instances WHERE id > ? ORDER BY id LIMIT ?",
        (after or "", -1 if limit is None else limit),
    )
    return [r[0] for r in rows.fetchall()]


def matching_instances(
    conn: sqlite3.Connection, statuses: Sequence[int], created_from: float | None, created_to: float | None
) -> Iterator[InstanceRow]:
    """Instances in `statuses` created within `[created_from, created_to]` (either end open), oldest first."""
    marks = ", ".join("?" for _ in statuses)
    low = -math.inf if created_from is None else created_from
    high = math.inf if created_to is None else created_to
    rows = conn.execute(
        f"{_SELECT} WHERE status IN ({marks}) AND created >= ? AND created <= ? ORDER BY created, id",
        (*statuses, low, high),
    )
    return (InstanceRow(*r) for r in rows)
