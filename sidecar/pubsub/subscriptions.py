"""Subscriptions from the app (`GET /dapr/subscribe` or gRPC `ListTopicSubscriptions`: daprd 1.16
`GetSubscriptionsHTTP`, `GetSubscriptionsGRPC`) and from resources, merged as daprd does; unlike daprd,
an unusable rule or `bulkSubscribe` setting fails loudly.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import grpc

from sidecar import gojson
from sidecar.appchannel import AppChannel, ChannelBase
from sidecar.appchannel_grpc import AppCallError, GrpcAppChannel
from sidecar.pubsub.routing import CelError, Rule, compile_rule

__all__ = [
    "BulkSubscribe",
    "DeclarativeSubscription",
    "Subscription",
    "SubscriptionError",
    "fetch_app_subscriptions",
    "from_declarative",
    "merge_subscriptions",
    "parse_app_subscriptions",
    "parse_grpc_subscriptions",
]

log = logging.getLogger("sidecar.pubsub.subscriptions")

Kind = Literal["PROGRAMMATIC", "DECLARATIVE", "STREAMING"]

# daprd's built-in initialization retries for `/dapr/subscribe`: 3 retries, exponential from 500 ms.
INIT_RETRY_DELAYS: tuple[float, ...] = (0.5, 1.0, 2.0)

# daprd's default bulk subscriber (`default_bulksub.go`) when a setting is 0 or missing
DEFAULT_MAX_MESSAGES = 100
DEFAULT_MAX_AWAIT_MS = 1000
_INT32_MAX = 2**31 - 1


class SubscriptionError(ValueError):
    """A subscription the sidecar cannot honour (bad JSON, bad or unsupported rule or bulk setting)."""


@dataclass(frozen=True)
class BulkSubscribe:
    """`bulkSubscribe` of an enabled bulk subscription, daprd's defaults applied: a batch is delivered
    when it holds `max_messages` messages or `max_await_ms` after its first message."""

    max_messages: int = DEFAULT_MAX_MESSAGES
    max_await_ms: int = DEFAULT_MAX_AWAIT_MS


@dataclass(frozen=True)
class DeclarativeSubscription:
    """A `Subscription` resource from the resources path (v1alpha1 already converted to v2alpha1).

    `routes` has the shape of a `/dapr/subscribe` item's: `{"rules": [{"match", "path"}], "default"}`.
    """

    name: str
    pubsubname: str
    topic: str
    routes: Mapping[str, Any] = field(default_factory=dict)
    dead_letter_topic: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    scopes: Sequence[str] = ()
    # the resource's `spec.bulkSubscribe` as read (`{"enabled", "maxMessagesCount", "maxAwaitDurationMs"}`)
    bulk_subscribe: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Subscription:
    """A subscription as the delivery side uses it; `rules` end with the default route if any.

    `bulk_subscribe` is set for a bulk subscription. `metadata_null`: the subscription had no `metadata`
    (a nil map in daprd, so bulk entries carry `"metadata": null` rather than `{}`).
    """

    pubsubname: str
    topic: str
    rules: tuple[Rule, ...]
    dead_letter_topic: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)
    kind: Kind = "PROGRAMMATIC"
    name: str = ""
    bulk_subscribe: BulkSubscribe | None = None
    metadata_null: bool = False

    def describe(self) -> dict[str, Any]:
        """The metadata API entry (`GET /v1.0/metadata` `subscriptions[]`; empty fields omitted)."""
        out: dict[str, Any] = {"pubsubname": self.pubsubname, "topic": self.topic}
        if self.metadata:
            out["metadata"] = dict(self.metadata)
        if self.rules:
            out["rules"] = [
                {k: v for k, v in (("match", r.match), ("path", r.path)) if v} for r in self.rules
            ]
        out["deadLetterTopic"] = self.dead_letter_topic
        out["type"] = self.kind
        return out


def _compile_rules(
    where: str, rules: Sequence[tuple[str, str]], default: str, route: str
) -> tuple[Rule, ...]:
    compiled: list[Rule] = []
    for match, path in rules:
        try:
            compiled.append(compile_rule(match, path))
        except CelError as exc:
            raise SubscriptionError(f"{where}: invalid routing rule match {exc}") from exc
    if default:
        compiled.append(Rule(match="", path=default))
    elif route:
        compiled.append(Rule(match="", path=route))
    return tuple(compiled)


def _fields(item: Any, where: str) -> dict[str, Any]:
    """Go decodes JSON object keys into struct fields case-insensitively; null is a zero value."""
    if item is None:
        return {}
    if not isinstance(item, dict):
        raise SubscriptionError(f"{where}: expected a JSON object, got {type(item).__name__}")
    return {k.lower(): v for k, v in item.items()}


def _string(value: Any, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise SubscriptionError(f"{where}: expected a string, got {value!r}")
    return value


def _string_map(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SubscriptionError(f"{where}: expected a JSON object of strings, got {value!r}")
    return {k: _string(v, f"{where}.{k}") for k, v in value.items()}


def _int32(value: Any, where: str) -> int:
    """A JSON integer as Go decodes it into an `int32` field (null is 0; 5.0 or "5" are errors)."""
    if value is None:
        return 0
    if isinstance(value, int) and not isinstance(value, bool):  # from YAML
        number = value
    elif isinstance(value, gojson.GoNumber) and re.fullmatch(r"-?(0|[1-9][0-9]*)", value.literal):
        number = int(value.literal)
    else:
        shown = value.literal if isinstance(value, gojson.GoNumber) else repr(value)
        raise SubscriptionError(f"{where}: expected an integer, got {shown}")
    if not -_INT32_MAX - 1 <= number <= _INT32_MAX:
        raise SubscriptionError(f"{where}: {number} does not fit in an int32")
    return number


def _bulk_subscribe(raw: Any, where: str) -> BulkSubscribe | None:
    """`bulkSubscribe` as daprd reads it: enabled or not, and 0/missing settings take the defaults."""
    where = f"{where}: bulkSubscribe"
    bulk = _fields(dict(raw) if isinstance(raw, Mapping) else raw, where)
    enabled = bulk.get("enabled")
    if enabled is not None and not isinstance(enabled, bool):
        raise SubscriptionError(f"{where}.enabled: expected true or false, got {enabled!r}")
    count = _int32(bulk.get("maxmessagescount"), f"{where}.maxMessagesCount")
    await_ms = _int32(bulk.get("maxawaitdurationms"), f"{where}.maxAwaitDurationMs")
    if not enabled:
        return None
    # daprd silently takes the default for a negative value too; a negative setting is a mistake
    for name, number in (("maxMessagesCount", count), ("maxAwaitDurationMs", await_ms)):
        if number < 0:
            raise SubscriptionError(f"{where}.{name} must not be negative, got {number}")
    return BulkSubscribe(count or DEFAULT_MAX_MESSAGES, await_ms or DEFAULT_MAX_AWAIT_MS)


def _routes(raw: Any, where: str) -> tuple[list[tuple[str, str]], str]:
    """`routes` as (match, path) pairs and the default path."""
    routes = _fields(raw, f"{where}.routes")
    rules = routes.get("rules") or []
    if not isinstance(rules, list):
        raise SubscriptionError(f"{where}: routes.rules must be a list")
    pairs = []
    for n, rule_raw in enumerate(rules):
        rule = _fields(rule_raw, f"{where}.routes.rules[{n}]")
        pairs.append((_string(rule.get("match"), "match"), _string(rule.get("path"), "path")))
    return pairs, _string(routes.get("default"), f"{where}.routes.default")


def _parse_item(raw: Any, index: int) -> Subscription:
    where = f"/dapr/subscribe item {index}"
    item = _fields(raw, where)
    pubsub = _string(item.get("pubsubname"), f"{where}.pubsubname")
    topic = _string(item.get("topic"), f"{where}.topic")
    where = f"subscription to topic {topic!r} on pubsub {pubsub!r}"
    pairs, default = _routes(item.get("routes"), where)
    return Subscription(
        pubsubname=pubsub,
        topic=topic,
        rules=_compile_rules(where, pairs, default, _string(item.get("route"), f"{where}.route")),
        dead_letter_topic=_string(item.get("deadlettertopic"), f"{where}.deadLetterTopic"),
        metadata=_string_map(item.get("metadata"), f"{where}.metadata"),
        bulk_subscribe=_bulk_subscribe(item.get("bulksubscribe"), where),
        metadata_null=item.get("metadata") is None,
    )


def parse_app_subscriptions(body: bytes) -> list[Subscription]:
    """Parse a 200 reply of `GET /dapr/subscribe`; items without any route are dropped (warning)."""
    try:
        items = gojson.decode_first(body)
    except ValueError as exc:
        raise SubscriptionError(f"error getting topics from app: {exc}") from exc
    if items is None:
        return []
    if not isinstance(items, list):
        raise SubscriptionError("error getting topics from app: the reply is not a JSON array")
    subscriptions = []
    for index, raw in enumerate(items):
        sub = _parse_item(raw, index)
        if not sub.rules:
            log.warning("topic %s has an empty routes. removing from subscriptions list", sub.topic)
            continue
        subscriptions.append(sub)
    return subscriptions


def from_declarative(decl: DeclarativeSubscription, app_id: str) -> Subscription | None:
    """The subscription for this app, or None when `scopes` exclude it; raises SubscriptionError.

    The resource loader turns a missing `spec.metadata` into `{}`, so empty metadata counts as missing.
    """
    if decl.scopes and app_id not in decl.scopes:
        return None
    where = f"subscription {decl.name!r} (topic {decl.topic!r} on pubsub {decl.pubsubname!r})"
    bulk = _bulk_subscribe(decl.bulk_subscribe, where)
    pairs, default = _routes(dict(decl.routes), where)
    rules = _compile_rules(where, pairs, default, "")
    if not rules:
        log.warning("%s has no route and is ignored", where)
        return None
    return Subscription(
        pubsubname=decl.pubsubname,
        topic=decl.topic,
        rules=rules,
        dead_letter_topic=decl.dead_letter_topic or "",
        metadata=dict(decl.metadata),
        kind="DECLARATIVE",
        name=decl.name,
        bulk_subscribe=bulk,
        metadata_null=not decl.metadata,
    )


def merge_subscriptions(
    declarative: Sequence[Subscription], programmatic: Sequence[Subscription]
) -> list[Subscription]:
    """One per (pubsub, topic): the first declarative, replaced in place by the last programmatic."""
    merged: list[Subscription] = []
    index: dict[tuple[str, str], int] = {}
    for sub in declarative:
        key = (sub.pubsubname, sub.topic)
        if key not in index:
            index[key] = len(merged)
            merged.append(sub)
    for sub in programmatic:
        key = (sub.pubsubname, sub.topic)
        if key in index:
            merged[index[key]] = sub
        else:
            index[key] = len(merged)
            merged.append(sub)
    return merged


def parse_grpc_subscriptions(items: Sequence[Any]) -> list[Subscription]:
    """`ListTopicSubscriptionsResponse.subscriptions` as daprd reads them: no rule and no default route
    gives the default path "" (the SDK's handler for the topic itself)."""
    subscriptions = []
    for item in items:
        where = f"subscription to topic {item.topic!r} on pubsub {item.pubsub_name!r}"
        pairs = [(rule.match, rule.path) for rule in item.routes.rules]
        rules = _compile_rules(where, pairs, item.routes.default, "") or (Rule(match="", path=""),)
        bulk = None
        if item.HasField("bulk_subscribe"):
            bulk = _bulk_subscribe(
                {
                    "enabled": item.bulk_subscribe.enabled,
                    "maxMessagesCount": item.bulk_subscribe.max_messages_count,
                    "maxAwaitDurationMs": item.bulk_subscribe.max_await_duration_ms,
                },
                where,
            )
        subscriptions.append(
            Subscription(
                pubsubname=item.pubsub_name,
                topic=item.topic,
                rules=rules,
                dead_letter_topic=item.dead_letter_topic,
                metadata=dict(item.metadata),
                bulk_subscribe=bulk,
                metadata_null=not item.metadata,
            )
        )
    return subscriptions


async def _fetch_grpc(channel: GrpcAppChannel, delays: Sequence[float]) -> list[Subscription] | None:
    for attempt in range(len(delays) + 1):
        try:
            reply = await channel.list_topic_subscriptions()
        except AppCallError as exc:
            if exc.code == grpc.StatusCode.UNIMPLEMENTED:
                log.info("pubsub subscriptions: gRPC app does not implement ListTopicSubscriptions")
                return []
            log.error("error getting topics from app: %s", exc)
            return None
        except (OSError, TimeoutError) as exc:
            if attempt == len(delays):
                log.error("error getting topics from app: %s", exc)
                return None
            log.debug("app not reachable for ListTopicSubscriptions (%s); retrying", exc)
            await asyncio.sleep(delays[attempt])
            continue
        return parse_grpc_subscriptions(reply.subscriptions)
    return None  # pragma: no cover - the loop always returns


async def fetch_app_subscriptions(
    channel: ChannelBase, delays: Sequence[float] = INIT_RETRY_DELAYS
) -> list[Subscription] | None:
    """GET `/dapr/subscribe` (gRPC: `ListTopicSubscriptions`) once, retrying connection errors after each
    of `delays` seconds.

    Returns None when the app stayed unreachable or answered an error status (daprd then subscribes to
    nothing from the app; None also tells a durable broker not to forget what it knew); raises
    SubscriptionError for an unusable reply.
    """
    if isinstance(channel, GrpcAppChannel):
        return await _fetch_grpc(channel, delays)
    assert isinstance(channel, AppChannel)
    for attempt in range(len(delays) + 1):
        try:
            resp = await channel.request(
                "GET", "/dapr/subscribe", headers={"Content-Type": "application/json"}
            )
        except (OSError, TimeoutError) as exc:
            if attempt == len(delays):
                log.error("error getting topic list from app: %s", exc)
                return None
            log.debug("app not reachable for /dapr/subscribe (%s); retrying", exc)
            await asyncio.sleep(delays[attempt])
            continue
        if resp.status == 404:
            log.debug("user app did not subscribe to any topic")
            return []
        if resp.status != 200:
            log.error("app returned http status code %s from subscription endpoint", resp.status)
            return None
        return parse_app_subscriptions(resp.body)
    return None  # pragma: no cover - the loop always returns
