"""A safe evaluator for the CEL subset routing rules use (`event.*`, comparisons, `&&`/`||`, `has`,
`size`, string functions); anything else is refused when the rule is compiled, never guessed.
Semantics follow cel-go (missing keys are errors that `&&`/`||` absorb); `matches` uses Python `re`.
"""

from __future__ import annotations

import decimal
import math
import re
from collections.abc import Callable
from typing import Any

from sidecar.pubsub.celparse import (
    And,
    Binary,
    Call,
    CelSyntaxError,
    Cond,
    Has,
    Ident,
    Index,
    ListLit,
    Lit,
    MapLit,
    Neg,
    Node,
    Not,
    Or,
    Select,
    parse,
)

__all__ = ["CelError", "CelEvalError", "CelSyntaxError", "Expression", "compile_expression"]


class CelError(ValueError):
    """A routing expression that is invalid or outside the supported subset; raised at load."""


class CelEvalError(Exception):
    """Evaluation failed for this event (e.g. a missing key); daprd then dead-letters or drops it."""


_VARIABLES = frozenset({"event"})
_METHODS = frozenset({"contains", "startsWith", "endsWith", "matches", "size"})
_FUNCTIONS = frozenset({"size", "matches", "int", "double", "string"})
_INT64 = (-(2**63), 2**63 - 1)


def _check(node: Node, source: str, variables: frozenset[str] = _VARIABLES) -> None:
    """Reject what we cannot evaluate faithfully, with a message naming the construct."""
    if isinstance(node, Ident) and node.name not in variables:
        defined = ", ".join(f"`{v}`" for v in sorted(variables))
        verb = "is" if len(variables) == 1 else "are"
        raise CelError(f"{source!r}: undeclared reference to '{node.name}' (only {defined} {verb} defined)")
    if isinstance(node, Call):
        allowed = _METHODS if node.target is not None else _FUNCTIONS
        if node.name not in allowed:
            kind = "method" if node.target is not None else "function"
            raise CelError(
                f"{source!r}: {kind} '{node.name}' is not supported by the embedded sidecar "
                f"(supported: {', '.join(sorted(allowed))})"
            )
    for child in node.children():
        _check(child, source, variables)


class Expression:
    """A compiled `match` expression; `evaluate` returns its boolean result for one CloudEvent."""

    def __init__(self, source: str, root: Node) -> None:
        self.source = source
        self._root = root

    def evaluate(self, event: Any) -> bool:
        result = _eval(self._root, {"event": event})
        if not isinstance(result, bool):
            raise CelEvalError(f"the result of match expression {self.source} was not a boolean")
        return result

    def value(self, env: dict[str, Any]) -> Any:
        """The result over other variables (those given to `compile_expression`); raises CelEvalError."""
        return _eval(self._root, env)

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"


def compile_expression(source: str, variables: frozenset[str] = _VARIABLES) -> Expression:
    """Parse and vet one expression over `variables` (a routing rule's `event` unless given); raises
    CelError (with the reason) when it cannot be supported."""
    try:
        root = parse(source)
    except CelSyntaxError as exc:
        raise CelError(f"{source!r}: {exc}") from exc
    _check(root, source, variables)
    return Expression(source, root)


# --- evaluation -------------------------------------------------------------------------------


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _type_name(v: Any) -> str:
    if v is None:
        return "null_type"
    return {bool: "bool", int: "int", float: "double", str: "string", list: "list", dict: "map"}.get(
        type(v), type(v).__name__
    )


def _no_overload(op: str, *args: Any) -> CelEvalError:
    kinds = ", ".join(_type_name(a) for a in args)
    return CelEvalError(f"no such overload: {op}({kinds})")


def _equal(a: Any, b: Any) -> bool:
    if _is_num(a) and _is_num(b):
        return not (isinstance(a, float) and math.isnan(a)) and a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    return bool(a == b)


def _compare(op: str, a: Any, b: Any) -> bool:
    comparable = (
        (_is_num(a) and _is_num(b))
        or (isinstance(a, str) and isinstance(b, str))
        or (isinstance(a, bool) and isinstance(b, bool))
    )
    if not comparable:
        raise _no_overload(op, a, b)
    if any(isinstance(v, float) and math.isnan(v) for v in (a, b)):
        raise CelEvalError("NaN values cannot be ordered")
    if op == "<":
        return bool(a < b)
    if op == "<=":
        return bool(a <= b)
    if op == ">":
        return bool(a > b)
    return bool(a >= b)


def _member(container: Any, key: Any) -> Any:
    if isinstance(container, dict):
        if isinstance(key, str) and key in container:
            return container[key]
        raise CelEvalError(f"no such key: {key}")
    if isinstance(container, list) and _is_num(key):
        if isinstance(key, float) and not key.is_integer():
            raise CelEvalError(f"invalid list index: {key}")
        i = int(key)
        if 0 <= i < len(container):
            return container[i]
        raise CelEvalError(f"index out of bounds: {i}")
    raise CelEvalError(f"no such key: {key} on {_type_name(container)}")


def _logic(node: And | Or, env: dict[str, Any]) -> bool:
    # cel-go: `false && error` is false and `true || error` is true, in either order
    decisive = isinstance(node, Or)
    outcomes: list[Any] = []
    for side in (node.left, node.right):
        try:
            value = _eval(side, env)
        except CelEvalError as exc:
            outcomes.append(exc)
            continue
        if value is decisive:
            return bool(decisive)
        outcomes.append(value)
    for outcome in outcomes:
        if isinstance(outcome, CelEvalError):
            raise outcome
    if all(isinstance(o, bool) for o in outcomes):
        return not decisive
    raise _no_overload("_&&_" if isinstance(node, And) else "_||_", *outcomes)


def _to_int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int | float | str):
        raise _no_overload("int", v)
    if isinstance(v, str):
        if not re.fullmatch(r"[+-]?[0-9]+", v):
            raise CelEvalError(f"cannot convert {v!r} to int")
        result = int(v)
    elif isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            raise CelEvalError("int range error")
        result = int(v)
    else:
        result = v
    if not _INT64[0] <= result <= _INT64[1]:
        raise CelEvalError("int range error")
    return result


def _to_double(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float | str):
        raise _no_overload("double", v)
    try:
        return float(v)
    except ValueError as exc:
        raise CelEvalError(f"cannot convert {v!r} to double") from exc


def _format_double(f: float) -> str:
    """Go's `fmt.Sprintf("%g", f)`, cel-go's double-to-string: shortest digits, exponent form
    when the decimal exponent is < -4 or >= 6."""
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    if f == 0:
        return "-0" if math.copysign(1.0, f) < 0 else "0"
    sign, digit_tuple, exp = decimal.Decimal(repr(f)).normalize().as_tuple()
    assert isinstance(exp, int)
    digits = "".join(map(str, digit_tuple))
    prefix = "-" if sign else ""
    point = len(digits) + exp  # digits before the decimal point
    x = point - 1
    if x < -4 or x >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{prefix}{mantissa}e{'+' if x >= 0 else '-'}{abs(x):02d}"
    if point <= 0:
        return f"{prefix}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return prefix + digits + "0" * (point - len(digits))
    return f"{prefix}{digits[:point]}.{digits[point:]}"


def _to_string(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _format_double(v)
    raise _no_overload("string", v)


def _str_method(name: str, target: Any, arg: Any) -> bool:
    if not isinstance(target, str) or not isinstance(arg, str):
        raise _no_overload(name, target, arg)
    if name == "contains":
        return arg in target
    if name == "startsWith":
        return target.startswith(arg)
    if name == "endsWith":
        return target.endswith(arg)
    try:
        return re.search(arg, target) is not None
    except re.error as exc:
        raise CelEvalError(f"invalid regular expression {arg!r}: {exc}") from exc


def _size(v: Any) -> int:
    if isinstance(v, str | list | dict):
        return len(v)
    raise _no_overload("size", v)


_CONVERSIONS: dict[str, Callable[[Any], Any]] = {
    "int": _to_int,
    "double": _to_double,
    "string": _to_string,
    "size": _size,
}


def _call(node: Call, env: dict[str, Any]) -> Any:
    args = [_eval(a, env) for a in node.args]
    if node.target is not None:
        args.insert(0, _eval(node.target, env))
    if node.name in ("contains", "startsWith", "endsWith", "matches"):
        if len(args) != 2:
            raise CelEvalError(f"{node.name} expects a string receiver and one argument")
        return _str_method(node.name, args[0], args[1])
    if len(args) != 1:
        raise CelEvalError(f"{node.name} expects one argument")
    return _CONVERSIONS[node.name](args[0])


def _eval(node: Node, env: dict[str, Any]) -> Any:
    if isinstance(node, Lit):
        return node.value
    if isinstance(node, Ident):
        return env[node.name]
    if isinstance(node, Select):
        return _member(_eval(node.operand, env), node.field)
    if isinstance(node, Index):
        return _member(_eval(node.operand, env), _eval(node.key, env))
    if isinstance(node, Has):
        operand = _eval(node.select.operand, env)
        if not isinstance(operand, dict):
            raise CelEvalError(f"invalid type for field selection: {_type_name(operand)}")
        return node.select.field in operand
    if isinstance(node, And | Or):
        return _logic(node, env)
    if isinstance(node, Not):
        value = _eval(node.operand, env)
        if not isinstance(value, bool):
            raise _no_overload("!_", value)
        return not value
    if isinstance(node, Neg):
        value = _eval(node.operand, env)
        if not _is_num(value):
            raise _no_overload("-_", value)
        return -value
    if isinstance(node, Cond):
        cond = _eval(node.cond, env)
        if not isinstance(cond, bool):
            raise _no_overload("_?_:_", cond)
        return _eval(node.then if cond else node.otherwise, env)
    if isinstance(node, Binary):
        left, right = _eval(node.left, env), _eval(node.right, env)
        if node.op == "==":
            return _equal(left, right)
        if node.op == "!=":
            return not _equal(left, right)
        if node.op == "in":
            if isinstance(right, list):
                return any(_equal(left, item) for item in right)
            if isinstance(right, dict):
                return isinstance(left, str) and left in right
            raise _no_overload("@in", left, right)
        return _compare(node.op, left, right)
    if isinstance(node, ListLit):
        return [_eval(item, env) for item in node.items]
    if isinstance(node, MapLit):
        return {_eval(k, env): _eval(v, env) for k, v in node.entries}
    if isinstance(node, Call):
        return _call(node, env)
    raise CelEvalError(f"unsupported node {type(node).__name__}")  # pragma: no cover
