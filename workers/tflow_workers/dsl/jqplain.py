"""Route filters and mappings simple enough to answer in Python, exactly as jq answers them.

Most routes compare one field of the event with a constant (`${ .data.severity == "high" }`,
`${ .data.size > 100 }`) or build the flow's input from fields and constants
(`${ {uri: .data.documentUri, kind: "pdf"} }`). jq answers each only after parsing the
event's JSON text again, which is most of a route's matching cost. This module
recognises those two shapes:

* a comparison `PATH OP LITERAL`: OP one of `==`, `!=`, `<`, `<=`, `>`, `>=`; LITERAL
  `null`, `true`, `false`, an integer within +-2**53 or a string without interpolation;
* an object `{key: VALUE, ...}`: keys plain names or strings, each VALUE a plain path or
  such a literal;

with PATH a plain path (`dsl.jqpaths`). Comparisons follow jq's order of kinds (null <
false < true < numbers < strings < arrays < objects), numbers by value, strings by code
point (jq compares their UTF-8 bytes, which orders the same). Whatever is not exactly
answerable here (indexing a non-object, an integer beyond +-2**53, NaN, odd types) raises
`NotPlain`, and the caller runs the jq program instead, so errors and odd values read the
same as before. Written here because no kept library evaluates jq without the jq engine.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any, Final

from tflow_workers.dsl.jqpaths import NotPlain, as_jq, check_text, plain_path, walk

_EXACT_INT: Final = 2**53
_PATH: Final = r"\.|(?:\.[A-Za-z_][A-Za-z0-9_]*)+"
_STRING: Final = r'"(?:[^"\\]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"'
_LITERAL: Final = rf"null|true|false|-?(?:0|[1-9][0-9]*)|{_STRING}"
_COMPARISON: Final = re.compile(
    rf"^\s*(?P<path>{_PATH})\s*(?P<op>==|!=|<=|>=|<|>)\s*(?P<literal>{_LITERAL})\s*$"
)
_OBJECT: Final = re.compile(r"^\s*\{(?P<body>.*)\}\s*$", re.DOTALL)
_MEMBER: Final = re.compile(
    rf"\s*(?P<key>[A-Za-z_][A-Za-z0-9_]*|{_STRING})\s*:\s*(?P<value>{_PATH}|{_LITERAL})\s*(?:,|$)"
)
# Names jq reads as keywords: as a bare object key they are left to jq.
_KEYWORDS: Final = frozenset(
    [
        "and",
        "or",
        "not",
        "if",
        "then",
        "elif",
        "else",
        "end",
        "as",
        "def",
        "reduce",
        "foreach",
        "try",
        "catch",
        "label",
        "import",
        "include",
        "__loc__",
    ]
)
# jq's order of kinds.
_NULL, _FALSE, _TRUE, _NUMBER, _STRING_KIND, _ARRAY, _OBJECT_KIND = range(7)
_OPERATORS: Final[dict[str, Callable[[int], bool]]] = {
    "==": lambda c: c == 0,
    "!=": lambda c: c != 0,
    "<": lambda c: c < 0,
    "<=": lambda c: c <= 0,
    ">": lambda c: c > 0,
    ">=": lambda c: c >= 0,
}


class PlainProgram:
    """A filter or mapping answered in Python: `first(data)` is what jq's first output
    would be, or raises `NotPlain`."""

    __slots__ = ("first",)

    def __init__(self, first: Callable[[Any], Any]) -> None:
        self.first = first


def plain_program(text: str) -> PlainProgram | None:
    """A Python evaluator for `text` (without `${ }`), or None when it is not one of the
    shapes in the module docstring."""
    found = _COMPARISON.match(text)
    if found is not None:
        path = _path(found["path"])
        literal = _literal(found["literal"])
        if literal is _NO_LITERAL:
            return None
        compare = _OPERATORS[found["op"]]
        key = _sort_key(literal)
        return PlainProgram(lambda data: compare(_compare(_sort_key(walk(path, data)), key)))
    found = _OBJECT.match(text)
    if found is None:
        return None
    members = _members(found["body"])
    if members is None:
        return None

    def build(data: Any) -> Any:
        return {
            key: (as_jq(walk(value, data)) if type(value) is tuple else value)
            for key, value in members
        }

    return PlainProgram(build)


class _NoLiteral:
    pass


_NO_LITERAL: Final = _NoLiteral()


def _path(text: str) -> tuple[str, ...]:
    path = plain_path(text)
    assert path is not None  # the pattern admits only plain paths
    return path


def _literal(text: str) -> Any:
    value = json.loads(text)
    if type(value) is str:
        try:
            return check_text(value)
        except NotPlain:  # a lone surrogate: jq reads it otherwise
            return _NO_LITERAL
    if type(value) is int and not -_EXACT_INT <= value <= _EXACT_INT:
        return _NO_LITERAL
    return value


def _members(body: str) -> list[tuple[str, Any]] | None:
    """`key: value` pairs of an object body; a value is a path (a tuple) or a literal."""
    members: list[tuple[str, Any]] = []
    position = 0
    if not body.strip():
        return None
    while position < len(body):
        found = _MEMBER.match(body, position)
        if found is None or found.end() == position:
            return None
        key = found["key"]
        if key in _KEYWORDS:
            return None
        name = _literal(key) if key.startswith('"') else key
        if name is _NO_LITERAL:
            return None
        value_text = found["value"]
        if value_text.startswith("."):
            value: Any = _path(value_text)
        else:
            value = _literal(value_text)
            if value is _NO_LITERAL:
                return None
        members.append((name, value))
        position = found.end()
    # A trailing comma (`{a: .x,}`) is a jq syntax error: let jq say so.
    if body.rstrip().endswith(","):
        return None
    return members


def _sort_key(value: Any) -> tuple[int, Any]:
    """jq's kind of `value` and what orders it within the kind (None for containers, which
    are only ever compared here with a literal of another kind)."""
    kind = type(value)
    if value is None:
        return (_NULL, None)
    if kind is bool:
        return (_TRUE, None) if value else (_FALSE, None)
    if kind is int:
        if not -_EXACT_INT <= value <= _EXACT_INT:
            raise NotPlain
        return (_NUMBER, value)
    if kind is float:
        if not math.isfinite(value):
            raise NotPlain
        return (_NUMBER, value)
    if kind is str:
        return (_STRING_KIND, check_text(value))
    if kind is list or kind is tuple:
        return (_ARRAY, None)
    if kind is dict:
        return (_OBJECT_KIND, None)
    raise NotPlain


def _compare(left: tuple[int, Any], right: tuple[int, Any]) -> int:
    if left[0] != right[0]:
        return -1 if left[0] < right[0] else 1
    a, b = left[1], right[1]
    if a is None or a == b:
        return 0
    return -1 if a < b else 1
