"""What moves an event to the webhooks: the fan-out (an event recorded in a user's feed starts one
delivery workflow per matching webhook of that user) and the attempt activity those workflows run
(sign, send, log the attempt, count failures), idempotent by (delivery, attempt number).

Each webhook's attempts are kept as a feed of their own (`webhook-log|<webhook id>|...`, bounded like a
user's feed), so the delivery log pages the same way the change feed does.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections.abc import Callable, Sequence

import grpc
from dapr.ext.workflow.aio import DaprWorkflowClient
from pydantic import BaseModel, ConfigDict

from api.channel.feed import Feed, FeedAppend, FeedPage, bulk_get
from api.middleware.metrics import ApiMetrics
from api.webhooks.models import Attempt, AttemptsPage, Registry, StoredWebhook
from api.webhooks.registry import WebhookRegistry, registry_key, state_path
from api.webhooks.sender import SendResult, WebhookSender
from todo_actors.sidecar_http import SidecarHttp
from workflows.webhooks import (
    WEBHOOK_DELIVERY_WORKFLOW,
    AttemptInput,
    AttemptResult,
    DeliveryInput,
    message_id,
    webhook_instance_id,
)

__all__ = [
    "DeliveryLog",
    "DeliveryPolicy",
    "WebhookAttempts",
    "WebhookFanOut",
    "event_body",
    "ping_attempt",
]

log = logging.getLogger("api.webhooks")


class DeliveryPolicy(BaseModel):
    """How hard a delivery tries: `max_attempts`, waiting `first_backoff_seconds` * `backoff_factor`^n
    (at most `max_backoff_seconds`) after failed attempt n."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_attempts: int = 8
    first_backoff_seconds: float = 10.0
    backoff_factor: float = 4.0
    max_backoff_seconds: float = 12 * 3600.0


class DeliveryLog(Feed):
    """Each webhook's attempts, oldest first, as a feed whose "user" is the webhook id."""

    def _head(self, user: str) -> str:
        return f"webhook-log|{user}|head"

    def _entry(self, user: str, cursor: int) -> str:
        return f"webhook-log|{user}|{cursor}"

    @staticmethod
    def _seen(user: str, event_id: str) -> str:  # attempts are not feed events: their own dedup keys
        return f"webhook-log-seen|{event_id}"  # the message id already names the webhook

    async def record(self, webhook_id: str, attempt: Attempt) -> None:
        """Log `attempt` once (a replayed attempt finds its entry by message id and number)."""
        await self.append(
            webhook_id,
            f"{attempt.message_id}#{attempt.attempt}",
            "webhook.attempt",
            attempt.model_dump(mode="json", exclude={"cursor"}),
            at=attempt.at,
        )

    async def attempts(self, webhook_id: str, since: int, limit: int) -> AttemptsPage:
        page: FeedPage = await self.page(webhook_id, since, limit)
        return AttemptsPage(
            attempts=[Attempt.model_validate({**e.data, "cursor": e.cursor}) for e in page.events],
            next_cursor=page.next_cursor,
            has_more=page.has_more,
        )

    async def forget(self, webhook_id: str) -> None:
        """Delete a deleted webhook's log."""
        await self.compact(webhook_id, dt.datetime.max.replace(tzinfo=dt.UTC), 0)


class _Status(BaseModel):
    """A delivery's progress (`webhook-delivery|<message id>`): the last attempt made and its result."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    attempts: int
    result: AttemptResult


def event_body(event: FeedAppend, now: dt.datetime) -> str:
    """The JSON a webhook receives for a feed event (Standard Webhooks' `type`, `timestamp`, `data`)."""
    return json.dumps(
        {
            "id": event.event_id,
            "type": event.event_type,
            "timestamp": (event.at or now).isoformat(),
            "list_id": event.list_id,
            "item_id": event.item_id,
            "data": event.data,
        },
        separators=(",", ":"),
    )


class WebhookAttempts:
    """The attempt activity of the delivery workflow (`workflows.webhooks`)."""

    def __init__(
        self,
        registry: WebhookRegistry,
        sender: WebhookSender,
        log: DeliveryLog,
        *,
        http: SidecarHttp,
        store: str,
        status_ttl_seconds: int,
        metrics: ApiMetrics,
        clock: Callable[[], dt.datetime],
    ) -> None:
        self._registry, self._sender, self._log = registry, sender, log
        self._http, self._state = http, state_path(store)
        self._ttl = str(status_ttl_seconds)
        self._metrics = metrics
        self._clock = clock

    async def __call__(self, given: AttemptInput) -> AttemptResult:
        delivery, number = given.delivery, given.attempt
        status_key = f"webhook-delivery|{delivery.message_id}"
        found = await bulk_get(self._http, self._state, [status_key, registry_key(delivery.user)])
        if status_key in found:
            status = _Status.model_validate(found[status_key][0])
            if status.attempts >= number:
                return status.result  # this attempt was made (a replayed activity): send nothing twice
            if status.result.outcome != "retry":  # a redelivered event restarted an ended delivery
                return AttemptResult(outcome="skipped", error="the delivery had ended before")
        raw = found.get(registry_key(delivery.user))
        hook = None if raw is None else Registry.model_validate(raw[0]).find(delivery.webhook_id)
        now = max(self._clock(), given.scheduled_at)
        if hook is None or not hook.enabled:
            reason = "the webhook was deleted" if hook is None else "the webhook is disabled"
            result = AttemptResult(outcome="skipped", error=reason)
            if hook is not None:
                await self._log.record(hook.id, _attempt(delivery, number, now, "skipped", None, reason))
            await self._save(status_key, number, result)
            self._metrics.count_webhook_attempt("skipped")
            return result
        sent = await self._sender.send(
            hook.url, hook.signing_secrets(now), delivery.message_id, delivery.body.encode(), now
        )
        outcome = _outcome(sent, last=number >= delivery.max_attempts)
        await self._log.record(
            hook.id, _attempt(delivery, number, now, outcome, sent.status_code, sent.error, sent.duration_ms)
        )
        result = AttemptResult(
            outcome="retry" if outcome == "retry" else "delivered" if outcome == "delivered" else "failed",
            status_code=sent.status_code,
            error=sent.error,
        )
        await self._save(status_key, number, result)
        self._metrics.count_webhook_attempt(outcome)
        if outcome != "retry":
            disabled = await self._registry.count_outcome(delivery.user, hook.id, outcome == "delivered")
            if disabled is not None:
                log.warning("webhook %s of %s disabled: %s", hook.id, delivery.user, disabled.disabled_reason)
        if outcome != "delivered":
            log.info(
                "webhook %s attempt %d of %s: %s (%s)",
                hook.id,
                number,
                delivery.message_id,
                outcome,
                sent.error,
            )
        return result

    async def _save(self, key: str, number: int, result: AttemptResult) -> None:
        value = _Status(attempts=number, result=result).model_dump(mode="json")
        body = [{"key": key, "value": value, "metadata": {"ttlInSeconds": self._ttl}}]
        await self._http.request("POST", self._state, json.dumps(body).encode())


def ping_attempt(webhook_id: str, at: dt.datetime, sent: SendResult, message: str) -> Attempt:
    """The log entry of a test ping (`message` is its `webhook-id`)."""
    return Attempt(
        message_id=message,
        event_id=message,
        event_type="webhook.ping",
        attempt=1,
        at=at,
        outcome=sent.outcome,
        status_code=sent.status_code,
        error=sent.error,
        duration_ms=sent.duration_ms,
    )


def _outcome(sent: SendResult, *, last: bool) -> str:
    if sent.outcome != "failed":
        return sent.outcome  # delivered, or refused (final: the address will not become allowed by waiting)
    return "failed" if last else "retry"


def _attempt(
    delivery: DeliveryInput,
    number: int,
    at: dt.datetime,
    outcome: str,
    status_code: int | None,
    error: str | None,
    duration_ms: float | None = None,
) -> Attempt:
    return Attempt(
        message_id=delivery.message_id,
        event_id=delivery.event_id,
        event_type=delivery.event_type,
        attempt=number,
        at=at,
        outcome=outcome,
        status_code=status_code,
        error=error,
        duration_ms=duration_ms,
    )


class WebhookFanOut:
    """Starts the delivery workflows of recorded feed events (one per event and matching webhook)."""

    def __init__(
        self,
        registry: WebhookRegistry,
        workflows: DaprWorkflowClient,
        policy: DeliveryPolicy,
        *,
        metrics: ApiMetrics,
        clock: Callable[[], dt.datetime],
    ) -> None:
        self._registry = registry
        self._workflows = workflows
        self._policy = policy
        self._metrics = metrics
        self._clock = clock

    async def __call__(self, events: Sequence[FeedAppend]) -> None:
        """Start what `events` call for; an event delivered again starts nothing new (instance ids are
        derived from webhook and event, and an ended delivery's attempt finds its status and skips)."""
        registries = await self._registry.registries({e.user for e in events})
        if not registries:
            return
        now = self._clock()
        starts = [
            self._start(hook, event, now)
            for event in events
            if event.user in registries
            for hook in registries[event.user].hooks
            if hook.enabled and event.event_type in hook.events
        ]
        await asyncio.gather(*starts)

    async def _start(self, hook: StoredWebhook, event: FeedAppend, now: dt.datetime) -> None:
        delivery = DeliveryInput(
            user=event.user,
            webhook_id=hook.id,
            message_id=message_id(hook.id, event.event_id),
            event_id=event.event_id,
            event_type=event.event_type,
            body=event_body(event, now),
            **self._policy.model_dump(),
        )
        try:
            await self._workflows.schedule_new_workflow(
                WEBHOOK_DELIVERY_WORKFLOW,
                input=delivery.model_dump(mode="json"),
                instance_id=webhook_instance_id(hook.id, event.event_id),
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.ALREADY_EXISTS:
                raise
            return
        self._metrics.count_workflow_started(WEBHOOK_DELIVERY_WORKFLOW)
