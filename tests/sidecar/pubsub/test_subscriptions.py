"""Loading subscriptions: `/dapr/subscribe` (v1 and v2 items, errors, retries), declarative ones, how
they merge, component scopes, wildcards, and the metadata API view."""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import replace

import pytest

from sidecar.appchannel import AppChannel
from sidecar.clock import ManualClock
from sidecar.pubsub import BrokerSpec, DeclarativeSubscription, PubSubEngine, SubscriptionError
from sidecar.pubsub.subscriptions import Subscription, merge_subscriptions, parse_app_subscriptions
from tests.harness import ServedApp, bound_socket
from tests.sidecar.pubsub.apps import PUBSUB, Recorder, build_sdk_app
from tests.sidecar.pubsub.conftest import APP_ID, BOTH_TYPES, Apps, MakeSidecar


@pytest.fixture(params=BOTH_TYPES)
def broker_type(request: pytest.FixtureRequest) -> str:
    """Every test here runs on both component types."""
    return str(request.param)


async def test_metadata_lists_sdk_and_v2_subscriptions(apps: Apps, make_sidecar: MakeSidecar) -> None:
    sdk = await make_sidecar(apps.sdk)
    listed = {s["topic"]: s for s in sdk.engine.subscriptions()}
    assert listed["flaky"] == {
        "pubsubname": "pubsub",
        "topic": "flaky",
        "rules": [{"path": "/events/pubsub/flaky"}],
        "deadLetterTopic": "flaky-dlq",
        "type": "PROGRAMMATIC",
    }
    assert listed["raw"]["metadata"] == {"rawPayload": "true"}
    assert listed["custom"]["rules"] == [{"path": "/custom/orders"}]

    raw = await make_sidecar(apps.raw)
    routed = {s["topic"]: s for s in raw.engine.subscriptions()}
    assert "noroute" not in routed  # an item without any route is dropped
    assert routed["routed"]["rules"] == [
        {"match": 'event.type == "order.created"', "path": "/orders/created"},
        {
            "match": 'event.data.priority == "high" && event.source.startsWith("pub")',
            "path": "/orders/high",
        },
        {"match": "event.data.qty > 10 || has(event.data.bulk)", "path": "/orders/big"},
        {"path": "/orders/other"},
    ]
    assert routed["routed"]["metadata"] == {"team": "blue"}


def test_default_route_wins_over_v1_route_and_keys_fold_case() -> None:
    body = b"""[
      {"PubsubName": "p", "Topic": "t", "route": "/v1", "routes": {"default": "/v2"}},
      {"pubsubname": "p", "topic": "u", "route": "/only-v1", "metadata": null}
    ] trailing bytes are ignored, as by Go's json.Decoder"""
    first, second = parse_app_subscriptions(body)
    assert [r.path for r in first.rules] == ["/v2"]
    assert (second.topic, [r.path for r in second.rules]) == ("u", ["/only-v1"])


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "EOF"),
        (b'{"pubsubname": "p"}', "not a JSON array"),
        (b'[{"pubsubname": "p", "topic": 5, "route": "/x"}]', "expected a string"),
        (
            b'[{"pubsubname":"p","topic":"t","routes":{"rules":[{"match":"event.n + 1 > 2","path":"/x"}]}}]',
            r"arithmetic operator '\+' is not supported",
        ),
        (
            b'[{"pubsubname":"p","topic":"t","routes":{"rules":[{"match":"event.type ==","path":"/x"}]}}]',
            "invalid routing rule",
        ),
        (
            b'[{"pubsubname":"p","topic":"t","route":"/x","bulkSubscribe":{"enabled":true,"maxMessagesCount":-1}}]',
            "maxMessagesCount must not be negative",
        ),
    ],
)
def test_unusable_subscription_lists_fail_loudly(body: bytes, reason: str) -> None:
    with pytest.raises(SubscriptionError, match=reason):
        parse_app_subscriptions(body)


async def test_unsupported_rule_fails_the_load_but_keeps_declarative_ones(
    apps: Apps, make_sidecar: MakeSidecar, caplog: pytest.LogCaptureFixture
) -> None:
    apps.raw_app.subscribe_body = [
        {
            "pubsubname": PUBSUB,
            "topic": "app-topic",
            "routes": {"rules": [{"match": "event.data.tags.exists(t, t == 'a')", "path": "/a"}]},
        }
    ]
    decl = DeclarativeSubscription("d", PUBSUB, "decl-topic", routes={"default": "/decl"})
    sc = await make_sidecar(apps.raw, declarative=[decl], load=False)
    with caplog.at_level(logging.ERROR), pytest.raises(SubscriptionError, match="'exists'"):
        await sc.engine.load_subscriptions()
    assert any("failed to subscribe to topics" in r.getMessage() for r in caplog.records)
    await sc.publish("app-topic", b"x")
    await sc.publish("decl-topic", b"y")
    await sc.engine.idle()
    assert [d.path for d in apps.raw_recorder.deliveries] == ["/decl"]


@pytest.mark.parametrize("status", [404, 500])
async def test_non_200_subscribe_reply_means_no_subscriptions(
    apps: Apps, make_sidecar: MakeSidecar, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    apps.raw_app.subscribe_status = status
    with caplog.at_level(logging.DEBUG, logger="sidecar.pubsub"):
        sc = await make_sidecar(apps.raw)
    assert sc.engine.subscriptions() == []
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert bool(errors) is (status == 500)


async def test_subscribe_is_retried_until_the_app_listens(make_sidecar: MakeSidecar) -> None:
    sock = bound_socket()  # bound, not yet listening: connections are refused
    app = ServedApp(build_sdk_app(Recorder()), sock)
    sc = await make_sidecar(sock.getsockname()[1], load=False, init_retry_delays=(0.2, 0.2, 0.2))
    starter = threading.Timer(0.1, app.start)
    starter.start()
    try:
        await sc.engine.load_subscriptions()
        assert {s["topic"] for s in sc.engine.subscriptions()} >= {"orders", "flaky"}
    finally:
        starter.join()
        await asyncio.to_thread(app.stop)


async def test_unreachable_app_gives_up_after_the_init_retries(
    make_sidecar: MakeSidecar, caplog: pytest.LogCaptureFixture
) -> None:
    sock = bound_socket()
    sc = await make_sidecar(sock.getsockname()[1], load=False, init_retry_delays=(0.01, 0.02))
    with caplog.at_level(logging.ERROR):
        await sc.engine.load_subscriptions()
    assert sc.engine.subscriptions() == []
    assert any("error getting topic list from app" in r.getMessage() for r in caplog.records)
    sock.close()


async def test_declarative_subscriptions_route_scope_and_yield_to_the_app(
    apps: Apps, make_sidecar: MakeSidecar
) -> None:
    declarative = [
        DeclarativeSubscription(
            "decl",
            PUBSUB,
            "decl",
            routes={"rules": [{"match": 'event.type == "a"', "path": "/decl/a"}], "default": "/d"},
            dead_letter_topic=None,
            metadata={"k": "v"},
        ),
        DeclarativeSubscription("other-app", PUBSUB, "scoped-out", {"default": "/x"}, scopes=["x"]),
        DeclarativeSubscription("mine", PUBSUB, "scoped-in", {"default": "/in"}, scopes=[APP_ID]),
        # the app also subscribes to "routed": its programmatic subscription replaces this one
        DeclarativeSubscription("shadowed", PUBSUB, "routed", {"default": "/shadowed"}),
        DeclarativeSubscription("wild", PUBSUB, "events/*", {"default": "/wild"}),
    ]
    sc = await make_sidecar(apps.raw, declarative=declarative)
    listed = {s["topic"]: s for s in sc.engine.subscriptions()}
    assert "scoped-out" not in listed
    assert listed["decl"]["type"] == "DECLARATIVE" and listed["decl"]["metadata"] == {"k": "v"}
    assert listed["routed"]["type"] == "PROGRAMMATIC"

    await sc.publish("decl", b"1", metadata={"cloudevent.type": "a"})
    await sc.publish("decl", b"2")
    await sc.publish("scoped-out", b"3")
    await sc.publish("scoped-in", b"4")
    await sc.publish("routed", b"5", metadata={"cloudevent.type": "order.created"})
    await sc.publish("events/created", b"6")
    await sc.publish("events/", b"7")  # the wildcard needs more than its prefix
    await sc.engine.idle()
    got = [(d.path, d.event["data"]) for d in apps.raw_recorder.deliveries]
    assert sorted(got) == sorted(
        [("/decl/a", "1"), ("/d", "2"), ("/in", "4"), ("/orders/created", "5"), ("/wild", "6")]
    )


async def test_component_scopes_limit_subscriptions(apps: Apps, make_sidecar: MakeSidecar) -> None:
    spec = BrokerSpec(
        PUBSUB,
        "pubsub.in-memory",
        metadata={"subscriptionScopes": f"{APP_ID}=orders", "protectedTopics": "flaky"},
    )
    sc = await make_sidecar(apps.sdk, brokers=[spec])
    for topic in ("orders", "nodlq"):
        assert (await sc.publish(topic, topic)).status_code == 204
    # a protected topic needs an explicit publishing scope too
    assert (await sc.publish("flaky", b"x")).status_code == 403
    await sc.engine.idle()
    assert [d.event["data"] for d in apps.sdk_recorder.deliveries] == ["orders"]


def test_unsupported_components_are_rejected() -> None:
    channel = AppChannel("127.0.0.1", None)
    with pytest.raises(ValueError, match="implements only pubsub.embedded.sqlite, pubsub.in-memory"):
        PubSubEngine([BrokerSpec("p", "pubsub.redis")], APP_ID, channel, ManualClock())
    bad_rule = DeclarativeSubscription("d", "p", "t", {"rules": [{"match": "x == 1", "path": "/"}]})
    with pytest.raises(SubscriptionError, match="undeclared reference to 'x'"):
        PubSubEngine(
            [BrokerSpec("p", "pubsub.in-memory")], APP_ID, channel, ManualClock(), declarative=[bad_rule]
        )


def test_merge_keeps_first_declarative_and_last_programmatic() -> None:
    def subs(body: str) -> list[Subscription]:
        return parse_app_subscriptions(body.encode())

    programmatic = subs(
        '[{"pubsubname":"p","topic":"t","route":"/p1"},{"pubsubname":"p","topic":"t","route":"/p2"},'
        '{"pubsubname":"q","topic":"t","route":"/q"}]'
    )
    declarative = [
        replace(s, kind="DECLARATIVE")
        for s in subs(
            '[{"pubsubname":"p","topic":"t","route":"/d1"},{"pubsubname":"p","topic":"t","route":"/d2"},'
            '{"pubsubname":"p","topic":"u","route":"/d3"}]'
        )
    ]
    merged = merge_subscriptions(declarative, programmatic)
    assert [(s.pubsubname, s.topic, s.rules[0].path, s.kind) for s in merged] == [
        ("p", "t", "/p2", "PROGRAMMATIC"),
        ("p", "u", "/d3", "DECLARATIVE"),
        ("q", "t", "/q", "PROGRAMMATIC"),
    ]
