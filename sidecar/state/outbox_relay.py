"""Hands committed outbox events to the pub/sub engine, in commit order, until each is accepted.

A record leaves the outbox only after the engine accepted it, so a crash between commit and publish
republishes it (same CloudEvent id) after restart: at-least-once. Records are read from the store in small
batches, so memory stays bounded however many wait; a failing publish is retried with capped backoff on the
sidecar's clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Protocol

from sidecar.clock import Clock
from sidecar.errors import DaprError
from sidecar.state.store import OutboxLog, OutboxRecord

__all__ = ["OutboxRelay", "Publisher"]

log = logging.getLogger("sidecar.state.outbox")

# The event is a finished CloudEvent: the engine must not wrap it again (daprd's second phase publishes
# the bytes to the component as they are).
_AS_IS = {"rawPayload": "true"}


class Publisher(Protocol):
    """`PubSubEngine.publish`."""

    async def publish(
        self,
        pubsub: str,
        topic: str,
        data: bytes,
        content_type: str | None,
        metadata: Mapping[str, str],
        *,
        traceparent: str = "",
        tracestate: str = "",
    ) -> None: ...


class OutboxRelay:
    """The relay of one outbox-enabled state store. `start()`/`stop()` follow the sidecar's lifecycle;
    `open()` lets it publish (once the app's subscriptions are loaded, else the broker drops events).

    `held=True` never publishes: tests use it to stop a sidecar between commit and publish.
    """

    def __init__(
        self,
        store_name: str,
        outbox: OutboxLog,
        publisher: Publisher,
        clock: Clock,
        *,
        held: bool = False,
        batch: int = 64,
        initial_backoff: float = 0.1,
        max_backoff: float = 10.0,
    ) -> None:
        self.store_name = store_name
        self._outbox = outbox
        self._publisher = publisher
        self._clock = clock
        self._held = held
        self._batch = batch
        self._initial_backoff = initial_backoff
        self._max_backoff = max_backoff
        self._pending = 0  # records committed (or being committed) and not yet accepted by the engine
        self._wake = asyncio.Event()
        self._open = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.published = 0

    def busy(self) -> bool:
        """Whether any outbox record has not been handed to the broker yet (cheap, no I/O)."""
        return self._pending > 0

    def expect(self, count: int) -> None:
        """`count` records are about to commit (negative: the commit failed); counted before the commit
        so `busy()` never reports quiet while a transaction with events is under way."""
        self._pending += count

    def notify(self) -> None:
        """Records were committed: look for them now."""
        self._wake.set()

    async def start(self) -> None:
        self._pending += await self._outbox.outbox_count()
        if self._pending:
            log.info(
                "outbox of %s: %d event(s) from before the restart to publish", self.store_name, self._pending
            )
        self._task = asyncio.create_task(self._run(), name=f"outbox-relay:{self.store_name}")

    def open(self) -> None:
        if not self._held:
            self._open.set()

    async def stop(self) -> None:
        """Stop relaying; records not yet accepted stay in the outbox for the next start."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        await self._open.wait()
        backoff = self._initial_backoff
        while True:
            self._wake.clear()  # before reading: a commit after the read sets it again
            records = await self._outbox.outbox_pending(self._batch)
            if not records:
                await self._wake.wait()
                continue
            for record in records:
                if not await self._relay(record):
                    await self._clock.wait_until(self._clock.now() + backoff)
                    backoff = min(backoff * 2, self._max_backoff)
                    break
                backoff = self._initial_backoff

    async def _relay(self, record: OutboxRecord) -> bool:
        """Publish one record and remove it; False when it must be retried later."""
        try:
            await self._publisher.publish(
                record.pubsub, record.topic, record.data, record.content_type, _AS_IS
            )
        except DaprError as exc:
            if exc.http_status >= 500:
                log.warning("outbox event %s not published yet, retrying: %s", record.event_id, exc.message)
                return False
            # A refusal that no retry changes (pubsub gone, topic not allowed): daprd drops it too.
            log.error(
                "outbox event %s to %s/%s dropped: %s",
                record.event_id,
                record.pubsub,
                record.topic,
                exc.message,
            )
        except Exception:
            log.exception("outbox event %s not published yet, retrying", record.event_id)
            return False
        else:
            self.published += 1
        try:
            await self._outbox.outbox_remove(record.seq)
        except Exception:
            log.exception(
                "outbox event %s published but not removed; it will be published again", record.event_id
            )
            return False
        self._pending -= 1
        return True
