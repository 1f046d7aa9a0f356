"""Serial delivery of one subscription's messages with daprd's app response contract (1.16 postman/http),
and that contract's reply and trace-header reading, which the transports share.

Deliberate deviation: daprd without a resiliency policy dead-letters on the first failure, or, with no
dead-letter topic, the in-memory component re-invokes 10 times at 100 ms (1.14-1.16) or drops (1.17+).
We retry retriable failures per `RetryPolicy` (5 attempts, 100 ms doubling to 2 s, real time), then
dead-letter, or drop with an error log. Deterministic failures (bad envelope, rule error) are not retried.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from typing import Any

from sidecar import gojson
from sidecar.pubsub.cloudevents import TRACEPARENT, raw_payload_envelope
from sidecar.pubsub.retry import CHANNEL_ERRORS, app_unreachable
from sidecar.pubsub.worker import DeliveryWorker

__all__ = ["Outcome", "SubscriptionWorker", "classify_reply", "trace_headers"]

log = logging.getLogger("sidecar.pubsub.delivery")


class Outcome(enum.Enum):
    SUCCESS = "success"
    RETRY = "retry"
    DROP = "drop"  # the app said DROP: dead-letter if configured
    NOT_FOUND = "not-found"  # 404: drop without dead-lettering


def classify_reply(status: int, body: bytes) -> tuple[Outcome, str]:
    """The app's reply as daprd reads it (Go decodes `{"status": ...}` case-insensitively by key)."""
    if 200 <= status <= 299:
        try:
            reply = gojson.decode_first(body)
        except ValueError:
            return Outcome.SUCCESS, "no status in reply"
        reply_status = ""
        if isinstance(reply, dict):
            for key, value in reply.items():
                if key.lower() != "status" or value is None:
                    continue
                if not isinstance(value, str):  # a Go decode error: status check skipped
                    return Outcome.SUCCESS, "unparseable status"
                reply_status = value
        if reply_status in ("", "SUCCESS"):
            return Outcome.SUCCESS, "SUCCESS"
        if reply_status == "DROP":
            return Outcome.DROP, "DROP status returned from app"
        if reply_status == "RETRY":
            return Outcome.RETRY, "RETRY status returned from app"
        return Outcome.RETRY, f"unknown status returned from app: {reply_status}"
    if status == 404:
        return Outcome.NOT_FOUND, f"non-retriable error returned from app: {body[:200]!r} (404)"
    return Outcome.RETRY, f"retriable error returned from app: {body[:200]!r} ({status})"


def trace_headers(event: Mapping[str, Any]) -> dict[str, str]:
    """`traceparent` (else `traceid`) and `tracestate` of a CloudEvent, when valid, as request headers."""
    trace = event.get("traceparent") if event.get("traceparent") is not None else event.get("traceid")
    if not isinstance(trace, str) or not TRACEPARENT.fullmatch(trace):
        return {}
    headers = {"traceparent": trace}
    state = event.get("tracestate")
    if isinstance(state, str) and state and state.isascii() and state.isprintable():
        headers["tracestate"] = state
    return headers


class SubscriptionWorker(DeliveryWorker):
    """Delivers one subscription's messages one at a time, in order."""

    async def _run(self) -> None:
        while not self._closing.is_set():
            message = await self._next()
            if message is None:
                return
            try:
                await self._process(message.data)
            except Exception:
                log.exception("unexpected error delivering a message on topic %s", self.topic)
            finally:
                self._settled([message])

    async def _process(self, data: bytes) -> None:
        sub = self.sub
        if self._metadata_error:
            await self._give_up(data, None, self._metadata_error)
            return
        if self._raw:
            event = raw_payload_envelope(data, pubsub=sub.pubsubname, topic=self.topic)
            body = gojson.dumps(event)
        else:
            try:
                parsed = gojson.loads_float64(data)
            except ValueError as exc:
                parsed, error = None, str(exc)
            else:
                error = "the message is not a JSON object"
            if not await self._cloud_event(data, parsed, error):
                return
            event, body = parsed, data
        event_id = event.get("id")
        path = await self._route(data, event, event_id, event)
        if path is not None:
            await self._deliver(path, body, data, event)

    async def _deliver(self, path: str, body: bytes, data: bytes, event: dict[str, Any]) -> None:
        event_id = event.get("id")
        delays = self._retry.delays()
        down_delays = self._retry.down_delays()
        reason = ""
        attempt = 0
        while attempt < self._retry.attempts:
            if not await self._app_healthy():
                return  # shutting down: kept for redelivery
            attempt += 1
            try:
                outcome, reason = await self._retry.bounded(self._transport.deliver(path, body, event))
            except CHANNEL_ERRORS as exc:
                outcome, reason = Outcome.RETRY, f"error from app channel: {type(exc).__name__}: {exc}"
                if self._wait_for_app and app_unreachable(exc):
                    log.debug("app unreachable for pub/sub event %s on %s: %s", event_id, self.topic, reason)
                    attempt -= 1
                    if await self._channel_down(down_delays):
                        continue
                    return  # shutting down: kept for redelivery
            down_delays = self._retry.down_delays()
            if outcome is Outcome.SUCCESS:
                return
            if outcome is Outcome.NOT_FOUND:
                log.error("pub/sub event %s on topic %s: %s", event_id, self.topic, reason)
                return
            if outcome is Outcome.DROP:
                log.warning("DROP status returned from app while processing pub/sub event %s", event_id)
                await self._dropped(data, event_id, reason)
                return
            log.warning(
                "retriable failure %d/%d delivering pub/sub event %s on topic %s: %s",
                attempt,
                self._retry.attempts,
                event_id,
                self.topic,
                reason,
            )
            if not await self._retry_wait(delays):
                if self._closing.is_set():
                    return  # shutting down: daprd does not dead-letter on shutdown either
                break
        await self._give_up(data, event_id, f"{self._retry.attempts} attempts failed; last: {reason}")
