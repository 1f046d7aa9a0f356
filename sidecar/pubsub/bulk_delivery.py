"""Bulk subscriptions (`bulkSubscribe`): daprd's default bulk subscriber and its bulk delivery contract
(1.16 `bulksubscription.go`, `postman/{http,grpc}` `DeliverBulk`), so an app handles many events per request.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from collections import Counter
from typing import Any

from sidecar import gojson
from sidecar.pubsub.delivery import trace_headers
from sidecar.pubsub.retry import CHANNEL_ERRORS, app_unreachable
from sidecar.pubsub.subscriptions import BulkSubscribe
from sidecar.pubsub.transports import BULK_EVENT_TYPE, read_bulk_statuses
from sidecar.pubsub.worker import DeliveryWorker, Message

__all__ = ["BULK_EVENT_TYPE", "BulkSubscriptionWorker", "read_bulk_statuses"]

log = logging.getLogger("sidecar.pubsub.bulk_delivery")


class _Entry:
    """One message of a batch on its way to the app: `encoded` is its entry as the transport sends it."""

    __slots__ = ("data", "encoded", "entry_id", "event_id", "trace")

    def __init__(
        self, entry_id: str, data: bytes, event_id: Any, encoded: Any, trace: dict[str, str]
    ) -> None:
        self.entry_id = entry_id
        self.data = data  # the broker bytes, what a dead letter carries
        self.event_id = event_id
        self.encoded = encoded
        self.trace = trace


class BulkSubscriptionWorker(DeliveryWorker):
    """Delivers one bulk subscription's messages in batches, one request per route path at a time.

    A batch is delivered when it holds `maxMessagesCount` messages or `maxAwaitDurationMs` after its first
    message; the window is real (event loop) time, not the injected `Clock`, like the retry delays. Our
    broker queues messages, so a batch takes what is queued and waits out the window for more; messages
    queued while a batch is in flight start the next one. (daprd's in-memory component hands over one
    message at a time and waits for its batch, so there every batch holds one message after the window.)

    Deliberate deviations, as in `delivery`: failed entries are retried per `RetryPolicy`, only those (as
    daprd's resiliency accumulator does), each attempt with a new envelope id (daprd's resiliency runner
    resends the same id, its component-level redelivery makes new ones); then each is dead-lettered or
    dropped with an error log. Status entry ids not in the request are ignored with a warning (daprd
    accepts any id of the whole batch). On stop, the pending batch is delivered at once, without retries.
    """

    # What the subscription's bulk settings and rules imply, read once from `self.sub` (the base class's
    # constructor takes everything else).
    @functools.cached_property
    def _max_messages(self) -> int:
        return (self.sub.bulk_subscribe or BulkSubscribe()).max_messages

    @functools.cached_property
    def _window(self) -> float:
        return (self.sub.bulk_subscribe or BulkSubscribe()).max_await_ms / 1000

    @functools.cached_property
    def _rules_read_event(self) -> bool:
        # the CEL evaluator must see daprd's float64 numbers, not the ints the fast decoder keeps
        return any(rule.expression is not None for rule in self.sub.rules)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._closing.is_set():
            first = await self._next()
            if first is None:
                return
            batch = [first]
            deadline = loop.time() + self._window
            while True:
                self._drain(batch)
                remaining = deadline - loop.time()
                if len(batch) >= self._max_messages or remaining <= 0 or self._closing.is_set():
                    break
                message = await self._next(remaining)
                if message is None:
                    break
                batch.append(message)
            try:
                await self._deliver_batch([message.data for message in batch])
            except Exception:
                log.exception("unexpected error delivering a batch of messages on topic %s", self.topic)
            finally:
                self._settled(batch)

    def _drain(self, batch: list[Message]) -> None:
        while len(batch) < self._max_messages:
            try:
                batch.append(self._queue.get_nowait())
            except asyncio.QueueEmpty:
                return

    async def _deliver_batch(self, batch: list[bytes]) -> None:
        by_path: dict[str, list[_Entry]] = {}
        for data in batch:
            prepared = await self._prepare(data)
            if prepared is not None:
                by_path.setdefault(prepared[0], []).append(prepared[1])
        for path, entries in by_path.items():
            await self._deliver(path, entries)

    async def _prepare(self, data: bytes) -> tuple[str, _Entry] | None:
        """The route path and entry for one message, or None when it is not delivered (handled here)."""
        if self._metadata_error:
            await self._give_up(data, None, self._metadata_error)
            return None
        if self._raw:
            # daprd matches the rules against the payload as a string and sends it as base64
            path = await self._route(data, data.decode("utf-8", errors="replace"), None, {})
            event_id: Any = None
            event: dict[str, Any] | None = None
            exact = False
            trace: dict[str, str] = {}
        else:
            try:
                parsed, exact = gojson.loads_float64_exact(data)
            except ValueError as exc:
                parsed, exact, error = None, False, str(exc)
            else:
                error = "the message is not a JSON object"
            if not await self._cloud_event(data, parsed, error):
                return None
            event = parsed
            event_id = parsed.get("id")
            routed = gojson.as_float64(parsed) if exact and self._rules_read_event else parsed
            path = await self._route(data, routed, event_id, parsed)
            trace = trace_headers(parsed)
        if path is None:
            return None
        entry_id = str(uuid.uuid4())
        encoded = self._transport.bulk_entry(entry_id, data, event, exact)
        return path, _Entry(entry_id, data, event_id, encoded, trace)

    async def _deliver(self, path: str, entries: list[_Entry]) -> None:
        delays = self._retry.delays()
        down_delays = self._retry.down_delays()
        reason = ""
        attempt = 0
        while attempt < self._retry.attempts:
            if not await self._app_healthy():
                return  # shutting down: kept for redelivery
            attempt += 1
            sent = len(entries)
            entries, reason, down = await self._post(path, entries)
            if not entries:
                return
            if down and self._wait_for_app:
                log.debug("app unreachable for %d pub/sub event(s) on %s: %s", sent, self.topic, reason)
                attempt -= 1
                if await self._channel_down(down_delays):
                    continue
                return  # shutting down: kept for redelivery
            down_delays = self._retry.down_delays()
            log.warning(
                "retriable failure %d/%d delivering %d of %d pub/sub event(s) on topic %s to %s: %s",
                attempt,
                self._retry.attempts,
                len(entries),
                sent,
                self.topic,
                path,
                reason,
            )
            if not await self._retry_wait(delays):
                if self._closing.is_set():
                    return  # shutting down: daprd does not dead-letter on shutdown either
                break
        for entry in entries:
            await self._give_up(
                entry.data, entry.event_id, f"{self._retry.attempts} attempts failed; last: {reason}"
            )

    async def _post(self, path: str, entries: list[_Entry]) -> tuple[list[_Entry], str, bool]:
        """One bulk request; returns the entries that failed, why, and whether the app was unreachable."""
        # daprd starts a span per entry, each a child of the previous context: the last one is sent
        trace = next((entry.trace for entry in reversed(entries) if entry.trace), {})
        try:
            reply = await self._retry.bounded(
                self._transport.deliver_bulk(path, [entry.encoded for entry in entries], trace)
            )
        except CHANNEL_ERRORS as exc:
            return entries, f"error from app channel: {type(exc).__name__}: {exc}", app_unreachable(exc)
        if reply.statuses is not None:
            failed, reason = await self._read_reply(entries, reply.statuses)
            return failed, reason, False
        if reply.dropped:
            log.error(
                "non-retriable error returned from app while processing bulk pub/sub event on topic %s "
                "(%s): dropping %d event(s)",
                self.topic,
                reply.error,
                len(entries),
            )
            return [], "", False
        return entries, reply.error, False

    async def _read_reply(
        self, entries: list[_Entry], pairs: list[tuple[str, str]]
    ) -> tuple[list[_Entry], str]:
        by_id = {entry.entry_id: entry for entry in entries}
        statuses: dict[str, str] = {}
        for entry_id, status in pairs:
            if entry_id in by_id:
                statuses[entry_id] = status  # the last status for an entry counts, as in daprd
            else:
                log.warning("invalid entry id %r received from app on topic %s", entry_id, self.topic)
        failed: list[_Entry] = []
        why: Counter[str] = Counter()
        for entry in entries:
            reply = statuses.get(entry.entry_id)
            if reply == "SUCCESS":
                continue
            if reply == "DROP":
                log.warning(
                    "DROP status returned from app while processing pub/sub event %s (entry %s)",
                    entry.event_id,
                    entry.entry_id,
                )
                await self._dropped(entry.data, entry.event_id, "DROP status returned from app")
                continue
            failed.append(entry)
            if reply is None:
                why["no status returned"] += 1
            elif reply in ("", "RETRY"):
                why["RETRY status returned"] += 1
            else:
                why[f"unknown status {reply!r} returned"] += 1
        return failed, ", ".join(f"{kind} for {count} entries" for kind, count in why.items())
