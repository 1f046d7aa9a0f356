"""state.sqlite on real files: TTL on a manual clock, durability across reopen, daprd's schema both ways,
options from component metadata."""

from __future__ import annotations

import asyncio
import base64
import sqlite3
import uuid
from pathlib import Path

import pytest

from sidecar.clock import ManualClock
from sidecar.state import DeleteOp, ETagMismatch, SetOp, SqliteOptions, SqliteStateStore, StateError
from sidecar.state.properties import PropertyError


def _store(path: Path, clock: ManualClock | None = None, **options: object) -> SqliteStateStore:
    return SqliteStateStore(
        "statestore",
        SqliteOptions(path=str(path), **options),  # type: ignore[arg-type]
        clock or ManualClock(),
    )


async def test_ttl_hides_expired_items_and_reports_expiry(tmp_path: Path) -> None:
    clock = ManualClock()
    store = _store(tmp_path / "s.db", clock)
    await store.set(SetOp("k", b'"v"', metadata={"ttlInSeconds": "10"}))
    item = await store.get("k")
    assert item is not None and item.value == b'"v"'
    assert item.metadata["ttlExpireTime"].endswith("Z")
    clock.advance(5)
    assert await store.get("k") is not None
    clock.advance(6)
    assert await store.get("k") is None
    assert await store.bulk_get(["k"]) == [("k", None)]
    # An expired row counts as absent: first-write succeeds, an old ETag does not.
    with pytest.raises(ETagMismatch):
        await store.set(SetOp("k", b"1", etag=item.etag))
    await store.set(SetOp("k", b"2", concurrency="first-write"))
    again = await store.get("k")
    assert again is not None and again.value == b"2" and again.metadata == {}
    await store.close()


async def test_rewrite_without_ttl_clears_expiry_and_minus_one_means_none(tmp_path: Path) -> None:
    clock = ManualClock()
    store = _store(tmp_path / "s.db", clock)
    await store.set(SetOp("a", b"1", metadata={"ttlInSeconds": "5"}))
    await store.set(SetOp("a", b"2"))
    await store.set(SetOp("b", b"3", metadata={"ttlInSeconds": "-1"}))
    clock.advance(3600)
    assert [i is not None for _, i in await store.bulk_get(["a", "b"])] == [True, True]
    for bad in ("-2", "abc", "1.5"):
        with pytest.raises(StateError, match="ttlInSeconds"):
            await store.set(SetOp("c", b"1", metadata={"ttlInSeconds": bad}))
    await store.close()


async def test_data_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = _store(path)
    await store.transact([SetOp("a", b'{"x":1}'), SetOp("b", b"\x00\xff binary")])
    before = await store.bulk_get(["a", "b"])
    await store.close()
    reopened = _store(path)
    assert await reopened.bulk_get(["a", "b"]) == before
    await reopened.close()


async def test_failed_transaction_leaves_no_trace(tmp_path: Path) -> None:
    store = _store(tmp_path / "s.db")
    await store.set(SetOp("a", b"1"))
    with pytest.raises(ETagMismatch):
        await store.transact([SetOp("a", b"2"), DeleteOp("b", etag="nope")])
    item = await store.get("a")
    assert item is not None and item.value == b"1"
    await store.close()


async def test_rows_are_laid_out_as_daprd_writes_them(tmp_path: Path) -> None:
    clock = ManualClock()
    path = tmp_path / "s.db"
    store = _store(path, clock)
    await store.set(SetOp("app||text", b'{"a":1}', metadata={"ttlInSeconds": "60"}))
    await store.set(SetOp("app||bin", b"\xff\xfe"))
    await store.close()
    conn = sqlite3.connect(path)
    rows = {
        r[0]: r[1:]
        for r in conn.execute("SELECT key, value, is_binary, etag, expiration_time, update_time FROM state")
    }
    assert conn.execute("SELECT value FROM metadata WHERE key = 'migrations'").fetchone() == ("1",)
    conn.close()
    value, is_binary, etag, expires, updated = rows["app||text"]
    assert (value, is_binary) == ('{"a":1}', 0)
    uuid.UUID(etag)
    assert len(expires) == len(updated) == len("2025-01-01 00:00:00") and expires > updated
    assert rows["app||bin"][:2] == (base64.b64encode(b"\xff\xfe").decode(), 1)


async def test_reads_a_file_written_by_daprd(tmp_path: Path) -> None:
    # The schema and rows components-contrib's state.sqlite creates (migration level 1).
    path = tmp_path / "daprd.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE metadata (key text NOT NULL PRIMARY KEY, value text NOT NULL);
        INSERT INTO metadata VALUES ('migrations', '1');
        CREATE TABLE state (key TEXT NOT NULL PRIMARY KEY, value TEXT NOT NULL,
            is_binary BOOLEAN NOT NULL, etag TEXT NOT NULL, expiration_time TIMESTAMP DEFAULT NULL,
            update_time TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP);
        INSERT INTO state (key, value, is_binary, etag) VALUES ('app||j', '{"b":2}', 0, 'e1');
        INSERT INTO state (key, value, is_binary, etag) VALUES ('app||g', 'AAEC', 1, 'e2');
        INSERT INTO state (key, value, is_binary, etag, expiration_time)
            VALUES ('app||old', '1', 0, 'e3', '2000-01-01 00:00:00');
        """
    )
    conn.close()
    store = _store(path)
    found = dict(await store.bulk_get(["app||j", "app||g", "app||old"]))
    assert found["app||j"] is not None and (found["app||j"].value, found["app||j"].etag) == (b'{"b":2}', "e1")
    assert found["app||g"] is not None and found["app||g"].value == b"\x00\x01\x02"
    assert found["app||old"] is None
    await store.set(SetOp("app||j", b"3", etag="e1"))
    await store.close()


async def test_cleanup_interval_sweeps_expired_rows(tmp_path: Path) -> None:
    clock = ManualClock()
    path = tmp_path / "s.db"
    store = _store(path, clock, cleanup_interval=10.0)
    await store.set(SetOp("short", b"1", metadata={"ttlInSeconds": "1"}))
    clock.advance(30)
    await store.set(SetOp("other", b"2"))  # the first write after the interval sweeps
    await store.close()
    conn = sqlite3.connect(path)
    keys = [r[0] for r in conn.execute("SELECT key FROM state")]
    swept = conn.execute("SELECT value FROM metadata WHERE key = 'last-cleanup'").fetchone()
    conn.close()
    assert keys == ["other"] and swept is not None


def test_options_from_component_metadata(tmp_path: Path) -> None:
    opts = SqliteOptions.from_metadata(
        {
            "ConnectionString": "file:data/my.db?_pragma=synchronous(NORMAL)&_txlock=immediate",
            "tablename": "todo_state",
            "timeout": "30",
            "busyTimeout": "500ms",
            "disableWAL": "yes",
            "cleanupIntervalInSeconds": "3600",
        },
        data_dir=tmp_path,
    )
    assert opts.path == str(tmp_path / "data" / "my.db")
    assert (opts.synchronous, opts.table_name, opts.timeout) == ("NORMAL", "todo_state", 30.0)
    assert (opts.busy_timeout, opts.wal, opts.cleanup_interval) == (0.5, False, 3600.0)
    default = SqliteOptions.from_metadata({"url": "/abs/x.db"}, data_dir=tmp_path, synchronous="OFF")
    assert (default.path, default.synchronous, default.wal, default.busy_timeout) == (
        "/abs/x.db",
        "OFF",
        True,
        None,
    )
    assert SqliteOptions.from_metadata({"connectionString": ":memory:"}, data_dir=tmp_path).path == ":memory:"


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({}, "missing connection string"),
        ({"connectionString": "x.db?_pragma=journal_mode(DELETE)"}, "disableWAL"),
        ({"connectionString": "x.db?_pragma=busy_timeout(10)"}, "busyTimeout"),
        ({"connectionString": "x.db?mode=ro"}, "read-only"),
        ({"connectionString": "x.db", "timeout": "500ms"}, "greater than 1s"),
        ({"connectionString": "x.db", "timeout": "soon"}, "invalid duration"),
        ({"connectionString": "x.db", "tableName": "drop table;"}, "invalid identifier"),
    ],
)
def test_bad_metadata_is_refused(tmp_path: Path, metadata: dict[str, str], message: str) -> None:
    with pytest.raises(PropertyError, match=message):
        SqliteOptions.from_metadata(metadata, data_dir=tmp_path)


async def test_wal_is_on_by_default_and_off_with_disable_wal(tmp_path: Path) -> None:
    wal = _store(tmp_path / "wal.db")
    plain = _store(tmp_path / "plain.db", wal=False)
    for store in (wal, plain):
        await store.set(SetOp("k", b"1"))
    assert (tmp_path / "wal.db-wal").exists()
    assert not (tmp_path / "plain.db-wal").exists()
    await wal.close()
    await plain.close()


async def test_in_memory_database_and_custom_tables(tmp_path: Path) -> None:
    store = _store(Path(":memory:"), table_name="t1", metadata_table_name="m1")
    await store.set(SetOp("k", b"1"))
    item = await store.get("k")
    assert item is not None and item.value == b"1"
    await store.close()


async def test_concurrent_transactions_share_a_commit_and_fail_alone(tmp_path: Path) -> None:
    # Writes that arrive together commit together (group commit); one refused by its ETag leaves no
    # row of its own and takes nothing of the others with it.
    store = _store(tmp_path / "g.db")
    try:
        await store.set(SetOp("guarded", b"0"))
        commits_before = store._db.commits
        results = await asyncio.gather(
            *(store.transact([SetOp(f"a{n}", b"1"), SetOp(f"b{n}", b"1")]) for n in range(10)),
            store.transact([SetOp("c", b"1"), SetOp("guarded", b"1", etag="stale")]),
            return_exceptions=True,
        )
        assert [type(r) for r in results] == [type(None)] * 10 + [ETagMismatch]
        assert store._db.commits - commits_before <= 2  # 11 transactions
        found = dict(await store.bulk_get([*(f"a{n}" for n in range(10)), "c", "guarded"]))
        assert all(found[f"a{n}"] is not None for n in range(10))
        assert found["c"] is None and found["guarded"] is not None and found["guarded"].value == b"0"
    finally:
        await store.close()
