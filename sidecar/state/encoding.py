"""JSON values as daprd's Go `encoding/json` decodes and re-encodes them before they reach a state store.

daprd decodes a state value into a Go `any` (every number a float64) and the store marshals it again:
object keys come back sorted, integers above 2**53 lose precision, `<`, `>`, `&` become `\\u003c` etc.
Reproducing that keeps the stored bytes identical to daprd's, so apps see the same values with either sidecar.
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal
from typing import Any

__all__ = ["GoJSONError", "go_json_decode", "go_json_encode"]

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_HTML_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}
_HTML_UNSAFE = re.compile("[<>&\u2028\u2029]")


class GoJSONError(ValueError):
    """The bytes are not a JSON value Go would accept, or a value Go cannot marshal."""


def _float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise GoJSONError(f"json: cannot unmarshal number {text} into Go value of type float64")
    return value


def _no_constant(name: str) -> Any:
    raise GoJSONError(f"invalid character '{name[0]}' looking for beginning of value")


_DECODER = json.JSONDecoder(parse_float=_float, parse_int=_float, parse_constant=_no_constant)


def go_json_decode(data: bytes | str) -> Any:
    """Decode the first JSON value in `data` like Go's `json.Decoder.Decode` into `any`.

    Numbers become floats; trailing data after the first value is ignored, as Go's decoder does.
    """
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    start = len(text) - len(text.lstrip(" \t\r\n"))
    if start == len(text):
        raise GoJSONError("EOF")
    try:
        value, _ = _DECODER.raw_decode(text, start)
    except json.JSONDecodeError as exc:
        raise GoJSONError(exc.msg) from None
    if "\\ud" in text or "\\uD" in text:  # only escapes can produce lone surrogates
        value = _clean_all(value)
    return value


def _clean_all(value: Any) -> Any:
    if isinstance(value, str):
        return _clean(value)
    if isinstance(value, list):
        return [_clean_all(v) for v in value]
    if isinstance(value, dict):
        return {_clean(k): _clean_all(v) for k, v in value.items()}
    return value


def go_json_encode(value: Any) -> bytes:
    """Marshal like Go's `json.Marshal` of a decoded `any`: sorted keys, float64 numbers, HTML escaping."""
    out: list[str] = []
    _encode(value, out)
    return "".join(out).encode("utf-8")


def _encode(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(_string(value))
    elif isinstance(value, int | float):
        out.append(_number(value))
    elif isinstance(value, dict):
        items = sorted(((_clean(str(k)), v) for k, v in value.items()), key=lambda kv: kv[0])
        out.append("{")
        for i, (k, v) in enumerate(items):
            if i:
                out.append(",")
            out.append(_string(k))
            out.append(":")
            _encode(v, out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, v in enumerate(value):
            if i:
                out.append(",")
            _encode(v, out)
        out.append("]")
    else:
        raise GoJSONError(f"json: unsupported type: {type(value).__name__}")


def _clean(text: str) -> str:
    """Go decodes a lone UTF-16 surrogate escape to U+FFFD."""
    return _LONE_SURROGATE.sub("\ufffd", text)


def _string(text: str) -> str:
    # Python escapes exactly what Go does (", \\, control characters, with \b \f \n \r \t short forms
    # as Go 1.22+); Go additionally escapes <, >, & and U+2028/U+2029.
    encoded = json.dumps(_clean(text), ensure_ascii=False)
    return _HTML_UNSAFE.sub(lambda m: _HTML_ESCAPES[m.group()], encoded)


def _number(value: float) -> str:
    try:
        f = float(value)
    except OverflowError:
        raise GoJSONError(f"json: unsupported value: {value}") from None
    if math.isnan(f) or math.isinf(f):
        raise GoJSONError(f"json: unsupported value: {f}")
    if f == 0:
        return "-0" if math.copysign(1.0, f) < 0 else "0"
    digits = Decimal(repr(f)).normalize()  # shortest round-trip digits, as Go's strconv uses
    if 1e-6 <= abs(f) < 1e21:
        return format(digits, "f")
    sign, mantissa, exponent = digits.as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, mantissa))
    exp = exponent + len(text) - 1
    head = text[0] + ("." + text[1:] if len(text) > 1 else "")
    # Go formats the exponent with at least two digits, then trims "e-0X" to "e-X".
    tail = f"e+{exp:02d}" if exp >= 0 else f"e-{-exp}"
    return ("-" if sign else "") + head + tail
