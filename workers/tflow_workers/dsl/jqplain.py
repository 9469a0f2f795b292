"""Route filters and mappings simple enough to answer in Python, exactly as jq answers them.

Most routes compare one field of the event with a constant (`${ .data.severity == "high" }`,
`${ .data.size > 100 }`) or build the flow's input from fields and constants
(`${ {uri: .data.documentUri, kind: "pdf"} }`), or tests a string field
(`${ .data.key | endswith(".pdf") | not }`). jq answers each only after parsing the
event's JSON text again, which is most of a route's matching cost. This module
recognises these shapes:

* a pipeline `HEAD | STEP | ... OP LITERAL`, with at least one step or the comparison:
  HEAD a plain path or `(PATH // ALTERNATIVE)`; each STEP one of `endswith(STRING)`,
  `startswith(STRING)`, `index(STRING)` (of an array, or of an ASCII string) and `not`;
  OP one of `==`, `!=`, `<`, `<=`, `>`, `>=` and LITERAL `null`, `true`, `false`, an
  integer within +-2**53 or a string without interpolation (ALTERNATIVE also `[]`);
* an object `{key: VALUE, ...}`: keys plain names or strings, each VALUE a plain path or
  such a literal;

with PATH a plain path (`dsl.jqpaths`); any other text in the grammar of `dsl.jqterms`
(sums, nested objects, `tostring`) is answered by that module's evaluator. Comparisons
follow jq's order of kinds (null <
false < true < numbers < strings < arrays < objects), numbers by value, strings by code
point (jq compares their UTF-8 bytes, which orders the same). Whatever is not exactly
answerable here (indexing a non-object, an integer beyond +-2**53, NaN, odd types) raises
`NotPlain`, and the caller runs the jq program instead, so errors and odd values read the
same as before. Written here because no kept library evaluates jq without the jq engine.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, Final

from tflow_workers.dsl.jqpaths import NotPlain, as_jq, check_text, plain_path, walk
from tflow_workers.dsl.jqterms import (
    KEYWORDS,
    OPERATORS,
    compare_keys,
    negation,
    sort_key,
    term_program,
)

_EXACT_INT: Final = 2**53
# Longest first: unanchored, `\.` alone would stop a longer path at its first dot.
_PATH: Final = r"(?:\.[A-Za-z_][A-Za-z0-9_]*)+|\."
_STRING: Final = r'"(?:[^"\\]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"'
_LITERAL: Final = rf"null|true|false|-?(?:0|[1-9][0-9]*)|{_STRING}"
_HEAD: Final = re.compile(
    rf"\s*(?:(?P<path>{_PATH})|\(\s*(?P<either>{_PATH})\s*//\s*(?P<alternative>{_LITERAL}|\[\s*\])\s*\))"
)
_STEP: Final = re.compile(
    rf"\s*\|\s*(?:(?P<function>endswith|startswith|index)\s*\(\s*(?P<argument>{_STRING})\s*\)|(?P<not>not)\b)"
)
_COMPARISON: Final = re.compile(rf"\s*(?P<op>==|!=|<=|>=|<|>)\s*(?P<literal>{_LITERAL})\s*$")
_OBJECT: Final = re.compile(r"^\s*\{(?P<body>.*)\}\s*$", re.DOTALL)
_MEMBER: Final = re.compile(
    rf"\s*(?P<key>[A-Za-z_][A-Za-z0-9_]*|{_STRING})\s*:\s*(?P<value>{_PATH}|{_LITERAL})\s*(?:,|$)"
)


class PlainProgram:
    """A filter or mapping answered in Python: `first(data)` is what jq's first output
    would be, or raises `NotPlain`."""

    __slots__ = ("first",)

    def __init__(self, first: Callable[[Any], Any]) -> None:
        self.first = first


def plain_program(text: str) -> PlainProgram | None:
    """A Python evaluator for `text` (without `${ }`), or None when it is not one of the
    shapes in the module docstring."""
    pipeline = _pipeline(text)
    if pipeline is not None:
        return pipeline
    found = _OBJECT.match(text)
    members = None if found is None else _members(found["body"])
    if members is None:
        evaluate = term_program(text)
        return None if evaluate is None else PlainProgram(evaluate)

    def build(data: Any) -> Any:
        return {
            key: (as_jq(walk(value, data)) if type(value) is tuple else value)
            for key, value in members
        }

    return PlainProgram(build)


class _NoLiteral:
    pass


def _pipeline(text: str) -> PlainProgram | None:
    head = _HEAD.match(text)
    if head is None:
        return None
    steps: list[Callable[[Any], Any]] = []
    position = head.end()
    while (step := _STEP.match(text, position)) is not None:
        if step["not"]:
            steps.append(negation)
        else:
            argument = _literal(step["argument"])
            if argument is _NO_LITERAL:
                return None
            steps.append(_STEP_FUNCTIONS[step["function"]](argument))
        position = step.end()
    comparison = _COMPARISON.match(text, position)
    if comparison is None:
        if text[position:].strip() or not (steps or head["either"]):
            return None
    else:
        literal = _literal(comparison["literal"])
        if literal is _NO_LITERAL:
            return None
        steps.append(_comparison(OPERATORS[comparison["op"]], sort_key(literal)))
    if head["path"] is not None:
        path = _path(head["path"])

        def start(data: Any) -> Any:
            return walk(path, data)

    else:
        either = _path(head["either"])
        alternative_text = head["alternative"]
        empty_array = alternative_text.startswith("[")
        alternative = None if empty_array else _literal(alternative_text)
        if alternative is _NO_LITERAL:
            return None

        def start(data: Any) -> Any:
            value = walk(either, data)
            if value is not None and value is not False:
                return value
            # A fresh list each time: the caller may keep what it gets.
            return [] if empty_array else alternative

    if not steps:
        return PlainProgram(lambda data: as_jq(start(data)))

    def run(data: Any) -> Any:
        value = start(data)
        for step in steps:
            value = step(value)
        return value

    return PlainProgram(run)


def _comparison(compare: Callable[[int], bool], key: tuple[int, Any]) -> Callable[[Any], bool]:
    return lambda value: compare(compare_keys(sort_key(value), key))


def _string_test(test: Callable[[str, str], bool]) -> Callable[[str], Callable[[Any], bool]]:
    """`endswith(s)` or `startswith(s)`, as `test` (`str.endswith`, `str.startswith`)."""

    def with_argument(argument: str) -> Callable[[Any], bool]:
        def step(value: Any) -> bool:
            if type(value) is not str:  # jq reports an error in its own words
                raise NotPlain
            return test(check_text(value), argument)

        return step

    return with_argument


def _index(needle: str) -> Callable[[Any], int | None]:
    def step(value: Any) -> int | None:
        kind = type(value)
        if value is None:
            return None
        if kind is list:
            for position, item in enumerate(value):
                if type(item) is str and check_text(item) == needle:
                    return position
            return None
        # jq counts a string's offsets in bytes or code points depending on its version;
        # in ASCII they agree. An empty needle is also left to jq.
        if kind is str and value.isascii() and needle.isascii() and needle:
            found = value.find(needle)
            return None if found < 0 else found
        raise NotPlain

    return step


_STEP_FUNCTIONS: Final[dict[str, Callable[[str], Callable[[Any], Any]]]] = {
    "endswith": _string_test(str.endswith),
    "startswith": _string_test(str.startswith),
    "index": _index,
}


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
        if key in KEYWORDS:
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
