"""Cross-app delivery in the sidecar's SQLite file: the outbox of messages for other apps' sidecars and
the records that make each delivery count once (tasks awaiting another app, calls received, remote parents).
Like store.py, every function runs on the database thread inside the caller's transaction.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

__all__ = [
    "OutboxRow",
    "add_remote_task",
    "create_schema",
    "first_remote_call",
    "forget_remote_call",
    "outbox_add",
    "outbox_delete",
    "outbox_rows",
    "remote_parent",
    "set_remote_parent",
    "take_remote_task",
]

_SCHEMA = """
-- Cross-app calls (routing.py, crossapp.py): messages for other apps' sidecars until they acknowledge,
-- tasks awaiting another app's answer, calls received from another app, instances whose parent is remote.
CREATE TABLE IF NOT EXISTS wf_outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id TEXT NOT NULL,
    what TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    body BLOB NOT NULL,
    extra BLOB
);
CREATE TABLE IF NOT EXISTS wf_remote_tasks (
    instance_id TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    task_id INTEGER NOT NULL,
    app_id TEXT NOT NULL,
    PRIMARY KEY (instance_id, execution_id, task_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS wf_remote_calls (
    app_id TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    task_id INTEGER NOT NULL,
    PRIMARY KEY (app_id, instance_id, execution_id, task_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS wf_remote_parents (
    instance_id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL
) WITHOUT ROWID;
"""


def create_schema(conn: sqlite3.Connection) -> None:
    conn.executescript(_SCHEMA)


@dataclass(frozen=True)
class OutboxRow:
    """A message for another app's sidecar (`what`: activity, child or event), kept until it acknowledges."""

    seq: int
    app_id: str
    what: str
    instance_id: str
    execution_id: str
    body: bytes
    extra: bytes | None = None


def outbox_add(
    conn: sqlite3.Connection,
    app_id: str,
    what: str,
    instance_id: str,
    execution_id: str,
    body: bytes,
    extra: bytes | None = None,
) -> None:
    conn.execute(
        "INSERT INTO wf_outbox (app_id, what, instance_id, execution_id, body, extra)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (app_id, what, instance_id, execution_id, body, extra),
    )


def outbox_rows(conn: sqlite3.Connection) -> list[OutboxRow]:
    rows = conn.execute(
        "SELECT seq, app_id, what, instance_id, execution_id, body, extra FROM wf_outbox ORDER BY seq"
    )
    return [OutboxRow(*r) for r in rows.fetchall()]


def outbox_delete(conn: sqlite3.Connection, seq: int) -> None:
    conn.execute("DELETE FROM wf_outbox WHERE seq = ?", (seq,))


def add_remote_task(
    conn: sqlite3.Connection, instance_id: str, execution_id: str, task_id: int, app: str
) -> None:
    """A task (activity or child workflow) another app runs; its answer is taken once."""
    conn.execute(
        "INSERT OR REPLACE INTO wf_remote_tasks VALUES (?, ?, ?, ?)",
        (instance_id, execution_id, task_id, app),
    )


def take_remote_task(conn: sqlite3.Connection, instance_id: str, execution_id: str, task_id: int) -> bool:
    """Remove an awaited remote task; False if it was answered already (or its instance moved on)."""
    cur = conn.execute(
        "DELETE FROM wf_remote_tasks WHERE instance_id = ? AND execution_id = ? AND task_id = ?",
        (instance_id, execution_id, task_id),
    )
    return cur.rowcount > 0


def first_remote_call(
    conn: sqlite3.Connection, app_id: str, instance_id: str, execution_id: str, task_id: int
) -> bool:
    """Record a call received from another app; False if it was received before (a retried delivery)."""
    cur = conn.execute(
        "INSERT OR IGNORE INTO wf_remote_calls VALUES (?, ?, ?, ?)",
        (app_id, instance_id, execution_id, task_id),
    )
    return cur.rowcount > 0


def forget_remote_call(
    conn: sqlite3.Connection, app_id: str, instance_id: str, execution_id: str, task_id: int
) -> None:
    """Drop the record of a call received from another app, which that app can no longer deliver again."""
    conn.execute(
        "DELETE FROM wf_remote_calls"
        " WHERE app_id = ? AND instance_id = ? AND execution_id = ? AND task_id = ?",
        (app_id, instance_id, execution_id, task_id),
    )


def set_remote_parent(conn: sqlite3.Connection, instance_id: str, app_id: str) -> None:
    conn.execute("INSERT OR REPLACE INTO wf_remote_parents VALUES (?, ?)", (instance_id, app_id))


def remote_parent(conn: sqlite3.Connection, instance_id: str) -> str | None:
    """The app whose workflow started this instance as its child, when that is another app."""
    row = conn.execute(
        "SELECT app_id FROM wf_remote_parents WHERE instance_id = ?", (instance_id,)
    ).fetchone()
    return None if row is None else str(row[0])
