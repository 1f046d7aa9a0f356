"""Webhook deliveries as durable workflows: one instance per (webhook, event), which makes attempts with
exponential backoff between them on durable timers (so they follow the dev clock and survive restarts).

The workflow only decides when to try again; the attempt itself (sign, send, record, count failures) is
one activity that the composition root supplies, idempotent by (delivery, attempt number).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from dapr.ext.workflow import DaprWorkflowContext, WorkflowActivityContext, WorkflowRuntime
from pydantic import BaseModel, ConfigDict, Field

from workflows.models import utc
from workflows.series import ACTIVITY_RETRY, Steps

__all__ = [
    "WEBHOOK_ATTEMPT_ACTIVITY",
    "WEBHOOK_DELIVERY_WORKFLOW",
    "AttemptInput",
    "AttemptResult",
    "DeliveryInput",
    "delivery_workflow",
    "message_id",
    "register_webhooks",
    "webhook_instance_id",
]

WEBHOOK_DELIVERY_WORKFLOW: Final = "webhook_delivery"
WEBHOOK_ATTEMPT_ACTIVITY: Final = "webhook_attempt"

Outcome = Literal["delivered", "retry", "failed", "skipped"]


def _digest(webhook_id: str, event_id: str) -> str:
    return hashlib.sha256(f"{webhook_id}\n{event_id}".encode()).hexdigest()[:32]


def message_id(webhook_id: str, event_id: str) -> str:
    """The Standard Webhooks `webhook-id` of an event's delivery to a webhook: the same on every retry."""
    return "msg_" + _digest(webhook_id, event_id)


def webhook_instance_id(webhook_id: str, event_id: str) -> str:
    """The delivery's workflow instance id: a redelivered event finds the instance its first copy started."""
    return "webhook-" + _digest(webhook_id, event_id)


class DeliveryInput(BaseModel):
    """One event to deliver to one webhook: `body` is the exact JSON sent (and signed) on every attempt."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user: str
    webhook_id: str
    message_id: str
    event_id: str
    event_type: str
    body: str
    max_attempts: int = Field(ge=1, le=50)
    first_backoff_seconds: float = Field(gt=0)
    backoff_factor: float = Field(ge=1)
    max_backoff_seconds: float = Field(gt=0)

    def backoff(self, attempt: int) -> timedelta:
        """The wait after failed attempt number `attempt` (1-based): first, first*factor, ... capped."""
        seconds = self.first_backoff_seconds * self.backoff_factor ** (attempt - 1)
        return timedelta(seconds=min(seconds, self.max_backoff_seconds))


class AttemptInput(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    delivery: DeliveryInput
    attempt: int = Field(ge=1)
    scheduled_at: datetime = Field(
        description="The workflow's time when it asked for the attempt: the attempt is not earlier (a dev "
        "clock's stepping reaches the worker only through the workflow)"
    )


class AttemptResult(BaseModel):
    """`retry`: this attempt failed and another may follow; the others end the delivery (`skipped`: the
    webhook was deleted or disabled, or the delivery had ended before, so nothing was sent)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    outcome: Outcome
    status_code: int | None = None
    error: str | None = None


def delivery_workflow(ctx: DaprWorkflowContext, given: dict[str, Any]) -> Steps:
    """Attempt, then wait `backoff(n)` on a durable timer, until an attempt ends the delivery."""
    delivery = DeliveryInput.model_validate(given)
    result = AttemptResult(outcome="skipped")
    for attempt in range(1, delivery.max_attempts + 1):
        scheduled = utc(ctx.current_utc_datetime)
        asked = AttemptInput(delivery=delivery, attempt=attempt, scheduled_at=scheduled)
        payload = asked.model_dump(mode="json")
        raw = yield ctx.call_activity(WEBHOOK_ATTEMPT_ACTIVITY, input=payload, retry_policy=ACTIVITY_RETRY)
        result = AttemptResult.model_validate(raw)
        if result.outcome != "retry":
            break
        yield ctx.create_timer(ctx.current_utc_datetime + delivery.backoff(attempt))
    return result.model_dump(mode="json")


def register_webhooks(
    runtime: WorkflowRuntime, attempt: Callable[[AttemptInput], Awaitable[AttemptResult]]
) -> None:
    """Register the delivery workflow and its attempt activity (run on the worker's event loop)."""

    def webhook_delivery(ctx: DaprWorkflowContext, payload: dict[str, Any]) -> Steps:
        return delivery_workflow(ctx, payload)

    async def webhook_attempt(ctx: WorkflowActivityContext, payload: dict[str, Any]) -> dict[str, Any]:
        result = await attempt(AttemptInput.model_validate(payload))
        return result.model_dump(mode="json")

    runtime.register_workflow(webhook_delivery, name=WEBHOOK_DELIVERY_WORKFLOW)
    runtime.register_activity(webhook_attempt, name=WEBHOOK_ATTEMPT_ACTIVITY)
