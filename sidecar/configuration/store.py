"""`configuration.embedded.sqlite`: this sidecar's own configuration store (daprd has `configuration.redis`,
`.postgres`, `.azure.appconfig`), so the Configuration API works with pip alone.

Items `{value, version, metadata}` live in one SQLite table (`<data-dir>/configuration-<name>.db`, or
`dbFile`). Reads and subscriptions behave as contrib's Redis store: missing keys are left out, no keys
means all, each changed key is one update event carrying that key only, and a deleted key is sent as an
empty item. Items are written through the sidecar's dev route (`PUT /v1.0-dev/configuration/{store}`).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["CONFIGURATION_TYPE", "Item", "SqliteConfigurationStore", "UpdateEvent"]

log = logging.getLogger("sidecar.configuration")

CONFIGURATION_TYPE = "configuration.embedded.sqlite"


@dataclass(frozen=True)
class Item:
    value: str = ""
    version: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        """contrib's `configuration.Item` JSON (every field `omitempty`)."""
        out: dict[str, object] = {}
        if self.value:
            out["value"] = self.value
        if self.version:
            out["version"] = self.version
        if self.metadata:
            out["metadata"] = dict(self.metadata)
        return out


@dataclass(frozen=True)
class UpdateEvent:
    id: str  # the subscription's id
    items: Mapping[str, Item]

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "items": {k: v.to_json() for k, v in self.items.items()}}


Handler = Callable[[UpdateEvent], Awaitable[None]]


@dataclass(frozen=True)
class _Subscription:
    keys: frozenset[str]  # empty: every key
    handler: Handler


class SqliteConfigurationStore:
    type = CONFIGURATION_TYPE

    def __init__(self, name: str, path: Path) -> None:
        self.name = name
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS items (key TEXT PRIMARY KEY, value TEXT NOT NULL,"
            " version TEXT NOT NULL, metadata TEXT NOT NULL)"
        )
        self._subscriptions: dict[str, _Subscription] = {}

    @classmethod
    def from_metadata(
        cls, name: str, metadata: Mapping[str, str], data_dir: Path
    ) -> SqliteConfigurationStore:
        db_file = next((v for k, v in metadata.items() if k.lower() == "dbfile"), "").strip()
        if db_file in (".", "..") or db_file.endswith(("/", "\\")):
            raise ValueError(f"dbFile {db_file!r} is not a file name")
        path = Path(db_file or f"configuration-{name}.db").expanduser()
        return cls(name, path if path.is_absolute() else Path(data_dir) / path)

    def get(self, keys: Sequence[str]) -> dict[str, Item]:
        if keys:
            marks = ",".join("?" * len(keys))
            rows = self._db.execute(f"SELECT * FROM items WHERE key IN ({marks})", list(keys)).fetchall()
        else:
            rows = self._db.execute("SELECT * FROM items ORDER BY key").fetchall()
        return {key: Item(value, version, json.loads(meta)) for key, value, version, meta in rows if value}

    def set(self, changes: Mapping[str, Item | None]) -> dict[str, Item]:
        """Write (or, for None, delete) items in one transaction; an item without a version gets the
        previous version plus one. Returns the items as stored (deleted keys as empty items)."""
        stored: dict[str, Item] = {}
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            for key, item in changes.items():
                if item is None:
                    self._db.execute("DELETE FROM items WHERE key = ?", (key,))
                    stored[key] = Item()
                    continue
                version = item.version or self._next_version(key)
                self._db.execute(
                    "INSERT OR REPLACE INTO items VALUES (?, ?, ?, ?)",
                    (key, item.value, version, json.dumps(dict(item.metadata))),
                )
                stored[key] = Item(item.value, version, dict(item.metadata))
        return stored

    def _next_version(self, key: str) -> str:
        row = self._db.execute("SELECT version FROM items WHERE key = ?", (key,)).fetchone()
        return str(int(row[0]) + 1) if row is not None and row[0].isdigit() else "1"

    def subscribe(self, keys: Sequence[str], handler: Handler) -> str:
        subscription_id = str(uuid.uuid4())
        self._subscriptions[subscription_id] = _Subscription(frozenset(keys), handler)
        return subscription_id

    def unsubscribe(self, subscription_id: str) -> None:
        if self._subscriptions.pop(subscription_id, None) is None:
            raise KeyError(f"subscription with id {subscription_id} does not exist")

    async def notify(self, changed: Mapping[str, Item]) -> None:
        """One event per changed key to each subscription that watches it (as Redis keyspace events)."""
        for key, item in changed.items():
            for subscription_id, sub in list(self._subscriptions.items()):
                if sub.keys and key not in sub.keys:
                    continue
                try:
                    await sub.handler(UpdateEvent(subscription_id, {key: item}))
                except Exception:  # one failing subscriber must not stop the others
                    log.exception(
                        "configuration store %s: update handler of %s failed", self.name, subscription_id
                    )

    def close(self) -> None:
        self._subscriptions.clear()
        self._db.close()
