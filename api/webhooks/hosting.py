"""The webhook parts a process opens from its settings: the address policy, the registry, the sender and
the delivery log, shared by the routes (public API) and the delivery workflow's activity (app channel)."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from dapr.ext.workflow.aio import DaprWorkflowClient

from api.middleware.metrics import ApiMetrics
from api.process.settings import Settings
from api.webhooks.delivery import DeliveryLog, DeliveryPolicy, WebhookAttempts, WebhookFanOut, ping_attempt
from api.webhooks.guard import AddressPolicy
from api.webhooks.models import Attempt
from api.webhooks.registry import WebhookRegistry
from api.webhooks.sender import WebhookSender
from todo_actors.sidecar_http import SidecarHttp

__all__ = ["LOG_MAX_ATTEMPTS", "Webhooks", "open_webhooks"]

LOG_MAX_ATTEMPTS = 1_000
"""Attempts kept in each webhook's delivery log (older ones are deleted as new ones are logged)."""


@dataclass
class Webhooks:
    policy: AddressPolicy
    registry: WebhookRegistry
    sender: WebhookSender
    log: DeliveryLog
    delivery: DeliveryPolicy
    clock: Callable[[], dt.datetime]
    http: SidecarHttp
    store: str
    status_ttl_seconds: int

    def attempts(self, metrics: ApiMetrics) -> WebhookAttempts:
        """The delivery workflow's attempt activity (for the workflow worker of the app channel)."""
        return WebhookAttempts(
            self.registry,
            self.sender,
            self.log,
            http=self.http,
            store=self.store,
            status_ttl_seconds=self.status_ttl_seconds,
            metrics=metrics,
            clock=self.clock,
        )

    def fan_out(self, workflows: DaprWorkflowClient, metrics: ApiMetrics) -> WebhookFanOut:
        """What starts the deliveries of the events the app channel records in users' feeds."""
        return WebhookFanOut(self.registry, workflows, self.delivery, metrics=metrics, clock=self.clock)

    async def ping(self, user: str, webhook_id: str) -> Attempt:
        """One signed `webhook.ping` to the webhook, now (disabled or not; failures are not counted)."""
        hook = await self.registry.get(user, webhook_id)
        now = self.clock()
        message = f"msg_ping_{uuid.uuid4().hex}"
        ping = {"type": "webhook.ping", "timestamp": now.isoformat(), "data": {"webhook_id": hook.id}}
        body = json.dumps(ping, separators=(",", ":"))
        sent = await self.sender.send(hook.url, hook.signing_secrets(now), message, body.encode(), now)
        attempt = ping_attempt(hook.id, now, sent, message)
        await self.log.record(hook.id, attempt)
        return attempt

    async def aclose(self) -> None:
        await self.sender.aclose()


def open_webhooks(settings: Settings, http: SidecarHttp, *, clock: Callable[[], dt.datetime]) -> Webhooks:
    policy = AddressPolicy(allow_private=settings.webhooks_allow_private)
    return Webhooks(
        policy=policy,
        registry=WebhookRegistry(
            http,
            settings.state_store,
            per_user=settings.webhooks_per_user,
            disable_after=settings.webhook_disable_after,
            clock=clock,
        ),
        sender=WebhookSender(policy, timeout_seconds=settings.webhook_timeout_seconds),
        log=DeliveryLog(
            http,
            settings.state_store,
            max_events=LOG_MAX_ATTEMPTS,
            seen_ttl_seconds=settings.feed_seen_ttl_seconds,
        ),
        delivery=DeliveryPolicy(max_attempts=settings.webhook_max_attempts),
        clock=clock,
        http=http,
        store=settings.state_store,
        status_ttl_seconds=settings.feed_seen_ttl_seconds,
    )
