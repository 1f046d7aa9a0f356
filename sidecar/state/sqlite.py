"""`state.sqlite`: durable state in one SQLite file, in the same schema daprd's `state.sqlite` writes.

The table (key, value, is_binary, etag, expiration_time, update_time) and the `migrations` row of the metadata
table match components-contrib, so a file written here opens under daprd and back. Every call is one
transaction on the file's own `Database` thread (WAL, `synchronous=FULL` unless configured otherwise).
Time comes from the injected clock, never from SQLite's CURRENT_TIMESTAMP.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import logging
import math
import re
import sqlite3
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from sidecar.clock import Clock
from sidecar.db import Database
from sidecar.groupcommit import GroupCommit
from sidecar.state.properties import ComponentProperties, PropertyError
from sidecar.state.store import (
    DeleteOp,
    ETagMismatch,
    OutboxRecord,
    SetOp,
    StateError,
    StateItem,
    parse_ttl,
    ttl_metadata,
)

__all__ = ["SqliteOptions", "SqliteStateStore"]

log = logging.getLogger("sidecar.state.sqlite")

_IDENTIFIER = re.compile(r"[A-Za-z0-9_]+")
_PRAGMA = re.compile(r"([A-Za-z_]+)\(([A-Za-z0-9_\-]+)\)")
_SYNCHRONOUS = {"OFF", "NORMAL", "FULL", "EXTRA", "0", "1", "2", "3"}
_FORBIDDEN_PRAGMAS = {
    "busy_timeout": "use the `busyTimeout` metadata property instead",
    "journal_mode": "use the `disableWAL` metadata property instead",
    "foreign_keys": "it cannot be set on a state store",
}
_CHUNK = 500  # keys per IN (...) query, well under SQLite's bound-parameter limit


@dataclass(frozen=True)
class SqliteOptions:
    """What a `state.sqlite` component's metadata configures.

    `synchronous` is FULL by default (fsync on every commit, as daprd's driver); set it from the
    connection string (`?_pragma=synchronous(NORMAL)`, which daprd accepts too) or the sidecar's
    `sqlite_synchronous` setting, e.g. for benchmarks. `timeout` is validated but not enforced.
    """

    path: str  # a filesystem path, or ":memory:"
    table_name: str = "state"
    metadata_table_name: str = "metadata"
    timeout: float = 20.0
    busy_timeout: float | None = None  # None: keep the Database's own busy timeout
    wal: bool = True
    synchronous: str = "FULL"
    cleanup_interval: float = 0.0  # seconds between sweeps of expired rows; 0 = never
    pragmas: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_metadata(
        cls, metadata: Mapping[str, str], *, data_dir: Path, synchronous: str = "FULL"
    ) -> SqliteOptions:
        """Options from component metadata; a relative file path is taken relative to `data_dir`."""
        props = ComponentProperties(metadata)
        connection = props.text("connectionString", "url")
        if not connection:
            raise PropertyError("missing connection string")
        path, query = _split_connection_string(connection, data_dir)
        pragmas: list[tuple[str, str]] = []
        for pragma in query.get("_pragma", []):
            match = _PRAGMA.fullmatch(pragma.strip())
            if match is None:
                raise PropertyError(f"invalid '_pragma={pragma}' in the connection string")
            name, value = match.group(1).lower(), match.group(2)
            if name in _FORBIDDEN_PRAGMAS:
                raise PropertyError(
                    f"found forbidden option '_pragma={name}' in the connection string: "
                    + _FORBIDDEN_PRAGMAS[name]
                )
            if name == "synchronous":
                synchronous = value
            else:
                pragmas.append((name, value))
        if synchronous.upper() not in _SYNCHRONOUS:
            raise PropertyError(f"invalid synchronous mode {synchronous!r}")
        timeout = props.duration("timeout", "timeoutInSeconds", default=20.0)
        if timeout < 1.0:
            raise PropertyError("invalid value for 'timeout': must be greater than 1s")
        busy = props.get("busyTimeout")
        options = cls(
            path=path,
            table_name=props.text("tableName", default="state"),
            metadata_table_name=props.text("metadataTableName", default="metadata"),
            timeout=timeout,
            busy_timeout=props.duration("busyTimeout", default=2.0) if busy else None,
            wal=not props.flag("disableWAL"),
            synchronous=synchronous.upper(),
            cleanup_interval=props.duration("cleanupInterval", "cleanupIntervalInSeconds", default=0.0),
            pragmas=tuple(pragmas),
        )
        for identifier in (options.table_name, options.metadata_table_name):
            if not _IDENTIFIER.fullmatch(identifier):
                raise PropertyError(f"invalid identifier: {identifier}")
        return options


def _split_connection_string(connection: str, data_dir: Path) -> tuple[str, dict[str, list[str]]]:
    lowered = connection.lower()
    base, _, query_text = connection.partition("?")
    query = parse_qs(query_text)
    if lowered.startswith((":memory:", "file::memory:")) or query.get("mode") == ["memory"]:
        return ":memory:", query
    if query.get("mode", [""])[0] == "ro" or query.get("immutable", [""])[0] == "1":
        raise PropertyError(
            "read-only databases (mode=ro, immutable=1) are not supported by the embedded sidecar"
        )
    if base.lower().startswith("file:"):
        base = unquote(urlsplit(base).path)
    path = Path(base).expanduser()
    if not path.is_absolute():
        path = data_dir / path
    return str(path), query


class SqliteStateStore:
    """The `state.sqlite` component."""

    component_type = "state.sqlite"
    features = frozenset({"ETAG", "TRANSACTIONAL", "TTL", "KEYS_LIKE"})

    def __init__(self, name: str, options: SqliteOptions, clock: Clock, *, key_prefix: str = "appid") -> None:
        self.name = name
        self.key_prefix = key_prefix
        self.options = options
        self._clock = clock
        self._table = options.table_name
        self._next_cleanup = 0.0
        if options.path != ":memory:":
            Path(options.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = Database(options.path, synchronous=options.synchronous, wal=options.wal)
        self._group = GroupCommit(self._db)  # concurrent writes (actor turns of many actors) share a commit
        try:
            self._db.run_sync(self._configure)
            self._db.transaction_sync(self._migrate)
        except (sqlite3.Error, StateError):
            self._db.close()
            raise

    def _configure(self, conn: sqlite3.Connection) -> None:
        if not self.options.wal and self.options.path != ":memory:":
            conn.execute("PRAGMA journal_mode=DELETE")  # a file once in WAL mode stays so otherwise
        if self.options.busy_timeout is not None:
            conn.execute(f"PRAGMA busy_timeout={int(self.options.busy_timeout * 1000)}")
        for name, value in self.options.pragmas:
            conn.execute(f"PRAGMA {name}={value}")

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """components-contrib's migration 1, recorded the same way so daprd skips it."""
        meta = self.options.metadata_table_name
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {meta} (key text NOT NULL PRIMARY KEY, value text NOT NULL)"
        )
        row = conn.execute(f"SELECT value FROM {meta} WHERE key = 'migrations'").fetchone()
        level = str(row[0]) if row else "0"
        if not level.isdigit():
            raise StateError(f"invalid migration level found in metadata table: {level}")
        if int(level) < 1:
            log.info("Creating state table '%s' in %s", self._table, self.options.path)
            conn.execute(
                f"""CREATE TABLE IF NOT EXISTS {self._table} (
                    key TEXT NOT NULL PRIMARY KEY,
                    value TEXT NOT NULL,
                    is_binary BOOLEAN NOT NULL,
                    etag TEXT NOT NULL,
                    expiration_time TIMESTAMP DEFAULT NULL,
                    update_time TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
                )"""
            )
            conn.execute(f"REPLACE INTO {meta} (key, value) VALUES ('migrations', '1')")

    async def get(self, key: str) -> StateItem | None:
        return (await self.bulk_get([key]))[0][1]

    async def bulk_get(self, keys: Sequence[str]) -> list[tuple[str, StateItem | None]]:
        now = _timestamp(self._clock.now())
        wanted = list(dict.fromkeys(keys))

        def read(conn: sqlite3.Connection) -> dict[str, StateItem]:
            found: dict[str, StateItem] = {}
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                rows = conn.execute(
                    f"SELECT key, value, is_binary, etag, expiration_time FROM {self._table}"
                    f" WHERE key IN ({','.join('?' * len(chunk))})"
                    " AND (expiration_time IS NULL OR expiration_time > ?)",
                    (*chunk, now),
                )
                for row in rows:
                    found[row[0]] = _item(row)
            return found

        found = await self._db.run(read) if wanted else {}
        return [(key, found.get(key)) for key in keys]

    async def set(self, op: SetOp) -> None:
        await self.transact([op])

    async def delete(self, op: DeleteOp) -> None:
        await self.transact([op])

    async def transact(self, ops: Sequence[SetOp | DeleteOp], events: Sequence[OutboxRecord] = ()) -> None:
        if not ops and not events:
            return
        ttls = [parse_ttl(op.metadata) if isinstance(op, SetOp) else None for op in ops]
        instant = self._clock.now()
        now = _timestamp(instant)
        cleanup = 0.0 < self.options.cleanup_interval and self._next_cleanup <= instant
        if cleanup:
            self._next_cleanup = instant + self.options.cleanup_interval

        def write(conn: sqlite3.Connection) -> None:
            for op, ttl in zip(ops, ttls, strict=True):
                if isinstance(op, SetOp):
                    self._set(conn, op, ttl, instant, now)
                else:
                    self._delete(conn, op)
            if events:
                conn.executemany(
                    f"INSERT INTO {self._outbox} (event_id, pubsub, topic, content_type, data, created)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    [(e.event_id, e.pubsub, e.topic, e.content_type, e.data, now) for e in events],
                )
            if cleanup:
                self._cleanup(conn, now)

        await self._group.run(write)

    # The outbox table sits beside the state table (named after it), so events commit with the rows they
    # describe. It exists only in files whose component enables the outbox; daprd ignores it.

    @property
    def _outbox(self) -> str:
        return f"{self._table}_outbox"

    def enable_outbox(self) -> None:
        self._db.run_sync(
            lambda conn: conn.execute(
                f"""CREATE TABLE IF NOT EXISTS {self._outbox} (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    event_id TEXT NOT NULL,
                    pubsub TEXT NOT NULL,
                    topic TEXT NOT NULL,
                    content_type TEXT NOT NULL,
                    data BLOB NOT NULL,
                    created TIMESTAMP NOT NULL
                )"""
            )
        )

    async def outbox_pending(self, limit: int) -> list[OutboxRecord]:
        rows = await self._db.run(
            lambda conn: conn.execute(
                f"SELECT seq, event_id, pubsub, topic, content_type, data FROM {self._outbox}"
                " ORDER BY seq LIMIT ?",
                (limit,),
            ).fetchall()
        )
        return [
            OutboxRecord(str(r[1]), str(r[2]), str(r[3]), str(r[4]), bytes(r[5]), int(r[0])) for r in rows
        ]

    async def outbox_remove(self, seq: int) -> None:
        await self._db.transaction(
            lambda conn: conn.execute(f"DELETE FROM {self._outbox} WHERE seq = ?", (seq,))
        )

    async def outbox_count(self) -> int:
        row = await self._db.run(lambda conn: conn.execute(f"SELECT COUNT(*) FROM {self._outbox}").fetchone())
        return int(row[0])

    def _set(self, conn: sqlite3.Connection, op: SetOp, ttl: int | None, instant: float, now: str) -> None:
        value, is_binary = _stored_value(op.value)
        etag = str(uuid.uuid4())
        # Like DATETIME(CURRENT_TIMESTAMP, '+N seconds'): whole seconds; a new write resets the TTL.
        expires = _timestamp(math.floor(instant) + ttl) if ttl and ttl > 0 else None
        alive = "(expiration_time IS NULL OR expiration_time > ?)"
        if op.etag:
            cursor = conn.execute(
                f"UPDATE {self._table} SET value = ?, etag = ?, is_binary = ?, update_time = ?,"
                f" expiration_time = ? WHERE key = ? AND etag = ? AND {alive}",
                (value, etag, is_binary, now, expires, op.key, op.etag, now),
            )
            if cursor.rowcount == 0:
                raise ETagMismatch()
            return
        if op.concurrency == "first-write":
            # An expired row not yet swept counts as absent.
            exists = conn.execute(
                f"SELECT 1 FROM {self._table} WHERE key = ? AND {alive}", (op.key, now)
            ).fetchone()
            if exists:
                raise ETagMismatch()
        conn.execute(
            f"INSERT OR REPLACE INTO {self._table}"
            " (key, value, is_binary, etag, update_time, expiration_time) VALUES (?, ?, ?, ?, ?, ?)",
            (op.key, value, is_binary, etag, now, expires),
        )

    def _delete(self, conn: sqlite3.Connection, op: DeleteOp) -> None:
        # components-contrib's sqlite store ignores first-write on deletes: only an ETag is checked.
        if op.etag:
            cursor = conn.execute(f"DELETE FROM {self._table} WHERE key = ? AND etag = ?", (op.key, op.etag))
            if cursor.rowcount == 0:
                raise ETagMismatch()
        else:
            conn.execute(f"DELETE FROM {self._table} WHERE key = ?", (op.key,))

    def _cleanup(self, conn: sqlite3.Connection, now: str) -> None:
        cursor = conn.execute(
            f"DELETE FROM {self._table} WHERE expiration_time IS NOT NULL AND expiration_time < ?",
            (now,),
        )
        conn.execute(
            f"REPLACE INTO {self.options.metadata_table_name} (key, value) VALUES ('last-cleanup', ?)",
            (now,),
        )
        if cursor.rowcount:
            log.debug("Removed %d expired rows from %s", cursor.rowcount, self._table)

    async def close(self) -> None:
        await asyncio.to_thread(self._db.close)

    def shutdown(self) -> None:
        """Close the file without an event loop (start-up failures, tests)."""
        self._db.close()


def _timestamp(instant: float) -> str:
    """SQLite's CURRENT_TIMESTAMP layout (UTC, whole seconds): sorts as text in time order."""
    return _second(math.floor(instant))


@functools.lru_cache(maxsize=8)
def _second(second: int) -> str:
    # Every read and write formats "now": within one second it is the same text (strftime costs ~4 us).
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _stored_value(value: bytes) -> tuple[str, int]:
    """JSON text is stored as text; other bytes base64 with is_binary set, as daprd stores []byte."""
    try:
        return value.decode("utf-8"), 0
    except UnicodeDecodeError:
        return base64.b64encode(value).decode("ascii"), 1


def _item(row: tuple[object, ...]) -> StateItem:
    key, value, is_binary, etag, expiration = row
    data = value if isinstance(value, bytes) else str(value).encode("utf-8")
    if is_binary:
        data = base64.b64decode(data)
    expires = None
    if expiration is not None:
        moment = datetime.fromisoformat(str(expiration))
        expires = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    return StateItem(str(key), data, str(etag), ttl_metadata(expires))
