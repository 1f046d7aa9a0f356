"""The host-wide registry of running sidecars: how sidecars on one machine find each other without daprd's
mDNS and placement service. One SQLite file in a per-user directory holds, per running sidecar, its app id,
namespace, API ports, pid and hosted actor types; entries whose pid is gone are dropped when read.

The directory also holds the host secret (`host.secret`, mode 0600) that sidecars present to each other on
their internal routes: daprd proves a caller's app id with mTLS in one trust domain; here the trust domain is
"processes of this user on this host", and the secret (readable by that user only) proves membership.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import sqlite3
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["REGISTRY_DIR_ENV", "HostRegistry", "SidecarEntry", "default_registry_dir"]

log = logging.getLogger("sidecar.hosts")

REGISTRY_DIR_ENV = "TODO_ENGINE_REGISTRY_DIR"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sidecars (
    instance TEXT PRIMARY KEY,
    app_id TEXT NOT NULL,
    namespace TEXT NOT NULL,
    host TEXT NOT NULL,
    http_port INTEGER NOT NULL,
    grpc_port INTEGER NOT NULL,
    pid INTEGER NOT NULL,
    actor_types TEXT NOT NULL DEFAULT '[]',
    registered REAL NOT NULL DEFAULT (julianday('now'))
);
CREATE INDEX IF NOT EXISTS sidecars_app ON sidecars (namespace, app_id);
"""


def default_registry_dir(environ: Mapping[str, str]) -> Path:
    """`$TODO_ENGINE_REGISTRY_DIR`, else `$XDG_RUNTIME_DIR/todo-engine/registry` (per user, gone at
    logout, like the sidecars it lists), else `~/.todo-engine/registry` (as the Dapr CLI keeps `~/.dapr`)."""
    if environ.get(REGISTRY_DIR_ENV):
        return Path(environ[REGISTRY_DIR_ENV])
    runtime = environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / "todo-engine" / "registry"
    return Path(environ.get("HOME") or Path.home()) / ".todo-engine" / "registry"


@dataclass(frozen=True)
class SidecarEntry:
    instance: str
    app_id: str
    namespace: str
    host: str
    http_port: int
    grpc_port: int
    pid: int
    actor_types: tuple[str, ...] = ()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process reuses the pid: not a sidecar of ours
        return False
    return True


class HostRegistry:
    """One sidecar's handle on the shared registry: `register` once listening, `claim_actor_types` once
    the app's actor types are known, `unregister` on stop; `find_app` and `find_actor_host` for lookups."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.secret = _host_secret(directory / "host.secret")
        self.instance = uuid.uuid4().hex
        self._conn = sqlite3.connect(
            str(directory / "registry.db"), isolation_level=None, check_same_thread=False, timeout=10.0
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA busy_timeout=10000")
        self._conn.executescript(_SCHEMA)
        self._closed = False

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken at once (BEGIN IMMEDIATE): two sidecars claiming the same actor type
        see each other's claim, never both win."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def register(self, app_id: str, namespace: str, host: str, http_port: int, grpc_port: int) -> None:
        with self._write() as conn:
            self._drop_dead(conn)
            conn.execute(
                "INSERT OR REPLACE INTO sidecars (instance, app_id, namespace, host, http_port, grpc_port,"
                " pid) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (self.instance, app_id, namespace, host, http_port, grpc_port, os.getpid()),
            )
        log.info("registered %r in %s", app_id, self.directory)

    def claim_actor_types(self, types: list[str]) -> list[str]:
        """Record the actor types this sidecar's app hosts, except those a live sidecar registered before
        already hosts: one host per type (each sidecar keeps its actors' state in its own store, so two
        hosts of a type would split an actor's state). Returns the types refused."""
        with self._write() as conn:
            self._drop_dead(conn)
            taken: dict[str, str] = {}
            for entry in self._entries(conn):
                if entry.instance != self.instance:
                    taken.update({t: entry.app_id for t in entry.actor_types})
            refused = [t for t in types if t in taken]
            for actor_type in refused:
                log.error(
                    "actor type %r is already hosted by app %r on this host: this app will not host it "
                    "(calls for it go to %r); stop the other app to host it here",
                    actor_type,
                    taken[actor_type],
                    taken[actor_type],
                )
            kept = [t for t in types if t not in taken]
            conn.execute(
                "UPDATE sidecars SET actor_types = ? WHERE instance = ?", (json.dumps(kept), self.instance)
            )
        return refused

    def unregister(self) -> None:
        """Out of the registry; lookups made while this sidecar stops find nothing."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(sqlite3.Error):
            self._conn.execute("DELETE FROM sidecars WHERE instance = ?", (self.instance,))
        self._conn.close()

    def find_app(self, app_id: str, namespace: str) -> list[SidecarEntry]:
        """The live sidecars of `app_id` in `namespace`, oldest first."""
        if self._closed:
            return []
        rows = self._conn.execute(
            "SELECT * FROM sidecars WHERE app_id = ? AND namespace = ? ORDER BY registered, instance",
            (app_id, namespace),
        ).fetchall()
        return self._live(rows)

    def others(self) -> list[SidecarEntry]:
        """Every live sidecar of the host but this one, oldest first."""
        if self._closed:
            return []
        rows = self._conn.execute(
            "SELECT * FROM sidecars WHERE instance != ? ORDER BY registered, instance", (self.instance,)
        ).fetchall()
        return self._live(rows)

    def find_actor_host(self, actor_type: str) -> SidecarEntry | None:
        """The live sidecar (not this one) whose app hosts `actor_type`."""
        if self._closed:
            return None
        rows = self._conn.execute(
            "SELECT * FROM sidecars WHERE instance != ? AND actor_types LIKE ? ORDER BY registered, instance",
            (self.instance, f"%{json.dumps(actor_type)}%"),
        ).fetchall()
        return next((e for e in self._live(rows) if actor_type in e.actor_types), None)

    def _live(self, rows: list[tuple[object, ...]]) -> list[SidecarEntry]:
        entries = [_entry(row) for row in rows]
        dead = [e.instance for e in entries if not _alive(e.pid)]
        if dead:
            log.info("dropping %d registry entr(ies) of exited sidecars", len(dead))
            with contextlib.suppress(sqlite3.Error):
                self._conn.executemany("DELETE FROM sidecars WHERE instance = ?", [(i,) for i in dead])
        return [e for e in entries if e.instance not in dead]

    def _entries(self, conn: sqlite3.Connection) -> list[SidecarEntry]:
        return [_entry(row) for row in conn.execute("SELECT * FROM sidecars ORDER BY registered, instance")]

    def _drop_dead(self, conn: sqlite3.Connection) -> None:
        dead = [e.instance for e in self._entries(conn) if not _alive(e.pid)]
        conn.executemany("DELETE FROM sidecars WHERE instance = ?", [(i,) for i in dead])


def _entry(row: tuple[object, ...]) -> SidecarEntry:
    instance, app_id, namespace, host, http_port, grpc_port, pid, types, _ = row
    return SidecarEntry(
        str(instance),
        str(app_id),
        str(namespace),
        str(host),
        int(str(http_port)),
        int(str(grpc_port)),
        int(str(pid)),
        tuple(json.loads(str(types))),
    )


def _host_secret(path: Path) -> str:
    """The host secret, made once by whichever sidecar comes first (O_EXCL: never two secrets)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # the creator may not have written it yet
            text = path.read_text().strip()
            if text:
                return text
            os.sched_yield()
        raise OSError(f"the host secret {path} is empty; remove it to make a new one") from None
    value = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as f:
        f.write(value)
    return value
