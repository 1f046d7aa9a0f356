"""Pub/sub for the embedded sidecar with daprd's delivery semantics: `pubsub.embedded.sqlite` (durable,
the default) and `pubsub.in-memory` components."""

from sidecar.pubsub.broker import BrokerSpec
from sidecar.pubsub.engine import BulkEntry, PubSubEngine
from sidecar.pubsub.retry import RetryPolicy
from sidecar.pubsub.subscriptions import DeclarativeSubscription, SubscriptionError

__all__ = [
    "BrokerSpec",
    "BulkEntry",
    "DeclarativeSubscription",
    "PubSubEngine",
    "RetryPolicy",
    "SubscriptionError",
]
