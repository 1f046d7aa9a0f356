"""Sharing one durable broker file (`pubsub.embedded.sqlite`) between the sidecars of a host: which
consumer of a group is still running, and the watch for what other processes publish to the file."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import Callable, Mapping
from pathlib import Path

from sidecar.pubsub.journal import last_seq

__all__ = ["WATCH_INTERVAL", "OpenBrokers", "consumer_id", "watch_file"]

log = logging.getLogger("sidecar.pubsub.durable")

WATCH_INTERVAL = 0.05  # seconds between looks for other processes' publishes to a shared file


def consumer_id(name: str, metadata: Mapping[str, str], app_id: str) -> str:
    """`consumerID` as contrib's brokers read it: the app id by default, `{appID}` and `{namespace}`
    replaced; the consumer groups of a shared file are per consumer id."""
    value = next((v for k, v in metadata.items() if k.lower() == "consumerid"), "").strip() or app_id
    value = value.replace("{appID}", app_id).replace("{namespace}", "default")
    if "{" in value:
        raise ValueError(
            f"pubsub component {name!r}: consumerID {value!r}: only {{appID}} and {{namespace}} are "
            "replaced by the embedded sidecar ({podName} and {uuid} are Kubernetes/per-start ids)"
        )
    return value


class OpenBrokers:
    """The brokers open in this process, by instance: a consumer row of this pid is live while its
    broker is; a row of another pid while that process runs."""

    def __init__(self) -> None:
        self._open: set[str] = set()

    def add(self, instance: str) -> None:
        self._open.add(instance)

    def discard(self, instance: str) -> bool:
        """Forget `instance`; whether it was open."""
        was = instance in self._open
        self._open.discard(instance)
        return was

    def alive(self, pid: int, instance: str) -> bool:
        if pid == os.getpid():
            return instance in self._open
        try:
            os.kill(pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True


async def watch_file(path: Path, name: str, seen: Callable[[int], None], closed: Callable[[], bool]) -> None:
    """Call `seen(last sequence number)` whenever the file's data version changed (a commit of any
    connection, other processes' included), until `closed()`."""
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    try:
        version = None
        while not closed():
            (current,) = conn.execute("PRAGMA data_version").fetchone()
            if current != version:
                version = current
                seen(last_seq(conn))
            await asyncio.sleep(WATCH_INTERVAL)
    except sqlite3.Error as exc:
        log.error("pubsub %s: stopped watching %s for other sidecars' messages: %s", name, path, exc)
    finally:
        conn.close()
