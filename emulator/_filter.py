"""OData ``$filter`` for the emulated Dataverse tables that take more than one fixed query shape.

The subset a client of bots, bot components and the like needs: comparisons (``eq``, ``ne``,
``gt``, ``ge``, ``lt``, ``le``) of a column with a literal (string with doubled quotes, GUID,
number, ``null``, ``true`` / ``false``, ISO date-time), ``contains`` / ``startswith`` /
``endswith``, ``Microsoft.Dynamics.CRM.In(PropertyName='col',PropertyValues=[...])``, ``and``,
``or``, ``not`` and parentheses. Strings compare case-insensitively, as Dataverse does. Anything
else is a 400 naming what was not understood, never a silent match-all.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

Row = dict[str, Any]
Predicate = Callable[[Row], bool]

TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<punct>[(),\[\]=])"
    r"|(?P<guid>[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\b)"
    r"|(?P<word>[A-Za-z_][\w.]*|[0-9][0-9A-Fa-f:.TZ+-]*))"
)
GUID = re.compile(r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$")
DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$")
COMPARISONS = {"eq", "ne", "gt", "ge", "lt", "le"}
FUNCTIONS = {"contains", "startswith", "endswith"}
IN_FUNCTION = "microsoft.dynamics.crm.in"


class FilterError(ValueError):
    """A ``$filter`` the emulator does not understand, or one naming an unknown column."""


def compile_filter(raw: str, columns: tuple[str, ...], entity_type: str) -> Predicate:
    """A predicate over rows (dicts keyed by column) for ``raw``; ``FilterError`` when it is not valid."""
    tokens = _tokenize(raw)
    parser = _Parser(tokens, columns, entity_type)
    predicate = parser.expression()
    if parser.position != len(tokens):
        raise FilterError(
            f"Syntax error at position {parser.position} in $filter: unexpected '{tokens[parser.position]}'."
        )
    return predicate


def _tokenize(raw: str) -> list[str]:
    tokens, position = [], 0
    while position < len(raw):
        if raw[position:].strip() == "":
            break
        match = TOKEN.match(raw, position)
        if match is None or match.end() == position:
            raise FilterError(f"Syntax error at position {position} in $filter.")
        tokens.append(match.group(match.lastgroup or "word"))
        position = match.end()
    return tokens


def _literal(token: str) -> Any:
    if token.startswith("'"):
        return token[1:-1].replace("''", "'")
    lowered = token.lower()
    if lowered in ("null", "true", "false"):
        return {"null": None, "true": True, "false": False}[lowered]
    if GUID.match(token):
        return token.lower()
    if DATETIME.match(token):
        return datetime.fromisoformat(token)
    try:
        return float(token) if "." in token else int(token)
    except ValueError:
        raise FilterError(f"'{token}' is not a literal the emulator understands in $filter.") from None


def _normal(value: Any, like: Any) -> Any:
    """Bring a row value and a literal to comparable forms (case-insensitive strings, parsed times)."""
    if isinstance(like, datetime) and isinstance(value, str):
        return datetime.fromisoformat(value)
    if isinstance(value, str):
        return value.lower()
    return value


def _compare(op: str, left: Any, right: Any) -> bool:
    if op in ("eq", "ne"):
        return bool(left == right) == (op == "eq")
    if left is None or right is None:
        return False
    try:
        return bool({"gt": left > right, "ge": left >= right, "lt": left < right, "le": left <= right}[op])
    except TypeError:
        return False


class _Parser:
    def __init__(self, tokens: list[str], columns: tuple[str, ...], entity_type: str) -> None:
        self.tokens, self.position = tokens, 0
        self.columns, self.entity_type = columns, entity_type

    def _peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def _take(self, expected: str | None = None) -> str:
        token = self._peek()
        if token is None or (expected is not None and token.lower() != expected.lower()):
            raise FilterError(
                f"Syntax error in $filter: expected '{expected or 'a term'}' at position {self.position}."
            )
        self.position += 1
        return token

    def _column(self, name: str) -> str:
        if name not in self.columns:
            raise FilterError(f"Could not find a property named '{name}' on type '{self.entity_type}'.")
        return name

    def expression(self) -> Predicate:
        terms = [self._term()]
        while (self._peek() or "").lower() == "or":
            self._take()
            terms.append(self._term())
        return terms[0] if len(terms) == 1 else lambda row: any(term(row) for term in terms)

    def _term(self) -> Predicate:
        factors = [self._factor()]
        while (self._peek() or "").lower() == "and":
            self._take()
            factors.append(self._factor())
        return factors[0] if len(factors) == 1 else lambda row: all(factor(row) for factor in factors)

    def _factor(self) -> Predicate:
        token = self._take()
        lowered = token.lower()
        if lowered == "not":
            inner = self._factor()
            return lambda row: not inner(row)
        if token == "(":
            inner = self.expression()
            self._take(")")
            return inner
        if lowered in FUNCTIONS:
            return self._function(lowered)
        if lowered == IN_FUNCTION:
            return self._in()
        column = self._column(token)
        op = self._take().lower()
        if op not in COMPARISONS:
            raise FilterError(
                f"Syntax error in $filter: '{op}' is not a comparison operator the emulator knows."
            )
        value = _literal(self._take())
        return lambda row: _compare(op, _normal(row.get(column), value), _normal(value, value))

    def _function(self, name: str) -> Predicate:
        self._take("(")
        column = self._column(self._take())
        self._take(",")
        needle = _literal(self._take())
        self._take(")")
        if not isinstance(needle, str):
            raise FilterError(f"The second argument of {name} must be a string literal.")
        needle = needle.lower()
        test = {"contains": str.__contains__, "startswith": str.startswith, "endswith": str.endswith}[name]
        return lambda row: isinstance(row.get(column), str) and test(row[column].lower(), needle)

    def _in(self) -> Predicate:
        self._take("(")
        self._take("PropertyName")
        self._take("=")
        column = self._column(str(_literal(self._take())))
        self._take(",")
        self._take("PropertyValues")
        self._take("=")
        self._take("[")
        values = [_normal(_literal(self._take()), None)]
        while self._peek() == ",":
            self._take()
            values.append(_normal(_literal(self._take()), None))
        self._take("]")
        self._take(")")
        return lambda row: _normal(row.get(column), None) in values
