"""The SQL of the durable broker (`pubsub.embedded.sqlite`): consumer groups and their unacknowledged
messages in one SQLite file, so a publish survives a crash and is delivered to every known subscriber.
Several sidecars (processes) may share the file: sequence numbers and the fan-out to the groups of every
app are decided inside the write transaction (BEGIN IMMEDIATE), so they follow the commit order.

One row per (group, message): a fan-out copies the bytes, and an acknowledgement is one primary-key delete.
A message no group wanted is kept apart ("unclaimed") for a while: a group created later copies those of
its topic. All functions run on the broker's `Database` thread, inside its transactions.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = [
    "Committed",
    "GroupRow",
    "Insert",
    "Stored",
    "claim_consumer",
    "commit_batch",
    "create_schema",
    "delete_group",
    "last_seq",
    "load_page",
    "mark_streamed",
    "register_group",
    "release_consumer",
    "streamed_groups",
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
    """CREATE TABLE IF NOT EXISTS broker_seq (
        id INTEGER PRIMARY KEY CHECK (id = 0),
        last INTEGER NOT NULL
    )""",
    # The process consuming a group: one per group (two replicas of an app id on one file are refused).
    """CREATE TABLE IF NOT EXISTS broker_consumers (
        grp INTEGER PRIMARY KEY,
        pid INTEGER NOT NULL,
        instance TEXT NOT NULL
    )""",
    # Groups a streaming subscription used: the app's subscription list does not retire them (a Redis
    # consumer group outlives its consumers too).
    "CREATE TABLE IF NOT EXISTS broker_streams (grp INTEGER PRIMARY KEY)",
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
    """A message to publish: its topic, bytes and time."""

    topic: str
    data: bytes
    published: float


@dataclass(frozen=True)
class Stored:
    """A committed message: its sequence number and the groups (of every app) that keep a copy (none:
    unclaimed, kept apart until it is older than the retention, or not kept)."""

    seq: int
    groups: tuple[int, ...]


@dataclass(frozen=True)
class Committed:
    """What one commit stored (per insert, in order; None: no group wanted it and unclaimed messages are
    not kept), how many messages each of the caller's groups got since `watermark` (its
    own and other processes' publishes), and the new watermark (the last sequence number used)."""

    stored: list[Stored | None]
    added: dict[int, int]
    last: int


def create_schema(conn: sqlite3.Connection) -> tuple[list[GroupRow], int]:
    """Create the tables if needed; return the known groups and the highest sequence number used
    (unclaimed messages included, so a group claiming them later keeps their order)."""
    for statement in _SCHEMA:
        conn.execute(statement)
    conn.execute(
        "INSERT OR IGNORE INTO broker_seq (id, last) SELECT 0, MAX("
        "(SELECT COALESCE(MAX(seq), 0) FROM broker_messages),"
        " (SELECT COALESCE(MAX(seq), 0) FROM broker_unclaimed))"
    )
    counts = dict(conn.execute("SELECT grp, COUNT(*) FROM broker_messages GROUP BY grp").fetchall())
    groups = [
        GroupRow(int(gid), str(app_id), str(topic), int(counts.get(gid, 0)))
        for gid, app_id, topic in conn.execute("SELECT id, app_id, topic FROM broker_groups ORDER BY id")
    ]
    return groups, last_seq(conn)


def last_seq(conn: sqlite3.Connection) -> int:
    """The last sequence number any sharer of the file used."""
    (last,) = conn.execute("SELECT last FROM broker_seq WHERE id = 0").fetchone()
    return int(last)


def register_group(
    conn: sqlite3.Connection,
    app_id: str,
    topic: str,
    now: float,
    claims: Callable[[str], bool],
    watermark: int,
) -> tuple[int, int]:
    """The id of the group for (app_id, topic) and its backlog up to `watermark` (what is after it is
    counted by the next commit). A new group copies the unclaimed messages whose topic `claims` accepts
    (its subscription matches them)."""
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
    (backlog,) = conn.execute(
        "SELECT COUNT(*) FROM broker_messages WHERE grp = ? AND seq <= ?", (gid, watermark)
    ).fetchone()
    return int(gid), int(backlog)


def claim_consumer(
    conn: sqlite3.Connection, gid: int, pid: int, instance: str, live: Callable[[int, str], bool]
) -> int | None:
    """Make (`pid`, `instance`) the consumer of group `gid`, unless another consumer that `live` says is
    running has it: then return that one's pid."""
    row = conn.execute("SELECT pid, instance FROM broker_consumers WHERE grp = ?", (gid,)).fetchone()
    if row is not None and str(row[1]) != instance and live(int(row[0]), str(row[1])):
        return int(row[0])
    conn.execute(
        "INSERT OR REPLACE INTO broker_consumers (grp, pid, instance) VALUES (?, ?, ?)", (gid, pid, instance)
    )
    return None


def release_consumer(conn: sqlite3.Connection, instance: str) -> None:
    conn.execute("DELETE FROM broker_consumers WHERE instance = ?", (instance,))


def delete_group(conn: sqlite3.Connection, gid: int) -> None:
    """Forget a group and its backlog (a subscription the app no longer has)."""
    conn.execute("DELETE FROM broker_messages WHERE grp = ?", (gid,))
    conn.execute("DELETE FROM broker_consumers WHERE grp = ?", (gid,))
    conn.execute("DELETE FROM broker_streams WHERE grp = ?", (gid,))
    conn.execute("DELETE FROM broker_groups WHERE id = ?", (gid,))


def mark_streamed(conn: sqlite3.Connection, gid: int) -> None:
    conn.execute("INSERT OR IGNORE INTO broker_streams (grp) VALUES (?)", (gid,))


def streamed_groups(conn: sqlite3.Connection) -> set[int]:
    return {int(gid) for (gid,) in conn.execute("SELECT grp FROM broker_streams")}


def commit_batch(
    conn: sqlite3.Connection,
    inserts: Sequence[Insert],
    acks: Sequence[tuple[int, int]],
    *,
    matches: Callable[[str, str], bool],
    own: Sequence[int],
    watermark: int,
    keep_unclaimed: bool,
    expire_before: float | None = None,
) -> Committed:
    """Store published messages for every group (of any app) whose topic pattern `matches` theirs, count
    what the `own` groups got since `watermark`, then delete acknowledged messages (and unclaimed ones
    published before `expire_before`); the caller wraps it in one transaction, so many publishes share one
    fsync. Counting before deleting: a message delivered and acknowledged before it was counted (published
    by another process) is counted once all the same."""
    last = first = last_seq(conn)
    # Nobody else published since `watermark`: what the own groups got is exactly what this commit stores.
    counted_here = first == watermark
    stored: list[Stored | None] = []
    rows: list[tuple[int, int, bytes]] = []
    if inserts:
        groups = conn.execute("SELECT id, topic FROM broker_groups").fetchall()
        fan_out: dict[str, tuple[int, ...]] = {}
        unclaimed: list[tuple[int, str, bytes, float]] = []
        for insert in inserts:
            targets = fan_out.get(insert.topic)
            if targets is None:
                targets = fan_out[insert.topic] = tuple(
                    int(gid) for gid, pattern in groups if matches(str(pattern), insert.topic)
                )
            if not targets and not keep_unclaimed:
                stored.append(None)
                continue
            last += 1
            stored.append(Stored(last, targets))
            rows.extend((gid, last, insert.data) for gid in targets)
            if not targets:
                unclaimed.append((last, insert.topic, insert.data, insert.published))
        # Each statement lets go of the GIL and takes it back: no empty ones (the loop thread waits too).
        if rows:
            conn.executemany("INSERT INTO broker_messages (grp, seq, data) VALUES (?, ?, ?)", rows)
        if unclaimed:
            conn.executemany(
                "INSERT INTO broker_unclaimed (seq, topic, data, published) VALUES (?, ?, ?, ?)", unclaimed
            )
        if last > first:
            conn.execute("UPDATE broker_seq SET last = ? WHERE id = 0", (last,))
    added: dict[int, int] = {}
    if counted_here:
        mine = set(own)
        for row in rows:
            if row[0] in mine:
                added[row[0]] = added.get(row[0], 0) + 1
    elif last > watermark:
        for gid in own:
            (count,) = conn.execute(
                "SELECT COUNT(*) FROM broker_messages WHERE grp = ? AND seq > ?", (gid, watermark)
            ).fetchone()
            if count:
                added[gid] = int(count)
    if acks:
        conn.executemany("DELETE FROM broker_messages WHERE grp = ? AND seq = ?", acks)
    if expire_before is not None:
        conn.execute("DELETE FROM broker_unclaimed WHERE published < ?", (expire_before,))
    return Committed(stored, added, last)


def load_page(conn: sqlite3.Connection, gid: int, after: int, limit: int) -> list[tuple[int, bytes]]:
    """Up to `limit` messages of a group after sequence number `after`, oldest first."""
    rows = conn.execute(
        "SELECT seq, data FROM broker_messages WHERE grp = ? AND seq > ? ORDER BY seq LIMIT ?",
        (gid, after, limit),
    ).fetchall()
    return [(int(seq), bytes(data)) for seq, data in rows]
