"""A decoded JSON body read the way Go's encoding/json fills daprd's request structs: field names matched
case-insensitively, type errors in Go's words (`Malformed`), a lone UTF-16 surrogate escape read as U+FFFD,
and `any` values holding every number as a float64.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sidecar.gojson import GoNumber

__all__ = [
    "Malformed",
    "any_value",
    "clean",
    "field",
    "integer",
    "kind",
    "string_map",
    "strings",
    "struct",
]

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class Malformed(ValueError):
    """The body does not decode into daprd's request struct (Go's unmarshal error text)."""


def kind(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    # An int or float: a number read by `decode_first_exact`.
    return "number" if isinstance(value, GoNumber | int | float) else "null"


def struct(value: Any, go_type: str) -> Mapping[str, Any]:
    """A JSON object as the fields of Go struct `go_type` (null: none set)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Malformed(f"json: cannot unmarshal {kind(value)} into Go value of type {go_type}")
    # Go matches JSON keys to struct fields case-insensitively.
    return {str(k).lower(): v for k, v in value.items()}


def field(obj: Mapping[str, Any], name: str, type_: type | None = None, where: str = "") -> Any:
    value = obj.get(name.lower())
    if value is not None and type_ is not None and not isinstance(value, type_):
        raise Malformed(
            f"json: cannot unmarshal {kind(value)} into Go struct field {where or name} of type string"
        )
    return clean(value) if isinstance(value, str) else value


def strings(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise Malformed(f"json: cannot unmarshal {kind(value)} into Go struct field {where} of type []string")
    for item in value:
        if not isinstance(item, str):
            raise Malformed(
                f"json: cannot unmarshal {kind(item)} into Go struct field {where} of type string"
            )
    return [clean(item) for item in value]


def string_map(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise Malformed(f"json: cannot unmarshal into Go struct field {where} of type map[string]string")
    return {clean(str(k)): clean(v) for k, v in value.items()}


def integer(value: Any, where: str) -> int:
    if value is None:
        return 0
    if not isinstance(value, GoNumber) or not re.fullmatch(r"-?[0-9]+", value.literal):
        raise Malformed(f"json: cannot unmarshal {kind(value)} into Go struct field {where} of type int")
    return int(value.literal)


def clean(text: str) -> str:
    """Go decodes a lone UTF-16 surrogate escape to U+FFFD."""
    return _LONE_SURROGATE.sub("\ufffd", text)


def any_value(value: Any) -> Any:
    """A decoded value as Go's `any` holds it: every number a float64, lone surrogates replaced."""
    if isinstance(value, GoNumber):
        number = float(value.literal)
        if number in (float("inf"), float("-inf")):
            raise Malformed(f"json: cannot unmarshal number {value.literal} into Go value of type float64")
        return number
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, list):
        return [any_value(v) for v in value]
    if isinstance(value, dict):
        return {clean(str(k)): any_value(v) for k, v in value.items()}
    return value
