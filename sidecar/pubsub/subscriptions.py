"""Subscriptions from the app's `GET /dapr/subscribe` (daprd 1.16 `GetSubscriptionsHTTP`) and from
resources, merged as daprd does; unlike daprd, an unusable rule or `bulkSubscribe` fails loudly.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp

from sidecar import gojson
from sidecar.appchannel import AppChannel
from sidecar.pubsub.routing import CelError, Rule, compile_rule

__all__ = [
    "DeclarativeSubscription",
    "Subscription",
    "SubscriptionError",
    "fetch_app_subscriptions",
    "from_declarative",
    "merge_subscriptions",
    "parse_app_subscriptions",
]

log = logging.getLogger("sidecar.pubsub.subscriptions")

Kind = Literal["PROGRAMMATIC", "DECLARATIVE"]

# daprd's built-in initialization retries for `/dapr/subscribe`: 3 retries, exponential from 500 ms.
INIT_RETRY_DELAYS: tuple[float, ...] = (0.5, 1.0, 2.0)


class SubscriptionError(ValueError):
    """A subscription the sidecar cannot honour (bad JSON, bad or unsupported rule, bulk)."""


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
    bulk_subscribe: bool = False


@dataclass(frozen=True)
class Subscription:
    """A subscription as the delivery side uses it; `rules` end with the default route if any."""

    pubsubname: str
    topic: str
    rules: tuple[Rule, ...]
    dead_letter_topic: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)
    kind: Kind = "PROGRAMMATIC"
    name: str = ""

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
    bulk = _fields(item.get("bulksubscribe"), f"{where}.bulkSubscribe")
    if bulk.get("enabled") is True:
        raise SubscriptionError(f"{where}: bulkSubscribe is not supported by the embedded sidecar")
    return Subscription(
        pubsubname=pubsub,
        topic=topic,
        rules=_compile_rules(where, pairs, default, _string(item.get("route"), f"{where}.route")),
        dead_letter_topic=_string(item.get("deadlettertopic"), f"{where}.deadLetterTopic"),
        metadata=_string_map(item.get("metadata"), f"{where}.metadata"),
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
    """The subscription for this app, or None when `scopes` exclude it; raises SubscriptionError."""
    if decl.scopes and app_id not in decl.scopes:
        return None
    where = f"subscription {decl.name!r} (topic {decl.topic!r} on pubsub {decl.pubsubname!r})"
    if decl.bulk_subscribe:
        raise SubscriptionError(f"{where}: bulkSubscribe is not supported by the embedded sidecar")
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


async def fetch_app_subscriptions(
    channel: AppChannel, delays: Sequence[float] = INIT_RETRY_DELAYS
) -> list[Subscription] | None:
    """GET `/dapr/subscribe` once, retrying connection errors after each of `delays` seconds.

    Returns None when the app stayed unreachable; raises SubscriptionError for an unusable reply.
    """
    for attempt in range(len(delays) + 1):
        try:
            resp = await channel.request(
                "GET", "/dapr/subscribe", headers={"Content-Type": "application/json"}
            )
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
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
            return []
        return parse_app_subscriptions(resp.body)
    return None  # pragma: no cover - the loop always returns
