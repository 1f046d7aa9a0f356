"""How `bulkSubscribe` is read: from the app's `/dapr/subscribe` answer (daprd's defaults, unusable values
failing loudly, absent vs empty metadata) and from declarative subscriptions. No app runs here; the
deliveries these settings shape are in `test_bulk_delivery.py`."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sidecar.appchannel import AppChannel
from sidecar.clock import ManualClock
from sidecar.pubsub import BrokerSpec, DeclarativeSubscription, PubSubEngine, SubscriptionError
from sidecar.pubsub.subscriptions import BulkSubscribe, from_declarative, parse_app_subscriptions
from tests.sidecar.pubsub.apps import PUBSUB
from tests.sidecar.pubsub.conftest import APP_ID


def _item(bulk: Any, **extra: Any) -> bytes:
    return json.dumps(
        [{"pubsubname": "p", "topic": "t", "route": "/x", "bulkSubscribe": bulk, **extra}]
    ).encode()


@pytest.mark.parametrize(
    ("bulk", "expected"),
    [
        ({"enabled": True}, BulkSubscribe(100, 1000)),
        ({"enabled": True, "maxMessagesCount": 0, "maxAwaitDurationMs": 0}, BulkSubscribe(100, 1000)),
        ({"Enabled": True, "MAXMESSAGESCOUNT": 7, "maxAwaitDurationMs": None}, BulkSubscribe(7, 1000)),
        ({"enabled": True, "maxMessagesCount": 5, "maxAwaitDurationMs": 20}, BulkSubscribe(5, 20)),
        ({"enabled": False, "maxMessagesCount": 5}, None),
        ({"enabled": False, "maxMessagesCount": -5}, None),  # not used, so not checked
        (None, None),
    ],
)
def test_programmatic_bulk_settings_take_daprd_defaults(bulk: Any, expected: BulkSubscribe | None) -> None:
    [sub] = parse_app_subscriptions(_item(bulk))
    assert sub.bulk_subscribe == expected


@pytest.mark.parametrize(
    ("bulk", "reason"),
    [
        ({"enabled": True, "maxMessagesCount": -1}, r"maxMessagesCount must not be negative, got -1"),
        ({"enabled": True, "maxAwaitDurationMs": -10}, r"maxAwaitDurationMs must not be negative, got -10"),
        ({"enabled": True, "maxMessagesCount": 2.5}, r"maxMessagesCount: expected an integer"),
        ({"enabled": True, "maxMessagesCount": "5"}, r"maxMessagesCount: expected an integer"),
        ({"enabled": True, "maxAwaitDurationMs": 2**31}, r"does not fit in an int32"),
        ({"enabled": "true"}, r"enabled: expected true or false"),
        ([], r"bulkSubscribe: expected a JSON object"),
    ],
)
def test_unusable_bulk_settings_fail_loudly(bulk: Any, reason: str) -> None:
    with pytest.raises(SubscriptionError, match=reason):
        parse_app_subscriptions(_item(bulk))


def test_missing_metadata_is_kept_apart_from_empty_metadata() -> None:
    on = {"enabled": True}
    [absent] = parse_app_subscriptions(_item(on))
    [empty] = parse_app_subscriptions(_item(on, metadata={}))
    assert absent.metadata_null and not empty.metadata_null


def test_declarative_bulk_settings() -> None:
    def decl(bulk: Any) -> DeclarativeSubscription:
        return DeclarativeSubscription("d", PUBSUB, "t", routes={"default": "/d"}, bulk_subscribe=bulk)

    sub = from_declarative(decl({"enabled": True, "maxMessagesCount": 2}), APP_ID)
    assert sub is not None and sub.bulk_subscribe == BulkSubscribe(2, 1000) and sub.metadata_null
    plain = from_declarative(decl(None), APP_ID)
    assert plain is not None and plain.bulk_subscribe is None
    channel = AppChannel("127.0.0.1", None)
    with pytest.raises(SubscriptionError, match="subscription 'd'.*maxAwaitDurationMs must not be negative"):
        PubSubEngine(
            [BrokerSpec(PUBSUB, "pubsub.in-memory")],
            APP_ID,
            channel,
            ManualClock(),
            declarative=[decl({"enabled": True, "maxAwaitDurationMs": -1})],
        )
