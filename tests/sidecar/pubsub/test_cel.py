"""The CEL subset used by routing rules: results match cel-go's, unsupported constructs are refused at
compile time, evaluation errors surface as `CelEvalError`."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sidecar.pubsub.cel import CelError, CelEvalError, compile_expression

EVENT: dict[str, Any] = {
    "id": "1",
    "type": "order.created",
    "source": "checkout",
    "data": {
        "kind": "book",
        "qty": 5.0,  # Go decodes every JSON number as float64
        "price": 12.5,
        "tags": ["a", "b"],
        "note": "hello world",
        "nested": {"deep": True},
        "nothing": None,
    },
}

TRUE = [
    'event.type == "order.created"',
    "event.type == 'order.created'",
    'event.type != "x"',
    'event.data.kind == "book" && event.data.qty > 3',
    "event.data.qty == 5",  # double == int across numeric types
    "event.data.qty >= 5 && event.data.qty < 5.5",
    "event.data.price > 12",
    'event.type.startsWith("order.")',
    'event.type.endsWith("created")',
    'event.data.note.contains("lo wo")',
    'event.data.note.matches("^h.*d$")',
    'matches(event.data.note, "wor")',
    '"a" in event.data.tags',
    '"kind" in event.data',
    "has(event.data.kind)",
    "!has(event.data.missing)",
    "has(event.data.nothing) && event.data.nothing == null",
    "size(event.data.tags) == 2 && event.data.note.size() == 11",
    'event["data"]["tags"][1] == "b"',
    "event.data.nested.deep",
    "event.data.nested.deep == true",
    'event.type == "x" || event.source == "checkout"',
    '!(event.type == "x")',
    "(event.data.qty > 1) ? true : false",
    "int(event.data.qty) == 5 && double(\"1.5\") == 1.5 && string(event.data.qty) == '5'",
    "string(event.data.price) == '12.5' && string(1000000.0) == '1e+06'",
    'event.data.tags == ["a", "b"]',
    '{"k": 1}.k == 1',
    "event.missing == 1 || true",  # an error on one side of || is absorbed by true
    "true || event.missing == 1",
    '"\\u00e9\\x41\\n" == "éA\\n" && size("\\u00e9\\x41\\n") == 3',
    "r'\\d' == '\\\\d'",
    "-event.data.qty == -5",
    "event.data.qty != 'five'",  # heterogeneous equality is false, not an error
]

FALSE = [
    'event.type == "order.updated"',
    "event.data.qty > 5",
    "event.missing == 1 && false",
    '"c" in event.data.tags',
    "has(event.data.missing)",
    'event.type.startsWith("ORDER")',  # case-sensitive
]

EVAL_ERRORS = [
    ("event.missing == 1", "no such key: missing"),
    ("event.data.note.missing", "no such key"),
    ('event.data.qty < "x"', "no such overload"),
    ("event.type && true", "no such overload"),
    ("event.missing == 1 || false", "no such key"),
    ("event.data.tags[5] == 1", "index out of bounds"),
    ("event.type", "not a boolean"),
    ('int("x") == 1', "cannot convert"),
    ("event.data.qty.startsWith('5')", "no such overload"),
]

COMPILE_ERRORS = [
    ("event.data.qty + 1 > 2", "arithmetic operator '+'"),
    ("foo == 1", "undeclared reference to 'foo'"),
    ("event.data.tags.exists(t, t == 'a')", "method 'exists'"),
    ("event.data.tags.all(t, t == 'a')", "method 'all'"),
    ('event.type.lowerAscii() == "x"', "method 'lowerAscii'"),
    ("timestamp(event.time) > timestamp('2020-01-01T00:00:00Z')", "function 'timestamp'"),
    ('event.type = "x"', "unexpected character '='"),
    ('event.type == "x', "unterminated string"),
    ("event.type ==", "unexpected 'end of input'"),
    ("(event.type", "expected ')'"),
    ("5u == 5", "unsigned integer"),
    ('b"x" == event.type', "bytes literals"),
    ("", "empty expression"),
    ("has(event)", "has() takes one field selection"),
    (".event.type == 'x'", "qualified root"),
]


@pytest.mark.parametrize("expr", TRUE)
def test_true_expressions(expr: str) -> None:
    assert compile_expression(expr).evaluate(EVENT) is True


@pytest.mark.parametrize("expr", FALSE)
def test_false_expressions(expr: str) -> None:
    assert compile_expression(expr).evaluate(EVENT) is False


@pytest.mark.parametrize(("expr", "message"), EVAL_ERRORS)
def test_evaluation_errors(expr: str, message: str) -> None:
    compiled = compile_expression(expr)
    with pytest.raises(CelEvalError, match=message):
        compiled.evaluate(EVENT)


@pytest.mark.parametrize(("expr", "message"), COMPILE_ERRORS)
def test_unsupported_or_invalid_expressions_are_refused(expr: str, message: str) -> None:
    with pytest.raises(CelError) as info:
        compile_expression(expr)
    assert message in str(info.value)


@given(st.text())
def test_any_string_literal_round_trips(value: str) -> None:
    # a JSON string literal (non-ASCII kept) is also a valid CEL string literal
    expr = compile_expression(f"event.type == {json.dumps(value, ensure_ascii=False)}")
    assert expr.evaluate({"type": value}) is True
    assert expr.evaluate({"type": value + "x"}) is False


@given(st.floats(allow_nan=False, allow_infinity=False), st.integers(-(2**53), 2**53))
def test_numeric_comparisons_cross_int_and_double(x: float, n: int) -> None:
    event = {"data": {"x": x}}
    assert compile_expression(f"event.data.x < {n}").evaluate(event) is (x < n)
    assert compile_expression(f"event.data.x == {n}").evaluate(event) is (x == n)
