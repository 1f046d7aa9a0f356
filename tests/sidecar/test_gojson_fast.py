"""The fast Go-JSON re-encoding (`loads_float64_exact` + `dumps_exact`) must write exactly the bytes of the
slow path `dumps(loads_float64(text))` for any document, including the cases where it has to fall back."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.gojson import (
    as_float64,
    decode_first,
    decode_first_exact,
    dumps,
    dumps_exact,
    loads_float64,
    loads_float64_exact,
)

_SPECIAL_CHARS = [
    *'<>&"\\/',
    "\u2028",
    "\u2029",
    *(chr(c) for c in range(0x20)),
    "\x7f",
    "\x80",
    "é",
    "\ue000",
    "\uffff",
    "\U0001f600",
    "\U0010ffff",
    "\ud800",  # lone surrogates reach the encoder only through JSON escapes (or str input)
    "\udc00",
    "\udfff",
]
_TEXT = st.text(alphabet=st.one_of(st.characters(), st.sampled_from(_SPECIAL_CHARS)), max_size=12)
_STRING_LITERALS = st.builds(
    lambda s, ascii_only: json.dumps(s, ensure_ascii=ascii_only), _TEXT, st.booleans()
)

_LIMIT = 2**53
_NUMBER_LITERALS = st.one_of(
    st.integers(-1000, 1000).map(str),
    st.integers(-(2**60), 2**60).map(str),
    st.integers(_LIMIT - 3, _LIMIT + 3).flatmap(lambda n: st.sampled_from([str(n), str(-n)])),
    st.sampled_from(
        ["0", "-0", "-0.0", "0.0", "1.0", "0.1", "1e21", "1E21", "1e20", "1e-7", "1e-6", "1E+2", "2.5e-3"]
        + ["123456789012345678901234567890", "1e400", "-1e400", "5e-324", "1.7976931348623157e308"]
    ),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.from_regex(r"-?(0|[1-9][0-9]{0,22})(\.[0-9]{1,6})?([eE][+-]?[0-9]{1,3})?", fullmatch=True),
)
_SCALARS = st.one_of(_NUMBER_LITERALS, _STRING_LITERALS, st.sampled_from(["true", "false", "null"]))
_WS = st.sampled_from(["", "", " ", "\n  "])


def _containers(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    arrays = st.builds(lambda xs, ws: "[" + ws + ",".join(xs) + "]", st.lists(children, max_size=5), _WS)
    members = st.lists(st.tuples(_STRING_LITERALS, _WS, children), max_size=6)
    objects = members.map(lambda kvs: "{" + ",".join(f"{k}{ws}:{v}" for k, ws, v in kvs) + "}")
    return st.one_of(arrays, objects)


_DOCUMENTS = st.recursive(_SCALARS, _containers, max_leaves=30)


def _outcome(fn: Any, text: str | bytes) -> tuple[str, Any]:
    try:
        return "ok", fn(text)
    except ValueError as exc:
        return "error", f"{type(exc).__name__}: {exc}"


def _slow(text: str | bytes) -> bytes:
    return dumps(loads_float64(text))


def _fast(text: str | bytes) -> bytes:
    value, exact = loads_float64_exact(text)
    return dumps_exact(value) if exact else dumps(value)


def _has_float(value: Any) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(_has_float(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_float(v) for v in value)
    return False


@settings(max_examples=300, deadline=None)
@given(_DOCUMENTS, st.booleans())
def test_fast_path_writes_the_slow_paths_bytes(text: str, as_bytes: bool) -> None:
    data: str | bytes = text.encode("utf-8", "surrogatepass") if as_bytes else text
    assert _outcome(_fast, data) == _outcome(_slow, data)


@settings(max_examples=300, deadline=None)
@given(_DOCUMENTS, st.integers(min_value=0), st.sampled_from(["", "x", " ]", ",", "}"]))
def test_malformed_documents_fail_with_the_slow_paths_error(text: str, cut: int, tail: str) -> None:
    broken = text[: cut % (len(text) + 1)] + tail
    assert _outcome(_fast, broken) == _outcome(_slow, broken)


def _number_literals(text: str) -> list[str]:
    """Every number literal of the document, duplicate keys included (an independent oracle)."""
    literals: list[str] = []

    def keep(literal: str) -> str:
        literals.append(literal)
        return literal

    json.loads(text, parse_int=keep, parse_float=keep)
    return literals


def _prints_as_int(literal: str) -> bool:
    return literal.lstrip("-").isdigit() and literal != "-0" and abs(int(literal)) < _LIMIT


@settings(max_examples=300, deadline=None)
@given(_DOCUMENTS)
def test_exact_decode_is_the_float64_decode_with_small_ints_kept(text: str) -> None:
    value, exact = loads_float64_exact(text)
    # repr tells 1 from 1.0 and -0.0 from 0.0, so this is equality of types as well as values.
    assert repr(as_float64(value)) == repr(loads_float64(text))
    assert exact == all(_prints_as_int(literal) for literal in _number_literals(text))
    assert not (exact and _has_float(value))
    if exact:
        assert dumps_exact(value) == _slow(text)


_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-_LIMIT + 1, _LIMIT - 1), _TEXT.filter(lambda s: True)),
    lambda children: st.one_of(st.lists(children, max_size=5), st.dictionaries(_TEXT, children, max_size=6)),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(_VALUES)
def test_c_encoder_matches_go_encoder_on_int_trees(value: Any) -> None:
    assert dumps_exact(value) == dumps(value) == dumps(as_float64(value))


@settings(max_examples=300, deadline=None)
@given(st.integers(-_LIMIT + 1, _LIMIT - 1))
def test_go_prints_float64_of_a_small_int_as_its_digits(n: int) -> None:
    assert dumps(float(n)) == str(n).encode()


@pytest.mark.parametrize(
    ("literal", "value", "exact"),
    [
        ("0", 0, True),
        ("-7", -7, True),
        ("9007199254740991", 9007199254740991, True),
        ("-9007199254740991", -9007199254740991, True),
        ("9007199254740992", 9007199254740992.0, False),
        ("-9007199254740992", -9007199254740992.0, False),
        ("123456789012345678901", 1.2345678901234568e20, False),
        ("-0", -0.0, False),
        ("1.0", 1.0, False),
        ("1e2", 100.0, False),
        ("0.1", 0.1, False),
    ],
)
def test_which_literals_are_exact(literal: str, value: float, exact: bool) -> None:
    decoded, got_exact = loads_float64_exact(f'{{"n":[{literal}]}}')
    assert got_exact is exact
    (number,) = decoded["n"]
    assert repr(number) == repr(value)
    assert type(number) is (int if exact else float)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"b":1,"a":"<x>&\\u2028\\u2029"}', b'{"a":"\\u003cx\\u003e\\u0026\\u2028\\u2029","b":1}'),
        ('"\\u0000\\u001f\\b\\f\\n\\r\\t\\u007f/\\"\\\\"', b'"\\u0000\\u001f\\b\\f\\n\\r\\t\x7f/\\"\\\\"'),
        ('["\\ud800x", {"\\udfff": 1}]', '["\ufffdx",{"\ufffd":1}]'.encode()),
        (
            '{"\\ud83d\\ude00": "\\ue000", "\\uffff": 2, "a": [true, false, null]}',
            '{"a":[true,false,null],"\uffff":2,"\U0001f600":"\ue000"}'.encode(),
        ),
        (
            "[1e21, 1e20, 1e-7, 1e-6, 0.1, 1.0, -0, 100]",
            b"[1e+21,100000000000000000000,1e-7,0.000001,0.1,1,-0,100]",
        ),
        ('{"n": 9007199254740993}', b'{"n":9007199254740992}'),
    ],
)
def test_known_documents(text: str, expected: bytes) -> None:
    assert _slow(text) == expected
    assert _fast(text) == expected


def test_float_literal_anywhere_makes_the_document_inexact() -> None:
    value, exact = loads_float64_exact('[{"a": 1, "b": [2, 3]}, {"c": 0.5}]')
    assert not exact
    assert repr(value) == repr([{"a": 1.0, "b": [2.0, 3.0]}, {"c": 0.5}])


def test_errors_are_the_slow_paths() -> None:
    for text in ("", "[1,", "NaN", "[Infinity]", '{"a":1} x'):
        with pytest.raises(ValueError) as slow:
            loads_float64(text)
        with pytest.raises(ValueError) as fast:
            loads_float64_exact(text)
        assert str(fast.value) == str(slow.value)
    assert (
        _outcome(_fast, "[1e400]")
        == _outcome(_slow, "[1e400]")
        == ("error", "ValueError: json: unsupported value: inf")
    )


def _first_slow(data: bytes) -> bytes:
    return dumps(decode_first(data))


def _first_fast(data: bytes) -> bytes:
    value, exact = decode_first_exact(data)
    return dumps_exact(value) if exact else dumps(value)


@settings(max_examples=300, deadline=None)
@given(_DOCUMENTS, st.sampled_from(["", " ", "\n", " x", "{}", "]"]))
def test_first_value_fast_path_writes_the_precise_paths_bytes(text: str, tail: str) -> None:
    """What a publish envelope carries: the first JSON value (Go's Decoder), numbers kept verbatim."""
    data = (" " + text + tail).encode("utf-8", "surrogatepass")
    assert _outcome(_first_fast, data) == _outcome(_first_slow, data)
