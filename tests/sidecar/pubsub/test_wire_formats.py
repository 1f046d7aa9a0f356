"""Pure wire-format pieces checked against daprd/Go behaviour: Go-style JSON, content-type rules,
durations and ttl, the app-reply classification, topic scopes and wildcard matching."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sidecar.gojson import GoNumber, decode_first, dumps, loads_precise
from sidecar.pubsub import RetryPolicy
from sidecar.pubsub.broker import TopicScopes, topic_matches
from sidecar.pubsub.cloudevents import (
    build_envelope,
    has_expired,
    is_json_content_type,
    is_raw_payload,
    parse_go_duration,
    ttl_seconds,
)
from sidecar.pubsub.delivery import Outcome, classify_reply

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.integers(-(2**60), 2**60)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def _sorted_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    assert keys == sorted(keys)
    return dict(pairs)


def _as_float64(value: Any) -> Any:
    """Numbers as Go reads them back into interface{}: float64."""
    if isinstance(value, list):
        return [_as_float64(v) for v in value]
    if isinstance(value, dict):
        return {k: _as_float64(v) for k, v in value.items()}
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


@given(json_values)
def test_go_json_round_trips_with_sorted_keys(value: Any) -> None:
    encoded = dumps(value)
    decoded = json.loads(encoded, object_pairs_hook=_sorted_object, parse_int=float)
    assert decoded == _as_float64(value)
    assert b"<" not in encoded and b">" not in encoded and b"&" not in encoded


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1.0, b"1"),
        (1.5, b"1.5"),
        (-0.0, b"-0"),
        (1e20, b"100000000000000000000"),
        (1e21, b"1e+21"),
        (1.5e-7, b"1.5e-7"),
        (1e-6, b"0.000001"),
        (1e100, b"1e+100"),
        (12345678901234567890.0, b"12345678901234567000"),
        ("<a&b>", b'"\\u003ca\\u0026b\\u003e"'),
        ("\u2028\b\f\x01\x7f é", b'"\\u2028\\b\\f\\u0001\x7f \xc3\xa9"'),
        ({"b": 1, "a": [True, None]}, b'{"a":[true,null],"b":1}'),
    ],
)
def test_go_json_encoding_details(value: Any, expected: bytes) -> None:
    assert dumps(value) == expected


def test_precise_numbers_and_first_value_decoding() -> None:
    big = b'{"n": 123456789012345678901234567890, "f": 1.10}'
    assert dumps(loads_precise(big)) == b'{"f":1.10,"n":123456789012345678901234567890}'
    assert decode_first(b'  [1] {"ignored": true}') == [GoNumber("1")]
    with pytest.raises(ValueError, match="EOF"):
        decode_first(b"  \n")
    with pytest.raises(ValueError):
        loads_precise(b"NaN")


@pytest.mark.parametrize(
    ("content_type", "is_json"),
    [
        ("application/json", True),
        ("Application/JSON", True),
        ("application/json;charset=utf-8", True),
        ("application/json ; charset=utf-8", False),  # daprd does not trim before ';'
        ("application/foo+json", False),
        ("text/json", False),
        ("", False),
    ],
)
def test_json_content_type_rule(content_type: str, is_json: bool) -> None:
    assert is_json_content_type(content_type) is is_json


def test_x_protobuf_is_base64_only_when_it_parses_as_a_cloudevent() -> None:
    def envelope(data: bytes) -> dict[str, Any]:
        out = build_envelope(
            app_id="a",
            pubsub="p",
            topic="t",
            data=data,
            content_type="application/x-protobuf",
            metadata={},
            now=0,
        )
        parsed: dict[str, Any] = json.loads(out)
        return parsed

    assert "data_base64" in envelope(b"\x0a\x02id\x12\x03src")  # id, source
    assert "data" in envelope(b"\x08\x01")  # field 1 must be length-delimited
    assert "data" in envelope(b"\x0a\x05ab")  # truncated


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0", 0), ("1h30m", 5400), ("1.5s", 1.5), ("300ms", 0.3), ("-2s", -2), ("2µs", 2e-6)],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert math.isclose(parse_go_duration(text), seconds, abs_tol=1e-12)


@pytest.mark.parametrize("text", ["", "5", "1d", "s", "1.5.5s", "--1s"])
def test_invalid_go_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_go_duration(text)


@pytest.mark.parametrize(
    ("metadata", "ttl"),
    [
        ({}, None),
        ({"ttlInSeconds": "30"}, 30.0),
        ({"TTLINSECONDS": "30"}, 30.0),
        ({"ttl": "2m"}, 120.0),
        ({"ttl": "-5s"}, 0.0),  # negative durations clamp to zero: expired at once
        ({"ttlInSeconds": "0"}, 0.0),  # "0" is a valid Go duration
        ({"ttlInSeconds": "-3"}, None),  # ignored, as daprd's ApplyMetadata ignores errors
        ({"ttlInSeconds": "1_000"}, None),
    ],
)
def test_ttl_metadata(metadata: dict[str, str], ttl: float | None) -> None:
    assert ttl_seconds(metadata) == ttl


def test_expiration_check_uses_rfc3339_and_the_given_now() -> None:
    event = {"expiration": "2030-01-01T00:00:00Z"}
    at = 1893456000.0  # 2030-01-01T00:00:00Z
    assert not has_expired(event, at)
    assert has_expired(event, at + 0.001)
    assert has_expired({"expiration": "2030-01-01T01:00:00+01:00"}, at + 1)
    assert not has_expired({"expiration": "soon"}, at * 2)
    assert not has_expired({"expiration": 5}, at * 2)


@pytest.mark.parametrize(
    ("value", "raw"),
    [("", False), ("true", True), ("T", True), ("1", True), ("False", False), ("0", False)],
)
def test_raw_payload_flag_parses_like_go(value: str, raw: bool) -> None:
    assert is_raw_payload({"rawPayload": value}) is raw


def test_raw_payload_flag_rejects_other_values() -> None:
    with pytest.raises(ValueError, match="rawPayload value must be a valid boolean"):
        is_raw_payload({"rawPayload": "yes"})


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (200, b'{"status":"SUCCESS"}', Outcome.SUCCESS),
        (200, b'{"status":"DROP","status":"RETRY"}', Outcome.RETRY),  # last key wins
        (200, b'{"status":null}', Outcome.SUCCESS),
        (200, b"[1]", Outcome.SUCCESS),
        (200, b"<html>", Outcome.SUCCESS),
        (299, b'{"status":"DROP"}', Outcome.DROP),
        (200, b'{"status":"Drop"}', Outcome.RETRY),
        (301, b"", Outcome.RETRY),
        (404, b'{"status":"SUCCESS"}', Outcome.NOT_FOUND),
        (500, b'{"status":"SUCCESS"}', Outcome.RETRY),
    ],
)
def test_reply_classification(status: int, body: bytes, outcome: Outcome) -> None:
    assert classify_reply(status, body)[0] is outcome


def test_topic_scopes_follow_daprd() -> None:
    scopes = TopicScopes.from_metadata(
        {
            "AllowedTopics": "a, b,c,p",
            "protectedTopics": "p",
            "publishingScopes": "me=a,p;other=b",
            "subscriptionScopes": "me=",
        },
        "me",
    )
    assert scopes.may_publish("a") and scopes.may_publish("p")
    assert not scopes.may_publish("b")  # scopes exist for me and do not list b
    assert not scopes.may_publish("z")  # not an allowed topic at all
    assert not scopes.may_subscribe("a")  # "me=" grants no topic
    open_scopes = TopicScopes.from_metadata({"protectedTopics": "secret"}, "me")
    assert open_scopes.may_publish("anything") and not open_scopes.may_publish("secret")


@pytest.mark.parametrize(
    ("pattern", "topic", "matches"),
    [
        ("orders", "orders", True),
        ("orders", "orders2", False),
        ("orders*", "orders/1", True),
        ("orders*", "orders", False),
        ("orders/*", "orders/", False),
        ("*", "anything", True),
    ],
)
def test_wildcard_topics(pattern: str, topic: str, matches: bool) -> None:
    assert topic_matches(pattern, topic) is matches


def test_retry_policy_delays_double_up_to_the_cap() -> None:
    assert list(RetryPolicy().delays()) == [0.1, 0.2, 0.4, 0.8]
    assert list(RetryPolicy(attempts=6, initial=0.5, maximum=2).delays()) == [0.5, 1, 2, 2, 2]
    assert list(RetryPolicy(attempts=1).delays()) == []
