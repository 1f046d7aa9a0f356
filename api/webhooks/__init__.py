"""Signed webhooks (Standard Webhooks): each user's registrations, the fan-out of feed events to them,
and delivery as durable workflows with retries, under an address guard against SSRF."""

from __future__ import annotations

from api.webhooks.delivery import DeliveryLog, DeliveryPolicy, WebhookAttempts, WebhookFanOut
from api.webhooks.guard import AddressPolicy, RefusedTarget
from api.webhooks.hosting import Webhooks, open_webhooks
from api.webhooks.registry import WebhookRegistry

__all__ = [
    "AddressPolicy",
    "DeliveryLog",
    "DeliveryPolicy",
    "RefusedTarget",
    "WebhookAttempts",
    "WebhookFanOut",
    "WebhookRegistry",
    "Webhooks",
    "open_webhooks",
]
