"""Small jq expressions of paths, literals, `+`, `-`, comparisons, `and`, `or`, `//`,
objects and `tostring`, answered in Python exactly as jq answers them.

A workflow's `set`, `switch`, `if` and `with` fields are mostly arithmetic, conditions and
object building over the task's data: `${ .checkpoints + 1 }`, `${ . + {total: (.total +
.count)} }`, `${ .count > 1000000 and .ready }`, `${ "item-" + (.n | tostring) }`. jq
answers each only after the data is encoded to JSON and parsed again, which costs the
interpreter more than the expression itself. This module parses such a text into a tree
once and evaluates it on the data as it is. The grammar it takes is a strict subset of
jq's, with jq's precedence:

    pipe         := alternative ("|" alternative)*
    alternative  := disjunction ("//" alternative)?
    disjunction  := conjunction ("or" conjunction)*
    conjunction  := compare ("and" compare)*
    compare      := sum (("==" | "!=" | "<" | "<=" | ">" | ">=") sum)?
    sum          := term (("+" | "-") term)*
    term         := PATH | "." | LITERAL | "-" NUMBER | "(" pipe ")" | object
                  | "tostring" | "not"
    object       := "{" [member ("," member)*] "}"
    member       := (NAME | STRING) ":" term

PATH is a plain path (`dsl.jqpaths`), LITERAL `null`, `true`, `false`, an integer within
+-2**53 or a string without interpolation. jq allows more in an object's values (`a: .x |
f`), and this parser then says no, which only means jq answers. Evaluation follows jq:
`+` adds numbers, joins strings and arrays, merges objects (the right one's keys win, the
left one's order stays) and returns the other side when one is null; `-` subtracts
numbers; `and`, `or` and `//` look at the left side first; comparisons follow jq's order
of kinds. Whatever jq answers with an error, or with a value this module cannot reproduce
exactly (a number beyond +-2**53, `tostring` of a float or a container, an array
difference, the left side of `//` failing, which jq hides), raises `NotPlain`, and the
caller runs jq instead. Written here because no kept library evaluates jq without the jq
engine.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any, Final

from tflow_workers.dsl.jqpaths import NotPlain, as_jq, check_text, plain_path, walk

_EXACT_INT: Final = 2**53
_TOKEN: Final = re.compile(
    r"""\s*(?:
        (?P<path>(?:\.[A-Za-z_][A-Za-z0-9_]*)+|\.(?![.\[A-Za-z_"0-9]))
      | (?P<string>"(?:[^"\\]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*")
      | (?P<number>(?:0|[1-9][0-9]*)(?![.eE0-9]))
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<op>//|==|!=|<=|>=|<|>|\+|-|\||\(|\)|\{|\}|,|:)
    )""",
    re.VERBOSE,
)
# Names jq reads as keywords: as a bare object key they are left to jq (`dsl.jqplain` too).
KEYWORDS: Final = frozenset(
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
_COMPARISONS: Final = frozenset(["==", "!=", "<", "<=", ">", ">="])
_NULL, _FALSE, _TRUE, _NUMBER, _STRING_KIND, _ARRAY, _OBJECT_KIND = range(7)

Evaluator = Callable[[Any], Any]


class _Refused(Exception):
    """The text is not in this module's grammar."""


def term_program(text: str) -> Evaluator | None:
    """A Python evaluator of `text` (without `${ }`) giving what jq's first output would
    be (or raising `NotPlain`), or None when the text is not in the grammar above."""
    try:
        tokens = _tokens(text)
        parser = _Parser(tokens)
        evaluate = parser.pipe()
        if parser.position != len(tokens):
            return None
    except _Refused:
        return None

    def answer(data: Any) -> Any:
        return as_jq(evaluate(data))

    return answer


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    end = len(text.rstrip())
    while position < end:
        found = _TOKEN.match(text, position)
        if found is None or found.end() == position:
            raise _Refused
        kind = found.lastgroup
        assert kind is not None
        tokens.append((kind, found[kind]))
        position = found.end()
    return tokens


class _Parser:
    """Recursive descent over the tokens, building one closure per node."""

    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.position = 0

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def _take(self, op: str) -> bool:
        token = self._peek()
        if token == ("op", op):
            self.position += 1
            return True
        return False

    def _expect(self, op: str) -> None:
        if not self._take(op):
            raise _Refused

    def _take_name(self, name: str) -> bool:
        if self._peek() == ("name", name):
            self.position += 1
            return True
        return False

    def pipe(self) -> Evaluator:
        left = self.alternative()
        while self._take("|"):
            left = _piped(left, self.alternative())
        return left

    def alternative(self) -> Evaluator:
        left = self.disjunction()
        if self._take("//"):
            return _alternative(left, self.alternative())  # right-associative, as in jq
        return left

    def disjunction(self) -> Evaluator:
        left = self.conjunction()
        while self._take_name("or"):
            left = _or(left, self.conjunction())
        return left

    def conjunction(self) -> Evaluator:
        left = self.compare()
        while self._take_name("and"):
            left = _and(left, self.compare())
        return left

    def compare(self) -> Evaluator:
        left = self.sum()
        token = self._peek()
        if token is not None and token[0] == "op" and token[1] in _COMPARISONS:
            self.position += 1
            right = self.sum()
            after = self._peek()
            if after is not None and after[0] == "op" and after[1] in _COMPARISONS:
                raise _Refused  # jq's comparisons do not chain
            return _comparison(token[1], left, right)
        return left

    def sum(self) -> Evaluator:
        left = self.term()
        while True:
            if self._take("+"):
                left = _plus(left, self.term())
            elif self._take("-"):
                left = _minus(left, self.term())
            else:
                return left

    def term(self) -> Evaluator:
        token = self._peek()
        if token is None:
            raise _Refused
        kind, text = token
        self.position += 1
        if kind == "path":
            path = plain_path(text)
            assert path is not None  # the token pattern admits only plain paths
            return _at(path)
        if kind in ("string", "number") or (kind == "name" and text in ("null", "true", "false")):
            return _constant(_literal(text))
        if kind == "name":
            if text == "tostring":
                return _tostring
            if text == "not":
                return negation
            raise _Refused
        if text == "-":
            # Only a negative number: jq's unary minus of anything else is left to jq.
            token = self._peek()
            if token is None or token[0] != "number":
                raise _Refused
            self.position += 1
            return _constant(-_literal(token[1]))
        if text == "(":
            inner = self.pipe()
            self._expect(")")
            return inner
        if text == "{":
            return self._object()
        raise _Refused

    def _object(self) -> Evaluator:
        members: list[tuple[str, Evaluator]] = []
        if self._take("}"):
            return lambda data: {}
        while True:
            token = self._peek()
            if token is None:
                raise _Refused
            kind, text = token
            if kind == "name" and text not in KEYWORDS:
                key = text
            elif kind == "string":
                key = _literal(text)
            else:
                raise _Refused
            self.position += 1
            self._expect(":")
            members.append((key, self.term()))
            if self._take("}"):
                break
            self._expect(",")
        return _built(members)


def _literal(text: str) -> Any:
    try:
        value = json.loads(text)
    except ValueError:  # a control character in a string: jq says what it makes of it
        raise _Refused from None
    if type(value) is str:
        try:
            return check_text(value)
        except NotPlain:  # a lone surrogate: jq reads it otherwise
            raise _Refused from None
    if type(value) is int and not -_EXACT_INT <= value <= _EXACT_INT:
        raise _Refused
    return value


def _at(path: tuple[str, ...]) -> Evaluator:
    if not path:
        return lambda data: data
    return lambda data: walk(path, data)


def _constant(value: Any) -> Evaluator:
    return lambda data: value


def _piped(left: Evaluator, right: Evaluator) -> Evaluator:
    return lambda data: right(left(data))


def _built(members: list[tuple[str, Evaluator]]) -> Evaluator:
    def build(data: Any) -> dict[str, Any]:
        return {key: value(data) for key, value in members}

    return build


def _number(value: Any) -> bool:
    kind = type(value)
    return kind is int or kind is float


def _add(a: Any, b: Any) -> Any:
    """jq's `a + b`."""
    if a is None:
        return b
    if b is None:
        return a
    kind = type(a)
    if _number(a) and _number(b):
        for number in (a, b):
            if type(number) is int and not -_EXACT_INT <= number <= _EXACT_INT:
                raise NotPlain  # jq adds doubles; beyond 2**53 the sum would differ
            if type(number) is float and not math.isfinite(number):
                raise NotPlain
        total = a + b
        if type(total) is int and not -_EXACT_INT <= total <= _EXACT_INT:
            raise NotPlain
        return total
    if kind is not type(b):
        raise NotPlain  # jq's error, in its own words
    if kind is str:
        return check_text(a) + check_text(b)
    if kind is list:
        return [*a, *b]
    if kind is dict:
        return {**a, **b}
    raise NotPlain


def _subtract(a: Any, b: Any) -> Any:
    """jq's `a - b` for numbers; arrays (a set difference) and errors go to jq."""
    if not (_number(a) and _number(b)):
        raise NotPlain
    return _add(a, -b)


def _minus(left: Evaluator, right: Evaluator) -> Evaluator:
    return lambda data: _subtract(left(data), right(data))


def _truthy(value: Any) -> bool:
    return value is not None and value is not False


def _alternative(left: Evaluator, right: Evaluator) -> Evaluator:
    # jq's `a // b` also hides errors of `a`: a `NotPlain` from it goes to jq, which says.
    def either(data: Any) -> Any:
        value = left(data)
        return value if _truthy(value) else right(data)

    return either


def _and(left: Evaluator, right: Evaluator) -> Evaluator:
    return lambda data: _truthy(left(data)) and _truthy(right(data))


def _or(left: Evaluator, right: Evaluator) -> Evaluator:
    return lambda data: _truthy(left(data)) or _truthy(right(data))


def _plus(left: Evaluator, right: Evaluator) -> Evaluator:
    # jq evaluates the right operand first; with one output each and no side effects
    # the order cannot show, except in which error is reported, and errors go to jq.
    return lambda data: _add(left(data), right(data))


def sort_key(value: Any) -> tuple[int, Any]:
    """jq's kind of `value` and what orders it within its kind (None for containers)."""
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
    if kind is list:
        return (_ARRAY, None)
    if kind is dict:
        return (_OBJECT_KIND, None)
    raise NotPlain


def _ordering(a: Any, b: Any) -> int:
    return compare_keys(sort_key(a), sort_key(b))


def compare_keys(left: tuple[int, Any], right: tuple[int, Any]) -> int:
    """jq's order of two values by their `sort_key`s: -1, 0 or 1."""
    if left[0] != right[0]:
        return -1 if left[0] < right[0] else 1
    if left[0] in (_ARRAY, _OBJECT_KIND):
        raise NotPlain  # containers compare member by member: left to jq
    x, y = left[1], right[1]
    if x is None or x == y:
        return 0
    return -1 if x < y else 1


# Each comparison operator as a test of `compare_keys`'s answer.
OPERATORS: Final[dict[str, Callable[[int], bool]]] = {
    "==": lambda c: c == 0,
    "!=": lambda c: c != 0,
    "<": lambda c: c < 0,
    "<=": lambda c: c <= 0,
    ">": lambda c: c > 0,
    ">=": lambda c: c >= 0,
}


def _comparison(op: str, left: Evaluator, right: Evaluator) -> Evaluator:
    test = OPERATORS[op]
    return lambda data: test(_ordering(left(data), right(data)))


def negation(value: Any) -> bool:
    """jq's `not`."""
    return value is None or value is False


def _tostring(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return check_text(value)
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    if kind is int and -_EXACT_INT <= value <= _EXACT_INT:
        return str(value)
    # Any float: jq keeps a number's text as it was read (`1.0` stays `1.0`) until
    # arithmetic makes it a double, and it writes doubles its own way. Containers: jq's
    # escaping decides.
    raise NotPlain
