"""JSON as daprd's Go `encoding/json` reads and writes it (sorted keys, `<>&` escaped, numbers kept
verbatim under `UseNumber`), so the envelopes we build match daprd's byte for byte; and Go's `%q` of a
string, which daprd's error messages quote names with.
"""

from __future__ import annotations

import decimal
import json
import re
from typing import Any

__all__ = [
    "GoNumber",
    "as_float64",
    "decode_first",
    "decode_first_exact",
    "dumps",
    "dumps_exact",
    "go_quote",
    "loads_float64",
    "loads_float64_exact",
    "loads_precise",
]

_WS = " \t\n\r"
_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def go_quote(text: str) -> str:
    """Go's `%q` of a string (`strconv.Quote`): `"` and `\\` escaped, control characters as Go writes them,
    other unprintable runes as `\\u`/`\\U`, printable non-ASCII kept."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch < " " or ch == "\x7f":
            out.append(f"\\x{ord(ch):02x}")
        elif ch.isprintable() or ch == " ":
            out.append(ch)
        else:
            out.append(f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


class GoNumber:
    """A JSON number kept as its literal text (Go's `json.Number`), so big values survive unchanged."""

    __slots__ = ("literal",)

    def __init__(self, literal: str) -> None:
        self.literal = literal

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GoNumber) and other.literal == self.literal

    def __hash__(self) -> int:
        return hash(self.literal)

    def __repr__(self) -> str:
        return f"GoNumber({self.literal!r})"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid character {name!r} looking for beginning of value")


_PRECISE = json.JSONDecoder(parse_int=GoNumber, parse_float=GoNumber, parse_constant=_reject_constant)
_FLOAT64 = json.JSONDecoder(parse_int=float, parse_float=float, parse_constant=_reject_constant)


def _text(data: bytes | str) -> str:
    # Go replaces invalid UTF-8 inside strings with U+FFFD instead of failing.
    return data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data


def loads_precise(data: bytes | str) -> Any:
    """Decode one whole JSON document, numbers as `GoNumber` (Go `Unmarshal` with `UseNumber`)."""
    return _PRECISE.decode(_text(data))


def loads_float64(data: bytes | str) -> Any:
    """Decode one whole JSON document with every number as float (Go's default `interface{}`)."""
    return _FLOAT64.decode(_text(data))


_EXACT_LIMIT = 2**53  # every int below this in magnitude is a float64 that Go prints as its plain digits


class _NotExact(Exception):
    """A number Go would not print as int digits: the document is decoded again with floats."""


def _exact_int(literal: str) -> int:
    if literal != "-0":
        if len(literal) < 16:  # at most 15 digits: below 2**53
            return int(literal)
        if len(literal) <= 17:
            n = int(literal)
            if -_EXACT_LIMIT < n < _EXACT_LIMIT:
                return n
    raise _NotExact


def _not_exact(literal: str) -> float:
    raise _NotExact


_EXACT = json.JSONDecoder(parse_int=_exact_int, parse_float=_not_exact, parse_constant=_reject_constant)


def loads_float64_exact(data: bytes | str) -> tuple[Any, bool]:
    """Decode like `loads_float64`, but keep int literals below 2**53 in magnitude (not "-0") as `int`.

    Returns `(value, exact)`: `exact` says every number in the document was such an int, so the value holds
    only dict/list/str/int/bool/None and `dumps_exact` encodes it; otherwise the value is exactly
    `loads_float64`'s, every number a float. The int and its float64 have the same value, and Go prints it
    as `str(n)`. Errors are `loads_float64`'s: the same scanner reports the same position and message.
    """
    text = _text(data)
    try:
        return _EXACT.decode(text), True
    except _NotExact:  # at the first float, big int or -0: all floats, not a mix
        return _FLOAT64.decode(text), False


def as_float64(value: Any) -> Any:
    """`value` with its ints (not bools) as floats: what `loads_float64` gives where
    `loads_float64_exact` kept ints (for code whose output shows the float, e.g. `str(60.0)`)."""
    if isinstance(value, bool) or value is None or isinstance(value, str | float):
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, dict):
        return {k: as_float64(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_float64(v) for v in value]
    return value


def decode_first(data: bytes, *, precise: bool = True) -> Any:
    """Decode the first JSON value and ignore what follows, like `json.NewDecoder(r).Decode(&v)`;
    numbers as `GoNumber` (`UseNumber`) or, with `precise=False`, as float64.

    Raises ValueError on an empty or malformed document (Go returns `io.EOF` or a syntax error).
    """
    text = _text(data).lstrip(_WS)
    if not text:
        raise ValueError("EOF")
    value, _ = (_PRECISE if precise else _FLOAT64).raw_decode(text)
    return value


def decode_first_exact(data: bytes) -> tuple[Any, bool]:
    """`decode_first(data)`, but with int literals below 2**53 in magnitude as `int` when every number
    of the value is such an int: `(value, True)`, a tree `dumps_exact` encodes as `dumps` would encode
    `decode_first`'s. Otherwise `(decode_first(data), False)`."""
    text = _text(data).lstrip(_WS)
    if not text:
        raise ValueError("EOF")
    try:
        value, _ = _EXACT.raw_decode(text)
        return value, True
    except _NotExact:
        value, _ = _PRECISE.raw_decode(text)
        return value, False


_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}
_NEEDS_ESCAPE = re.compile('["\\\\\x00-\x1f<>&\u2028\u2029\ud800-\udfff]')


def _escape_char(match: re.Match[str]) -> str:
    ch = match.group()
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    if "\ud800" <= ch <= "\udfff":
        return "\ufffd"  # a lone surrogate is invalid UTF-8 to Go
    return f"\\u{ord(ch):04x}"


def _string(s: str) -> str:
    return '"' + _NEEDS_ESCAPE.sub(_escape_char, s) + '"'


def _float(f: float) -> str:
    """Go's float64 formatting: shortest digits, plain notation for 1e-6 <= |f| < 1e21."""
    if f != f or f in (float("inf"), float("-inf")):
        raise ValueError(f"json: unsupported value: {f}")
    if f == 0:
        return "-0" if str(f).startswith("-") else "0"
    if 1e-6 <= abs(f) < 1e21:
        return format(decimal.Decimal(repr(f)).normalize(), "f")
    mantissa, _, exp = repr(f).partition("e")
    exponent = int(exp)
    digits = f"{abs(exponent):02d}" if exponent >= 0 else str(abs(exponent))
    return f"{mantissa}e{'+' if exponent >= 0 else '-'}{digits}"


def _encode(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(_string(value))
    elif isinstance(value, GoNumber):
        out.append(value.literal)
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, float):
        out.append(_float(value))
    elif isinstance(value, dict):
        out.append("{")
        for i, key in enumerate(sorted(value)):
            if i:
                out.append(",")
            out.append(_string(str(key)))
            out.append(":")
            _encode(value[key], out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _encode(item, out)
        out.append("]")
    else:
        raise TypeError(f"json: unsupported type: {type(value).__name__}")


def dumps(value: Any) -> bytes:
    """Encode like Go's `json.Marshal` of maps, slices and scalars."""
    out: list[str] = []
    _encode(value, out)
    return "".join(out).encode("utf-8")


# The C encoder writes exactly `dumps`'s bytes for dict(str keys)/list/str/int/bool/None trees: keys sorted
# by code point, `"` `\\` \b \f \n \r \t escaped by name, other controls as lowercase \u00xx, everything
# else raw. Only Go's HTML-safe escapes are missing; those characters can only occur inside strings.
_C_ENCODER = json.JSONEncoder(
    ensure_ascii=False, check_circular=False, allow_nan=False, sort_keys=True, separators=(",", ":")
)


_HTML_ESCAPES = tuple((char, _ESCAPES[char]) for char in "<>&\u2028\u2029")


def dumps_exact(value: Any) -> bytes:
    """`dumps(value)` for a value from `loads_float64_exact` that reported exact, via the C encoder.

    Only for dict (str keys)/list/str/int/bool/None trees: floats would print in Python's format, not Go's.
    """
    text = _C_ENCODER.encode(value)
    for char, escape in _HTML_ESCAPES:
        if char in text:  # `in` is a memchr; `replace` counts the slow way even when nothing matches
            text = text.replace(char, escape)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: the slow path writes them as U+FFFD, as Go does
        return dumps(value)
