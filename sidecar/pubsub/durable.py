"""`pubsub.embedded.sqlite`: the embedded sidecar's durable broker, so a sidecar crash or an app that is
down loses no message (at-least-once, as daprd gives with Redis streams or Kafka consumer groups).

Its own type because daprd has no SQLite broker and `pubsub.in-memory` means "lost on restart" there. A
publish is acknowledged once its message is committed (WAL, `synchronous=FULL`; concurrent publishes share
one commit) for every known consumer group of its topic: a group is one subscription (app id + topic
pattern), remembered across restarts, so messages are kept while the app is down or before it has
been asked for `/dapr/subscribe` again. A message leaves a group when its subscriber acknowledged it
(delivered, dropped per daprd's contract, or dead-lettered durably). Each group holds at most `backlog.PAGE`
messages in memory; the rest is paged in from SQLite in order. A message published while its topic has no
group yet (a first run, before the app's subscriptions were read) is kept `unclaimedRetention` and goes to
the groups created in that time, as a Redis streams group created at id 0 reads what the stream holds.

Sidecars of several apps on one host share messages through one file (`dbFile` naming the same path): a
publish goes to the groups of every app (daprd's consumer group per app id), and each broker watches the
file (`PRAGMA data_version`, see sidecar.pubsub.sharing) for other processes' publishes to its groups. A group
has one consuming process: a second replica of an app id on the same file is refused for that topic (it
would need message leases; Redis streams share a group between replicas).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import sqlite3
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sidecar.db import Database
from sidecar.pubsub.backlog import ConsumerGroup, JournalWriter
from sidecar.pubsub.broker import BrokerClosed, BrokerSpec, TopicScopes, topic_matches
from sidecar.pubsub.journal import (
    Insert,
    claim_consumer,
    create_schema,
    delete_group,
    mark_streamed,
    register_group,
    release_consumer,
    streamed_groups,
)
from sidecar.pubsub.sharing import OpenBrokers, consumer_id, watch_file
from sidecar.pubsub.worker import DeliveryWorker, Message
from sidecar.state.properties import ComponentProperties

__all__ = ["DURABLE_TYPE", "DurableOptions", "SqliteBroker"]

log = logging.getLogger("sidecar.pubsub.durable")

DURABLE_TYPE = "pubsub.embedded.sqlite"
DEFAULT_UNCLAIMED_RETENTION = 3600.0
# The brokers open in this process: a consumer of a shared file's group is live while its broker is.
_OPEN = OpenBrokers()


@dataclass(frozen=True)
class DurableOptions:
    """The component's own metadata: `dbFile`, the SQLite file (relative to the sidecar's data dir;
    default `pubsub-<component name>.db`); `unclaimedRetention`, how long a message published before
    any subscription to its topic existed is kept for one that appears (Go duration, default 1h, 0 =
    dropped at once as `pubsub.in-memory` does). Other names are the pub/sub metadata every daprd
    component reads (topic scopes) or are ignored, as daprd ignores metadata a component does not know."""

    path: Path
    unclaimed_retention: float = DEFAULT_UNCLAIMED_RETENTION

    @classmethod
    def from_metadata(cls, name: str, metadata: Mapping[str, str], data_dir: Path) -> DurableOptions:
        db_file = next((v for k, v in metadata.items() if k.lower() == "dbfile"), "").strip()
        if db_file in (".", "..") or db_file.endswith(("/", "\\")):
            raise ValueError(f"pubsub component {name!r}: dbFile {db_file!r} is not a file name")
        path = Path(db_file or f"pubsub-{name}.db").expanduser()
        retention = ComponentProperties(metadata).duration(
            "unclaimedRetention", default=DEFAULT_UNCLAIMED_RETENTION
        )
        if retention < 0:
            raise ValueError(f"pubsub component {name!r}: unclaimedRetention must not be negative")
        return cls(path if path.is_absolute() else Path(data_dir) / path, retention)


class SqliteBroker:
    """One `pubsub.embedded.sqlite` component."""

    def __init__(self, spec: BrokerSpec, app_id: str, *, data_dir: Path, synchronous: str = "FULL") -> None:
        self.spec = spec
        self.name = spec.name
        self.app_id = app_id
        self.consumer = consumer_id(spec.name, spec.metadata, app_id)  # whose consumer groups are ours
        self.scopes = TopicScopes.from_metadata(spec.metadata, app_id)
        self.options = DurableOptions.from_metadata(spec.name, spec.metadata, data_dir)
        self.options.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = Database(self.options.path, synchronous=synchronous)
        rows, watermark = self._db.transaction_sync(create_schema)
        self._instance = uuid.uuid4().hex
        _OPEN.add(self._instance)
        self._watcher: asyncio.Task[None] | None = None
        self._refused: set[str] = set()  # topics another live process consumes for this app id
        self._groups = {
            r.topic: ConsumerGroup(r.id, r.topic, r.backlog) for r in rows if r.app_id == self.consumer
        }
        self._by_id = {group.id: group for group in self._groups.values()}
        self._writer = JournalWriter(
            self.name,
            self._db,
            self._by_id,
            watermark=watermark,
            unclaimed_retention=self.options.unclaimed_retention,
        )
        self._closed = False  # no more publishes
        for group in self._groups.values():
            if group.backlog:
                log.info(
                    "pubsub %s: %d unacknowledged message(s) kept for topic %s",
                    self.name,
                    group.backlog,
                    group.topic,
                )

    # --- consumer groups ------------------------------------------------------------------------

    def remember(self, topic: str) -> None:
        """Make `topic` (a subscription's topic pattern) a consumer group: its messages are kept from now."""
        if topic in self._groups:
            return
        gid, backlog = self._db.transaction_sync(
            functools.partial(
                register_group,
                app_id=self.consumer,
                topic=topic,
                now=time.time(),
                claims=functools.partial(topic_matches, topic),
                watermark=self._writer.watermark,
            )
        )
        if backlog:
            log.info("pubsub %s: topic %s takes %d message(s) published before it", self.name, topic, backlog)
        group = ConsumerGroup(gid, topic, backlog)
        self._groups[topic] = group
        self._by_id[gid] = group

    def attach(self, worker: DeliveryWorker) -> bool:
        """Deliver the group's messages, backlog first, to `worker` (started by the caller); False when
        another live process consumes the group."""
        self.remember(worker.topic)
        group = self._groups[worker.topic]
        if group.worker is not None:
            raise ValueError(f"pubsub {self.name}: topic {worker.topic} already has a subscriber")
        claim = functools.partial(
            claim_consumer, gid=group.id, pid=os.getpid(), instance=self._instance, live=_OPEN.alive
        )
        holder = self._db.transaction_sync(claim)
        if holder is not None:
            log.error(
                "pubsub %s: consumer %s already consumes topic %s from %s in process %d: a second replica of "
                "one app id on a shared file is not supported (it would need message leases); this sidecar "
                "does not subscribe to it",
                self.name,
                self.consumer,
                worker.topic,
                self.options.path,
                holder,
            )
            self._refused.add(worker.topic)
            return False
        if worker.sub.kind == "STREAMING":
            self._db.transaction_sync(functools.partial(mark_streamed, gid=group.id))
        group.worker = worker
        group.wake.set()
        name = f"pubsub-pager:{self.name}/{group.topic}"
        group.pager = asyncio.create_task(group.page_in(self._db, lambda: self._closed), name=name)
        self._writer.recount()  # what other processes published since the group was read
        if self._watcher is None:
            watch = watch_file(self.options.path, self.name, self._writer.seen, lambda: self._closed)
            self._watcher = asyncio.create_task(watch, name=f"pubsub-watch:{self.name}")
        return True

    async def detach(self, worker: DeliveryWorker) -> None:
        """`worker` (stopped) no longer consumes its group (a streaming subscription ended): what it did not
        acknowledge stays stored for the group's next subscriber, which starts after the committed acks."""
        group = self._groups.get(worker.topic)
        if group is None or group.worker is not worker or self._writer.finished:
            return
        group.worker = None
        pager, group.pager = group.pager, None
        if pager is not None:
            pager.cancel()
            await asyncio.gather(pager, return_exceptions=True)
        await self._writer.flush()
        group.cursor = 0
        group.caught_up = group.more = False

    def retire_unattached(self) -> None:
        """Forget the groups no subscription uses any more (the app dropped them), backlog included; a
        streaming subscription's group stays for the app's next stream."""
        kept = self._db.transaction_sync(streamed_groups)
        for group in [
            g
            for g in self._groups.values()
            if g.worker is None and g.topic not in self._refused and g.id not in kept
        ]:
            log.warning(
                "pubsub %s: the app no longer subscribes to topic %s; dropping %d undelivered message(s)",
                self.name,
                group.topic,
                group.backlog,
            )
            self._db.transaction_sync(functools.partial(delete_group, gid=group.id))
            del self._groups[group.topic]
            del self._by_id[group.id]

    # --- publish and acknowledge ----------------------------------------------------------------

    async def publish(self, topic: str, data: bytes, *, wait: bool = True) -> int:
        """Store `data` for every group of `topic`; returns once committed (how many groups).

        With no group the message is kept unclaimed for `unclaimedRetention` (with 0, dropped as
        `pubsub.in-memory` does). `wait` is accepted for the in-memory broker's signature: a publish
        never waits for a subscriber here.
        """
        if self._closed:
            raise BrokerClosed("component is closed")
        groups = await self._writer.insert(Insert(topic, data, time.time()))
        if not groups and not self.options.unclaimed_retention:
            log.debug("no subscription for topic %s on pubsub %s; message dropped", topic, self.name)
        return groups

    def acknowledge(self, messages: list[Message]) -> None:
        """The subscriber is done with `messages`: delete them (committed with the next batch)."""
        for message in messages:
            group = self._by_id.get(message.group)
            if group is None:
                continue
            group.backlog -= 1
            if group.backlog <= 0:
                group.empty.set()
            if not group.caught_up:
                group.wake.set()  # room for the next page
        self._writer.acknowledge(messages)

    # --- state ----------------------------------------------------------------------------------

    def backlog(self) -> dict[str, int]:
        """Unacknowledged messages per subscription topic, including those of subscriptions not yet loaded."""
        return {group.topic: group.backlog for group in self._groups.values()}

    def busy(self) -> bool:
        return any(group.backlog > 0 for group in self._groups.values())

    async def idle(self) -> None:
        """Wait until every subscriber being delivered to has acknowledged its backlog."""
        while busy := [g for g in self._groups.values() if g.worker is not None and g.backlog > 0]:
            for group in busy:
                await group.empty.wait()

    def discard(self) -> None:
        """Close the file of a broker that never started (the engine's construction failed)."""
        self._closed = True
        _OPEN.discard(self._instance)
        self._db.close()

    def close(self) -> None:
        """Refuse publishes; acknowledgements are still taken until `shutdown()`."""
        self._closed = True
        for group in self._groups.values():
            group.wake.set()

    async def shutdown(self) -> None:
        """After the workers stopped: commit what is left and close the file."""
        self._closed = True
        pagers = [g.pager for g in self._groups.values() if g.pager is not None]
        if self._watcher is not None:
            pagers.append(self._watcher)
        for pager in pagers:
            pager.cancel()
        await asyncio.gather(*pagers, return_exceptions=True)
        await self._writer.finish()
        if _OPEN.discard(self._instance):  # the first shutdown
            try:
                await self._db.transaction(functools.partial(release_consumer, instance=self._instance))
            except sqlite3.Error as exc:  # a dead consumer's row is taken over anyway
                log.warning("pubsub %s: cannot release its consumer rows: %s", self.name, exc)
        await asyncio.to_thread(self._db.close)
