"""Routing rules of one subscription, as daprd's `findMatchingRoute`: the first rule whose `match` holds
picks the path; no match means no delivery; an evaluation error is a routing failure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sidecar.pubsub.cel import CelError, CelEvalError, Expression, compile_expression

__all__ = ["CelError", "CelEvalError", "Rule", "compile_rule", "select_path"]


@dataclass(frozen=True)
class Rule:
    """One `{match, path}` pair; `expression` is None for an unconditional rule."""

    match: str
    path: str
    expression: Expression | None = None


def compile_rule(match: str, path: str) -> Rule:
    """Compile a rule as daprd's `createRoutingRule` (blank match = always); raises CelError."""
    text = match.strip()
    return Rule(match=text, path=path, expression=compile_expression(text) if text else None)


def select_path(rules: Sequence[Rule], event: Any) -> str | None:
    """The path of the first matching rule, or None; raises CelEvalError when a match fails."""
    for rule in rules:
        if rule.expression is None or rule.expression.evaluate(event):
            return rule.path
    return None
