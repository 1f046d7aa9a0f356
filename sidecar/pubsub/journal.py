"""The SQL of the durable broker (`pubsub.embedded.sqlite`): consumer groups and their unacknowledged
messages in one SQLite file, so a publish survives a crash and is delivered to every known subscriber.

One row per (group, message): a fan-out copies the bytes, and an acknowledgement is one primary-key delete.
A message no group wanted is kept apart ("unclaimed") for a while: a group created later copies those of
its topic. All functions run on the broker's `Database` thread, inside its transactions.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = [
    "GroupRow",
    "Insert",
    "commit_batch",
    "create_schema",
    "delete_group",
    "load_page",
    "register_group",
]

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS broker_groups (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        app_id TEXT NOT NULL,
        topic TEXT NOT NULL,
        created REAL NOT NULL,
        UNIQUE (app_id, topic)
    )""",
    """CREATE TABLE IF NOT EXISTS broker_messages (
        grp INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (grp, seq)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS broker_unclaimed (
        seq INTEGER PRIMARY KEY,
        topic TEXT NOT NULL,
        data BLOB NOT NULL,
        published REAL NOT NULL
    )""",
)


@dataclass(frozen=True)
class GroupRow:
    """A consumer group (one subscription of one app to a topic pattern) and its backlog size."""

    id: int
    app_id: str
    topic: str
    backlog: int


@dataclass(frozen=True)
class Insert:
    """A published message: its sequence number, topic, bytes, and the groups that keep a copy (none:
    unclaimed, kept apart until `published` is older than the retention)."""

    seq: int
    topic: str
    data: bytes
    groups: tuple[int, ...]
    published: float


def create_schema(conn: sqlite3.Connection) -> tuple[list[GroupRow], int]:
    """Create the tables if needed; return the known groups and the highest sequence number used
    (unclaimed messages included, so a group claiming them later keeps their order)."""
    for statement in _SCHEMA:
        conn.execute(statement)
    counts = dict(conn.execute("SELECT grp, COUNT(*) FROM broker_messages GROUP BY grp").fetchall())
    groups = [
        GroupRow(int(gid), str(app_id), str(topic), int(counts.get(gid, 0)))
        for gid, app_id, topic in conn.execute("SELECT id, app_id, topic FROM broker_groups ORDER BY id")
    ]
    (last,) = conn.execute(
        "SELECT MAX((SELECT COALESCE(MAX(seq), 0) FROM broker_messages),"
        " (SELECT COALESCE(MAX(seq), 0) FROM broker_unclaimed))"
    ).fetchone()
    return groups, int(last)


def register_group(
    conn: sqlite3.Connection, app_id: str, topic: str, now: float, claims: Callable[[str], bool]
) -> tuple[int, int]:
    """The id of the group for (app_id, topic) and its backlog. A new group copies the unclaimed
    messages whose topic `claims` accepts (its subscription matches them)."""
    created = conn.execute(
        "INSERT OR IGNORE INTO broker_groups (app_id, topic, created) VALUES (?, ?, ?)",
        (app_id, topic, now),
    ).rowcount
    (gid,) = conn.execute(
        "SELECT id FROM broker_groups WHERE app_id = ? AND topic = ?", (app_id, topic)
    ).fetchone()
    if created:
        for (unclaimed,) in conn.execute("SELECT DISTINCT topic FROM broker_unclaimed").fetchall():
            if claims(unclaimed):
                conn.execute(
                    "INSERT INTO broker_messages (grp, seq, data)"
                    " SELECT ?, seq, data FROM broker_unclaimed WHERE topic = ?",
                    (gid, unclaimed),
                )
    (backlog,) = conn.execute("SELECT COUNT(*) FROM broker_messages WHERE grp = ?", (gid,)).fetchone()
    return int(gid), int(backlog)


def delete_group(conn: sqlite3.Connection, gid: int) -> None:
    """Forget a group and its backlog (a subscription the app no longer has)."""
    conn.execute("DELETE FROM broker_messages WHERE grp = ?", (gid,))
    conn.execute("DELETE FROM broker_groups WHERE id = ?", (gid,))


def commit_batch(
    conn: sqlite3.Connection,
    inserts: Sequence[Insert],
    acks: Sequence[tuple[int, int]],
    expire_before: float | None = None,
) -> None:
    """Store published messages and delete acknowledged ones (and unclaimed ones published before
    `expire_before`); the caller wraps it in one transaction, so many publishes share one fsync."""
    if inserts:
        conn.executemany(
            "INSERT INTO broker_messages (grp, seq, data) VALUES (?, ?, ?)",
            [(gid, insert.seq, insert.data) for insert in inserts for gid in insert.groups],
        )
        conn.executemany(
            "INSERT INTO broker_unclaimed (seq, topic, data, published) VALUES (?, ?, ?, ?)",
            [(i.seq, i.topic, i.data, i.published) for i in inserts if not i.groups],
        )
    if acks:
        conn.executemany("DELETE FROM broker_messages WHERE grp = ? AND seq = ?", acks)
    if expire_before is not None:
        conn.execute("DELETE FROM broker_unclaimed WHERE published < ?", (expire_before,))


def load_page(conn: sqlite3.Connection, gid: int, after: int, limit: int) -> list[tuple[int, bytes]]:
    """Up to `limit` messages of a group after sequence number `after`, oldest first."""
    rows = conn.execute(
        "SELECT seq, data FROM broker_messages WHERE grp = ? AND seq > ? ORDER BY seq LIMIT ?",
        (gid, after, limit),
    ).fetchall()
    return [(int(seq), bytes(data)) for seq, data in rows]
