"""Lexer and recursive-descent parser for CEL (cel-spec grammar) into a small AST; arithmetic,
bytes/uint literals and other unsupported syntax raise `CelSyntaxError`, so such rules fail at load.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = [
    "And",
    "Binary",
    "Call",
    "CelSyntaxError",
    "Cond",
    "Has",
    "Ident",
    "Index",
    "ListLit",
    "Lit",
    "MapLit",
    "Neg",
    "Node",
    "Not",
    "Or",
    "Select",
    "parse",
]


class CelSyntaxError(ValueError):
    """The text is not a CEL expression this evaluator accepts."""


class Node:
    def children(self) -> Iterator[Node]:
        for value in vars(self).values():
            if isinstance(value, Node):
                yield value
            elif isinstance(value, tuple):
                for item in value:
                    if isinstance(item, Node):
                        yield item
                    elif isinstance(item, tuple):
                        yield from (x for x in item if isinstance(x, Node))


@dataclass(frozen=True)
class Lit(Node):
    value: Any


@dataclass(frozen=True)
class Ident(Node):
    name: str


@dataclass(frozen=True)
class Select(Node):
    operand: Node
    field: str


@dataclass(frozen=True)
class Index(Node):
    operand: Node
    key: Node


@dataclass(frozen=True)
class Call(Node):
    name: str
    target: Node | None
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Has(Node):
    select: Select


@dataclass(frozen=True)
class Not(Node):
    operand: Node


@dataclass(frozen=True)
class Neg(Node):
    operand: Node


@dataclass(frozen=True)
class Binary(Node):
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class And(Node):
    left: Node
    right: Node


@dataclass(frozen=True)
class Or(Node):
    left: Node
    right: Node


@dataclass(frozen=True)
class Cond(Node):
    cond: Node
    then: Node
    otherwise: Node


@dataclass(frozen=True)
class ListLit(Node):
    items: tuple[Node, ...]


@dataclass(frozen=True)
class MapLit(Node):
    entries: tuple[tuple[Node, Node], ...]


# --- lexer ------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+|//[^\n]*)
  | (?P<num>0[xX][0-9a-fA-F]+[uU]?|(?:[0-9]+\.[0-9]+|\.[0-9]+|[0-9]+)(?:[eE][+-]?[0-9]+)?[uU]?)
  | (?P<str>(?:[rR]|[bB]|[rR][bB]|[bB][rR])?(?:'''|\"\"\"|'|\"))
  | (?P<ident>[_a-zA-Z][_a-zA-Z0-9]*)
  | (?P<op>==|!=|<=|>=|&&|\|\||[<>!?:.,()\[\]{}+\-*/%])
    """,
    re.VERBOSE,
)
_SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    "'": "'",
    '"': '"',
    "`": "`",
    "?": "?",
}
_RESERVED = frozenset(
    "as break const continue else for function if import let loop package namespace return var "
    "void while".split()
)


@dataclass(frozen=True)
class _Tok:
    kind: str  # "num", "str", "ident", "op", "end"
    text: str
    value: Any
    pos: int


def _unescape(body: str, pos: int) -> str:
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1 : i + 2]
        if nxt in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[nxt])
            i += 2
        elif nxt in ("x", "X", "u", "U"):
            width = {"x": 2, "X": 2, "u": 4, "U": 8}[nxt]
            hexdigits = body[i + 2 : i + 2 + width]
            if not re.fullmatch(f"[0-9a-fA-F]{{{width}}}", hexdigits):
                raise CelSyntaxError(f"invalid escape sequence at {pos}")
            out.append(chr(int(hexdigits, 16)))
            i += 2 + width
        elif re.fullmatch("[0-3][0-7][0-7]", body[i + 1 : i + 4]):
            out.append(chr(int(body[i + 1 : i + 4], 8)))
            i += 4
        else:
            raise CelSyntaxError(f"invalid escape sequence at {pos}")
    return "".join(out)


def _tokens(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise CelSyntaxError(f"unexpected character {text[pos]!r} at {pos}")
        kind = m.lastgroup or ""
        if kind == "ws":
            pos = m.end()
            continue
        if kind == "str":
            prefix = m.group().rstrip("'\"")
            quote = m.group()[len(prefix) :]
            if "b" in prefix.lower():
                raise CelSyntaxError(f"bytes literals are not supported (at {pos})")
            end = text.find(quote, m.end())
            if len(quote) == 1:  # a single-quoted string ends at an unescaped quote on the same line
                j = m.end()
                while j < len(text) and text[j] != quote and text[j] != "\n":
                    j += 2 if text[j] == "\\" and not prefix else 1
                end = j if j < len(text) and text[j] == quote else -1
            if end < 0:
                raise CelSyntaxError(f"unterminated string literal at {pos}")
            body = text[m.end() : end]
            literal = body if prefix else _unescape(body, pos)
            toks.append(_Tok("str", text[pos : end + len(quote)], literal, pos))
            pos = end + len(quote)
            continue
        token = m.group()
        value: Any = token
        if kind == "num":
            if token[-1] in "uU":
                raise CelSyntaxError(f"unsigned integer literals are not supported: {token}")
            if token.lower().startswith("0x"):
                value = int(token, 16)
            elif re.fullmatch("[0-9]+", token):
                value = int(token)
            else:
                value = float(token)
        if kind == "op" and token in "+*/%":
            raise CelSyntaxError(f"arithmetic operator {token!r} is not supported (at {pos})")
        toks.append(_Tok(kind, token, value, pos))
        pos = m.end()
    toks.append(_Tok("end", "", None, len(text)))
    return toks


# --- parser -----------------------------------------------------------------------------------

_RELATIONS = ("==", "!=", "<", "<=", ">", ">=")


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.i = 0

    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def _at(self, *ops: str) -> bool:
        return self.tok.kind in ("op", "ident") and self.tok.text in ops

    def _take(self) -> _Tok:
        tok = self.tok
        self.i += 1
        return tok

    def _expect(self, op: str) -> None:
        if not self._at(op):
            found = self.tok.text or "end of input"
            raise CelSyntaxError(f"expected {op!r} at {self.tok.pos}, found {found!r}")
        self.i += 1

    def parse(self) -> Node:
        node = self.expr()
        if self.tok.kind != "end":
            raise CelSyntaxError(f"unexpected {self.tok.text!r} at {self.tok.pos}")
        return node

    def expr(self) -> Node:
        cond = self.or_()
        if self._at("?"):
            self._take()
            then = self.or_()
            self._expect(":")
            return Cond(cond, then, self.expr())
        return cond

    def or_(self) -> Node:
        node = self.and_()
        while self._at("||"):
            self._take()
            node = Or(node, self.and_())
        return node

    def and_(self) -> Node:
        node = self.relation()
        while self._at("&&"):
            self._take()
            node = And(node, self.relation())
        return node

    def relation(self) -> Node:
        node = self.unary()
        while (self.tok.kind == "op" and self.tok.text in _RELATIONS) or (
            self.tok.kind == "ident" and self.tok.text == "in"
        ):
            op = self._take().text
            node = Binary(op, node, self.unary())
        return node

    def unary(self) -> Node:
        if self._at("!"):
            self._take()
            return Not(self.unary())
        if self._at("-"):
            self._take()
            operand = self.unary()
            if isinstance(operand, Lit) and isinstance(operand.value, int | float):
                return Lit(-operand.value)
            return Neg(operand)
        return self.member()

    def member(self) -> Node:
        node = self.primary()
        while True:
            if self._at("."):
                self._take()
                name = self._ident()
                if self._at("("):
                    node = Call(name, node, self._args(")"))
                else:
                    node = Select(node, name)
            elif self._at("["):
                self._take()
                key = self.expr()
                self._expect("]")
                node = Index(node, key)
            else:
                return node

    def _ident(self) -> str:
        tok = self._take()
        if tok.kind != "ident":
            raise CelSyntaxError(f"expected an identifier at {tok.pos}, found {tok.text!r}")
        return tok.text

    def _args(self, close: str) -> tuple[Node, ...]:
        self._take()  # the opening bracket
        args: list[Node] = []
        while not self._at(close):
            args.append(self.expr())
            if not self._at(close):
                self._expect(",")
        self._expect(close)
        return tuple(args)

    def primary(self) -> Node:
        tok = self.tok
        if tok.kind in ("num", "str"):
            self._take()
            return Lit(tok.value)
        if tok.kind == "ident":
            self._take()
            if tok.text in ("true", "false"):
                return Lit(tok.text == "true")
            if tok.text == "null":
                return Lit(None)
            if tok.text == "in" or tok.text in _RESERVED:
                raise CelSyntaxError(f"reserved word {tok.text!r} at {tok.pos}")
            if self._at("("):
                args = self._args(")")
                if tok.text == "has":
                    if len(args) != 1 or not isinstance(args[0], Select):
                        raise CelSyntaxError("has() takes one field selection, e.g. has(event.data.x)")
                    return Has(args[0])
                return Call(tok.text, None, args)
            return Ident(tok.text)
        if self._at("("):
            self._take()
            node = self.expr()
            self._expect(")")
            return node
        if self._at("["):
            return ListLit(self._args("]"))
        if self._at("{"):
            self._take()
            entries: list[tuple[Node, Node]] = []
            while not self._at("}"):
                key = self.expr()
                self._expect(":")
                entries.append((key, self.expr()))
                if not self._at("}"):
                    self._expect(",")
            self._take()
            return MapLit(tuple(entries))
        if self._at("."):
            raise CelSyntaxError(f"qualified root identifiers are not supported (at {tok.pos})")
        found = tok.text or "end of input"
        raise CelSyntaxError(f"unexpected {found!r} at {tok.pos}")


def parse(text: str) -> Node:
    """Parse one CEL expression; raises CelSyntaxError."""
    if not text.strip():
        raise CelSyntaxError("empty expression")
    return _Parser(text).parse()
