"""How the durable broker's messages move between its SQLite file and its subscribers: publishes and
acknowledgements committed in batches (one fsync for many), each consumer group's backlog counted from
those commits, and a pager per group feeding its worker from the file in order, at most `PAGE` at a time."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping

from sidecar.db import Database
from sidecar.pubsub.broker import BrokerClosed, topic_matches
from sidecar.pubsub.journal import Insert, Stored, commit_batch, load_page
from sidecar.pubsub.worker import DeliveryWorker, Message

__all__ = ["ACK_DELAY", "PAGE", "PRUNE_INTERVAL", "REFILL", "ConsumerGroup", "JournalWriter"]

log = logging.getLogger("sidecar.pubsub.durable")

PAGE = 1000  # messages of one group held in memory: queued for, or in delivery to, the app
REFILL = PAGE // 2  # page in again once the worker holds no more than this: reads in big pages
PRUNE_INTERVAL = 60.0  # seconds between deletions of expired unclaimed messages
# Acknowledgements alone are committed this much later, so most share a commit with publishes or each
# other (an ack lost in a crash only means a redelivery).
ACK_DELAY = 0.05


class ConsumerGroup:
    """One consumer group in memory: its backlog size, and the pager that feeds its worker in order."""

    def __init__(self, gid: int, topic: str, backlog: int) -> None:
        self.id = gid
        self.topic = topic
        self.backlog = backlog  # stored and not acknowledged (in memory, queued or in delivery included)
        self.worker: DeliveryWorker | None = None
        self.cursor = 0  # the highest sequence number handed to the worker
        self.caught_up = False  # nothing stored after `cursor`: a new message can go straight to the worker
        self.more = False  # stored while a page was being read
        self.wake = asyncio.Event()
        self.empty = asyncio.Event()
        if backlog == 0:
            self.empty.set()
        self.pager: asyncio.Task[None] | None = None

    def behind(self) -> None:
        """The file holds messages of this group its worker has not been given: the pager reads them."""
        self.caught_up = False
        self.more = True
        self.wake.set()

    async def page_in(self, db: Database, closed: Callable[[], bool]) -> None:
        """Feed the worker from SQLite, oldest first, keeping at most PAGE messages in memory."""
        worker = self.worker
        assert worker is not None
        while not closed():
            await self.wake.wait()
            self.wake.clear()
            while not closed():
                room = PAGE - worker.pending
                if worker.pending > REFILL:
                    break  # woken again by an acknowledgement
                self.more = False
                page = functools.partial(load_page, gid=self.id, after=self.cursor, limit=room)
                rows = await db.run(page)
                for seq, data in rows:
                    if seq <= self.cursor:
                        continue
                    if not worker.feed(Message(data, seq, self.id)):
                        return
                    self.cursor = seq
                if len(rows) < room and not self.more:
                    self.caught_up = True
                    break


class JournalWriter:
    """The one task writing a broker's file: what accumulated while the previous commit ran is committed
    together, then counted in the backlogs of `groups` (the broker's, by id, kept current by the broker)."""

    def __init__(
        self,
        name: str,
        db: Database,
        groups: Mapping[int, ConsumerGroup],
        *,
        watermark: int,
        unclaimed_retention: float,
    ) -> None:
        self.name = name
        self._db = db
        self._by_id = groups
        # the last sequence number whose messages are counted in the groups' backlogs
        self.watermark = watermark
        self._unclaimed_retention = unclaimed_retention
        self._recount = False  # other processes published after `watermark`: count with the next commit
        self._inserts: list[tuple[Insert, asyncio.Future[int]]] = []
        self._acks: list[tuple[int, int]] = []
        self._flushes: list[asyncio.Future[None]] = []  # resolved once the acks before them are committed
        self._work = asyncio.Event()
        self._published = asyncio.Event()  # a publish waits: commit the acknowledgements with it now
        self._writer: asyncio.Task[None] | None = None
        self.finished = False  # the writer flushes what is left and stops
        self._pruned = float("-inf")  # monotonic time of the last deletion of expired unclaimed messages

    async def insert(self, insert: Insert) -> int:
        """Store one published message; returns once committed (to how many groups)."""
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._inserts.append((insert, done))
        self._published.set()
        self._kick()
        return await done

    def acknowledge(self, messages: list[Message]) -> None:
        """Delete `messages` from their groups with the next commit."""
        for message in messages:
            self._acks.append((message.group, message.seq))
        self._kick()

    async def flush(self) -> None:
        """Commit the acknowledgements taken so far now, and wait for it."""
        flushed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._flushes.append(flushed)
        self._published.set()  # commit now: no need to wait for more acks to share the commit
        self._kick()
        await flushed

    def recount(self) -> None:
        """Count what other processes published since `watermark` with the next commit."""
        self._recount = True
        self._kick()

    def seen(self, last: int) -> None:
        """The shared file's last sequence number: past ours, other processes published; the writer
        counts what went to our groups and wakes their pagers."""
        if last > self.watermark:
            self.recount()

    async def finish(self) -> None:
        """Commit what is left and stop."""
        self.finished = True
        if self._writer is not None:
            self._work.set()
            await asyncio.gather(self._writer, return_exceptions=True)

    def _kick(self) -> None:
        self._work.set()
        if self._writer is None:
            self._writer = asyncio.create_task(self._write(), name=f"pubsub-writer:{self.name}")

    async def _write(self) -> None:
        """Commit what accumulated while the previous commit ran: one fsync for many publishes and acks."""
        while True:
            if not self._inserts and not self._acks and not self._recount and not self._flushes:
                if self.finished:
                    return
                await self._work.wait()
                self._work.clear()
                continue
            if not self._inserts and not self._recount and not self.finished and not self._flushes:
                # A timer, not wait_for: this runs after most deliveries, and wait_for makes a task each time.
                self._published.clear()
                timer = asyncio.get_running_loop().call_later(ACK_DELAY, self._published.set)
                await self._published.wait()
                timer.cancel()
            inserts, self._inserts = self._inserts, []
            acks, self._acks = self._acks, []
            flushes, self._flushes = self._flushes, []
            self._recount = False
            batch = [insert for insert, _ in inserts]
            expire_before = None
            if self._unclaimed_retention and time.monotonic() - self._pruned > PRUNE_INTERVAL:
                self._pruned = time.monotonic()
                expire_before = time.time() - self._unclaimed_retention
            commit = functools.partial(
                commit_batch,
                inserts=batch,
                acks=acks,
                matches=topic_matches,
                own=tuple(self._by_id),
                watermark=self.watermark,
                keep_unclaimed=bool(self._unclaimed_retention),
                expire_before=expire_before,
            )
            try:
                committed = await self._db.transaction(commit)
            except Exception as exc:
                # acknowledgements lost here only mean a redelivery after a restart
                log.error("pubsub %s: cannot store %d message(s): %s", self.name, len(batch), exc)
                for _, done in inserts:
                    if not done.done():
                        done.set_exception(BrokerClosed(f"cannot store the message: {exc}"))
                _resolve(flushes)
                continue
            self.watermark = max(self.watermark, committed.last)
            own = Counter(gid for stored in committed.stored if stored is not None for gid in stored.groups)
            for gid, added in committed.added.items():
                group = self._by_id.get(gid)
                if group is None:
                    continue
                group.backlog += added
                group.empty.clear()
                if added > own[gid]:  # another process published to it: read in order from the file
                    group.behind()
            for (insert, done), stored in zip(inserts, committed.stored, strict=True):
                if stored is not None:
                    self._stored(stored, insert.data)
                if not done.done():
                    done.set_result(len(stored.groups) if stored is not None else 0)
            _resolve(flushes)

    def _stored(self, stored: Stored, data: bytes) -> None:
        for gid in stored.groups:
            group = self._by_id.get(gid)
            if group is None or group.worker is None:
                continue
            worker = group.worker
            if group.caught_up and stored.seq > group.cursor and worker.pending < PAGE:
                if worker.feed(Message(data, stored.seq, gid)):
                    group.cursor = stored.seq
                continue
            group.behind()


def _resolve(flushes: list[asyncio.Future[None]]) -> None:
    for flushed in flushes:
        if not flushed.done():
            flushed.set_result(None)
