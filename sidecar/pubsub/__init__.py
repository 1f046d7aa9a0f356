"""Pub/sub for the embedded sidecar: `pubsub.in-memory` components with daprd's delivery semantics."""

from sidecar.pubsub.broker import BrokerSpec
from sidecar.pubsub.delivery import RetryPolicy
from sidecar.pubsub.engine import BulkEntry, PubSubEngine
from sidecar.pubsub.subscriptions import DeclarativeSubscription, SubscriptionError

__all__ = [
    "BrokerSpec",
    "BulkEntry",
    "DeclarativeSubscription",
    "PubSubEngine",
    "RetryPolicy",
    "SubscriptionError",
]
