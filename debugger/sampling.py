"""Sampling rules of a debug session: a small, safe expression language (no eval), parsed by hand.

    http.response.status_code == 503
    http.method == "POST" && http.path ^= "/orders"
    !(route.name == "health") && (latency.total_ms >= 500 || http.response.status_code >= 500)

Grammar (`&&` binds tighter than `||`)::

    expression := or
    or         := and ("||" and)*
    and        := unary ("&&" unary)*
    unary      := "!" unary | "(" or ")" | comparison
    comparison := FIELD OPERATOR (STRING | INTEGER)

Text fields take a double-quoted string and `==`, `!=`, `^=` (starts with), `=^` (ends with) or `contains`;
number fields take an integer and `==`, `!=`, `<`, `<=`, `>`, `>=`. Regular expressions are refused
(a rule runs on every request of the gateway). Anything wrong raises `ParseError`, and nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from debugger.models import SamplingKind

MAX_LENGTH = 1024
MAX_DEPTH = 16
MAX_COMPARISONS = 32

TEXT_FIELDS = frozenset({
    "http.method", "http.path", "http.host", "http.scheme", "net.src.ip",
    "route.id", "route.name", "service.id", "service.name", "consumer.id", "consumer.username",
})
NUMBER_FIELDS = frozenset({
    "http.response.status_code", "latency.total_ms", "latency.upstream_ms", "latency.kong_ms",
})
HEADER_PREFIX = "http.request.header."
TEXT_OPERATORS = ("==", "!=", "^=", "=^", "contains")
NUMBER_OPERATORS = ("==", "!=", "<", "<=", ">", ">=")
_HEADER_NAME = re.compile(r"[a-z0-9_-]{1,64}")
_ENTITY_REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._~-]{0,127}")


class ParseError(ValueError):
    """A rule that cannot be used; `position` is the 0-based character offset of the problem."""

    def __init__(self, message: str, position: int = 0):
        super().__init__(message)
        self.message = message
        self.position = position

    def __str__(self):
        return f"{self.message} (at character {self.position + 1})"


# --- syntax tree ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Comparison:
    field: str
    operator: str
    value: str | int

    def matches(self, facts: Mapping[str, object]) -> bool:
        actual = facts.get(self.field)
        if actual is None:
            return self.operator == "!="
        if isinstance(self.value, int):
            if isinstance(actual, bool) or not isinstance(actual, int | float):
                return False
            return _NUMBER_TESTS[self.operator](actual, self.value)
        actual = str(actual).upper() if self.field == "http.method" else str(actual)
        return _TEXT_TESTS[self.operator](actual, self.value)

    def source(self) -> str:
        value = str(self.value) if isinstance(self.value, int) else _quote(self.value)
        return f"{self.field} {self.operator} {value}"


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node

    def matches(self, facts) -> bool:
        return not self.operand.matches(facts)

    def source(self) -> str:
        inner = self.operand.source()
        return f"!{inner}" if isinstance(self.operand, Not) else f"!({inner})"


@dataclass(frozen=True, slots=True)
class AllOf:
    operands: tuple

    def matches(self, facts) -> bool:
        return all(operand.matches(facts) for operand in self.operands)

    def source(self) -> str:
        return " && ".join(f"({o.source()})" if isinstance(o, AnyOf) else o.source() for o in self.operands)


@dataclass(frozen=True, slots=True)
class AnyOf:
    operands: tuple

    def matches(self, facts) -> bool:
        return any(operand.matches(facts) for operand in self.operands)

    def source(self) -> str:
        return " || ".join(operand.source() for operand in self.operands)


Node = Comparison | Not | AllOf | AnyOf

_NUMBER_TESTS = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}
_TEXT_TESTS = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b, "^=": str.startswith,
    "=^": str.endswith, "contains": lambda a, b: b in a,
}


def _quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{escaped}"'


# --- tokens -----------------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""(?P<space>[ \t\r\n]+)
      | (?P<symbol>&&|\|\||==|!=|\^=|=\^|<=|>=|<|>|!|\(|\)|~|=)
      | (?P<number>[0-9]+)
      | (?P<name>[A-Za-z_][A-Za-z0-9_.-]*)
      | (?P<string>")""",
    re.VERBOSE,
)
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t"}


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # symbol | number | name | string | end
    text: str
    position: int
    value: str | int | None = None


def _tokenize(source: str) -> list[_Token]:
    tokens, index = [], 0
    while index < len(source):
        match = _TOKEN.match(source, index)
        if match is None:
            raise ParseError(f"unexpected character {source[index]!r}", index)
        kind = match.lastgroup
        if kind == "string":
            token, index = _read_string(source, index)
            tokens.append(token)
            continue
        text = match.group()
        if kind == "number":
            if len(text) > 9:
                raise ParseError("number too large", index)
            tokens.append(_Token(kind, text, index, int(text)))
        elif kind != "space":
            tokens.append(_Token(kind, text, index))
        index = match.end()
    tokens.append(_Token("end", "", len(source)))
    return tokens


def _read_string(source: str, start: int) -> tuple[_Token, int]:
    chars, index = [], start + 1
    while index < len(source):
        char = source[index]
        if char == '"':
            return _Token("string", source[start:index + 1], start, "".join(chars)), index + 1
        if char == "\\":
            escaped = source[index + 1:index + 2]
            if escaped not in _ESCAPES:
                raise ParseError("unknown escape in string (use \\\" \\\\ \\n \\t)", index)
            chars.append(_ESCAPES[escaped])
            index += 2
            continue
        if char in "\r\n":
            raise ParseError("line break inside a string", index)
        chars.append(char)
        index += 1
    raise ParseError("unterminated string", start)


# --- parser -----------------------------------------------------------------------------------------------


class _Parser:
    def __init__(self, tokens: list[_Token]):
        self.tokens = tokens
        self.index = 0
        self.comparisons = 0

    @property
    def current(self) -> _Token:
        return self.tokens[self.index]

    def take(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def at(self, text: str) -> bool:
        return self.current.kind == "symbol" and self.current.text == text

    def parse(self) -> Node:
        node = self.any_of(0)
        if self.current.kind != "end":
            raise ParseError(f"unexpected {self.current.text!r}; expected && or ||", self.current.position)
        return node

    def any_of(self, depth: int) -> Node:
        operands = [self.all_of(depth)]
        while self.at("||"):
            self.take()
            operands.append(self.all_of(depth))
        return operands[0] if len(operands) == 1 else AnyOf(tuple(operands))

    def all_of(self, depth: int) -> Node:
        operands = [self.unary(depth)]
        while self.at("&&"):
            self.take()
            operands.append(self.unary(depth))
        return operands[0] if len(operands) == 1 else AllOf(tuple(operands))

    def unary(self, depth: int) -> Node:
        if depth >= MAX_DEPTH:
            raise ParseError(f"nested more than {MAX_DEPTH} levels deep", self.current.position)
        if self.at("!"):
            self.take()
            return Not(self.unary(depth + 1))
        if self.at("("):
            opening = self.take()
            node = self.any_of(depth + 1)
            if not self.at(")"):
                raise ParseError("missing ')' to close '('", opening.position)
            self.take()
            return node
        return self.comparison()

    def comparison(self) -> Comparison:
        token = self.take()
        if token.kind != "name":
            found = "end of rule" if token.kind == "end" else repr(token.text)
            raise ParseError(f"expected a field such as http.response.status_code, found {found}", token.position)
        field = token.text
        is_number = _check_field(field, token.position)
        operator = self.take()
        allowed = NUMBER_OPERATORS if is_number else TEXT_OPERATORS
        if operator.kind == "symbol" and operator.text == "~":
            raise ParseError("regular expressions (~) are not supported in sampling rules", operator.position)
        if operator.kind not in ("symbol", "name") or operator.text not in allowed:
            found = "end of rule" if operator.kind == "end" else repr(operator.text)
            raise ParseError(f"{field} takes one of {' '.join(allowed)}; found {found}", operator.position)
        value = self.take()
        if is_number and value.kind != "number":
            raise ParseError(f"{field} is compared with a whole number, like 503", value.position)
        if not is_number and value.kind != "string":
            raise ParseError(f'{field} is compared with a quoted string, like "POST"', value.position)
        if field == "http.response.status_code" and not 100 <= value.value <= 599:
            raise ParseError("HTTP status codes are between 100 and 599", value.position)
        if field == "http.method" and not value.value.isupper():
            raise ParseError('HTTP methods are upper case, like "POST"', value.position)
        self.comparisons += 1
        if self.comparisons > MAX_COMPARISONS:
            raise ParseError(f"more than {MAX_COMPARISONS} comparisons", token.position)
        return Comparison(field, operator.text, value.value)


def _check_field(field: str, position: int) -> bool:
    """True for a number field, False for a text field; ParseError for an unknown one."""
    if field in NUMBER_FIELDS:
        return True
    if field in TEXT_FIELDS:
        return False
    if field.startswith(HEADER_PREFIX) and _HEADER_NAME.fullmatch(field.removeprefix(HEADER_PREFIX)):
        return False
    if field.startswith(HEADER_PREFIX):
        raise ParseError("header names are lower case letters, digits, '-' and '_'", position)
    known = ", ".join(sorted(TEXT_FIELDS | NUMBER_FIELDS))
    raise ParseError(f"unknown field {field!r}; known fields: {known}, {HEADER_PREFIX}<name>", position)


def parse(source: str) -> Node:
    """The syntax tree of a rule. Raises ParseError (and nothing else) for any input."""
    if not isinstance(source, str):
        raise ParseError("a rule is text")
    if len(source) > MAX_LENGTH:
        raise ParseError(f"a rule has at most {MAX_LENGTH} characters", MAX_LENGTH)
    if not source.strip():
        raise ParseError("the rule is empty")
    return _Parser(_tokenize(source)).parse()


def normalize(source: str) -> str:
    """The canonical spelling of a rule (single spaces, double quotes)."""
    return parse(source).source()


# --- a session's rule, as the data plane applies it --------------------------------------------------------


def check_entity_reference(value: str) -> str:
    """A route or service given by id or name."""
    value = (value or "").strip()
    if not _ENTITY_REFERENCE.fullmatch(value):
        raise ParseError("give the id or name: letters, digits, '.', '-', '_' or '~', at most 128 characters")
    return value


def check_rule(kind: str, value: str) -> str:
    """The value to store for a rule of `kind`; ParseError when it is not usable."""
    if kind == SamplingKind.NONE:
        return ""
    if kind in (SamplingKind.ROUTE, SamplingKind.SERVICE):
        return check_entity_reference(value)
    if kind == SamplingKind.EXPRESSION:
        parse(value)
        return value.strip()
    raise ParseError(f"unknown kind of sampling rule {kind!r}")


def rule_matches(kind: str, value: str, facts: Mapping[str, object]) -> bool:
    """Whether a request described by `facts` (field → value) is sampled by the rule."""
    if kind == SamplingKind.NONE:
        return True
    if kind in (SamplingKind.ROUTE, SamplingKind.SERVICE):
        return value in (facts.get(f"{kind}.id"), facts.get(f"{kind}.name"))
    return parse(value).matches(facts)
