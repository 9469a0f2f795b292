"""Small jq expressions of paths, literals, `+`, `-`, comparisons, `and`, `or`, `//`,
objects, string tests and `tostring`, answered in Python exactly as jq answers them.

Route filters and mappings, and a workflow's `set`, `switch`, `if` and `with` fields, are
mostly comparisons, conditions, arithmetic and object building over the data:
`${ .data.severity == "high" }`, `${ .data.key | endswith(".pdf") | not }`,
`${ {uri: .data.documentUri, kind: "pdf"} }`, `${ .checkpoints + 1 }`,
`${ . + {total: (.total + .count)} }`, `${ "item-" + (.n | tostring) }`. jq answers each
only after the data is encoded to JSON and parsed again, which costs more than the
expression itself. This module parses such a text into a tree of closures once and
evaluates it on the data as it is. The grammar it takes is a strict subset of jq's, with
jq's precedence:

    pipe         := alternative ("|" alternative)*
    alternative  := disjunction ("//" alternative)?
    disjunction  := conjunction ("or" conjunction)*
    conjunction  := compare ("and" compare)*
    compare      := sum (("==" | "!=" | "<" | "<=" | ">" | ">=") sum)?
    sum          := term (("+" | "-") term)*
    term         := PATH | "." | LITERAL | "-" NUMBER | "[" "]" | "(" pipe ")" | object
                  | "tostring" | "not" | ("endswith" | "startswith" | "index") "(" STRING ")"
    object       := "{" [member ("," member)*] "}"
    member       := (NAME | STRING) ":" term

PATH is a plain path (`dsl.jqpaths`), LITERAL `null`, `true`, `false`, an integer within
+-2**53 or a string without interpolation. jq allows more in an object's values (`a: .x |
f`), and this parser then says no, which only means jq answers. Evaluation follows jq:
`+` adds numbers, joins strings and arrays, merges objects (the right one's keys win, the
left one's order stays) and returns the other side when one is null; `-` subtracts
numbers; `and`, `or` and `//` look at the left side first; comparisons follow jq's order
of kinds (null < false < true < numbers < strings < arrays < objects), numbers by value,
strings by code point (jq compares their UTF-8 bytes, which orders the same);
`index(s)` finds `s` in an array of strings, or in an ASCII string. Whatever jq answers
with an error, or with a value this module cannot reproduce exactly (a number beyond
+-2**53, NaN, `tostring` of a float or a container, an array difference, containers
compared with each other, the left side of `//` failing, which jq hides), raises
`NotPlain`, and the caller runs jq instead, so errors read as jq writes them. Written
here because no kept library evaluates jq without the jq engine.
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
      | (?P<op>//|==|!=|<=|>=|<|>|\+|-|\||\(|\)|\{|\}|\[|\]|,|:)
    )""",
    re.VERBOSE,
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
    return parser.output(evaluate)


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
        # The literals' evaluators with their values, so that a comparison with one
        # orders the literal once, here, not at each evaluation.
        self.constants: dict[Evaluator, Any] = {}
        # Evaluators whose answers jq outputs unchanged (booleans, an index, null).
        self.shaped: set[Evaluator] = set()
        # The plain paths' evaluators with their fields.
        self.paths: dict[Evaluator, tuple[str, ...]] = {}

    def _constant(self, value: Any) -> Evaluator:
        def constant(data: Any) -> Any:
            return value

        self.constants[constant] = value
        # A literal is read within jq's exact range (`_literal`): jq outputs it as is.
        self.shaped.add(constant)
        return constant

    def output(self, evaluate: Evaluator) -> Evaluator:
        """`evaluate`, giving what jq outputs."""
        if evaluate in self.shaped:
            return evaluate
        path = self.paths.get(evaluate)
        if path is not None:
            return lambda data: as_jq(walk(path, data))
        return lambda data: as_jq(evaluate(data))

    def _shaped(self, evaluate: Evaluator) -> Evaluator:
        self.shaped.add(evaluate)
        return evaluate

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
            right = self.alternative()
            left = _piped(left, right)
            if right in self.shaped:
                self.shaped.add(left)
        return left

    def alternative(self) -> Evaluator:
        left = self.disjunction()
        if self._take("//"):
            right = self.alternative()  # right-associative, as in jq
            either = _alternative(left, right)
            if left in self.shaped and right in self.shaped:
                self.shaped.add(either)
            return either
        return left

    def disjunction(self) -> Evaluator:
        left = self.conjunction()
        while self._take_name("or"):
            left = self._shaped(_or(left, self.conjunction()))
        return left

    def conjunction(self) -> Evaluator:
        left = self.compare()
        while self._take_name("and"):
            left = self._shaped(_and(left, self.compare()))
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
            test = _OPERATORS[token[1]]
            if right in self.constants:
                return self._shaped(_against(test, left, _sort_key(self.constants[right])))
            return self._shaped(_comparison(test, left, right))
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
            at = _at(path)
            self.paths[at] = path
            return at
        if kind in ("string", "number") or (kind == "name" and text in ("null", "true", "false")):
            return self._constant(_literal(text))
        if kind == "name":
            if text == "tostring":
                return _tostring
            if text == "not":
                return self._shaped(_negation)
            function = _STRING_FUNCTIONS.get(text)
            if function is None:
                raise _Refused
            self._expect("(")
            token = self._peek()
            if token is None or token[0] != "string":
                raise _Refused  # an argument computed from the data: jq's business
            self.position += 1
            self._expect(")")
            return self._shaped(function(_literal(token[1])))
        if text == "-":
            # Only a negative number: jq's unary minus of anything else is left to jq.
            token = self._peek()
            if token is None or token[0] != "number":
                raise _Refused
            self.position += 1
            return self._constant(-_literal(token[1]))
        if text == "[":
            # Only the empty array (`(.tags // [])`); building arrays is left to jq.
            self._expect("]")
            return self._shaped(_empty_array)
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
            return self._shaped(lambda data: {})
        while True:
            token = self._peek()
            if token is None:
                raise _Refused
            kind, text = token
            if kind == "name" and text not in _KEYWORDS:
                key = text
            elif kind == "string":
                key = _literal(text)
            else:
                raise _Refused
            self.position += 1
            self._expect(":")
            value = self.term()
            # Each member as jq outputs it, so the object needs no second walk.
            members.append((key, self.output(value)))
            if self._take("}"):
                break
            self._expect(",")
        return self._shaped(_built(members))


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


def _empty_array(data: Any) -> list[Any]:
    # A fresh list each time: the caller may keep what it gets.
    return []


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


def _sort_key(value: Any) -> tuple[int, Any]:
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
    return _compare_keys(_sort_key(a), _sort_key(b))


def _compare_keys(left: tuple[int, Any], right: tuple[int, Any]) -> int:
    """jq's order of two values by their `_sort_key`s: -1, 0 or 1."""
    if left[0] != right[0]:
        return -1 if left[0] < right[0] else 1
    if left[0] in (_ARRAY, _OBJECT_KIND):
        raise NotPlain  # containers compare member by member: left to jq
    x, y = left[1], right[1]
    if x is None or x == y:
        return 0
    return -1 if x < y else 1


# Each comparison operator as a test of `_compare_keys`'s answer.
_OPERATORS: Final[dict[str, Callable[[int], bool]]] = {
    "==": lambda c: c == 0,
    "!=": lambda c: c != 0,
    "<": lambda c: c < 0,
    "<=": lambda c: c <= 0,
    ">": lambda c: c > 0,
    ">=": lambda c: c >= 0,
}


def _comparison(test: Callable[[int], bool], left: Evaluator, right: Evaluator) -> Evaluator:
    return lambda data: test(_ordering(left(data), right(data)))


def _against(test: Callable[[int], bool], left: Evaluator, key: tuple[int, Any]) -> Evaluator:
    """A comparison with a literal, whose `_sort_key` is `key`."""
    return lambda data: test(_compare_keys(_sort_key(left(data)), key))


def _negation(value: Any) -> bool:
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


def _string_test(test: Callable[[str, str], bool]) -> Callable[[str], Evaluator]:
    """`endswith(s)` or `startswith(s)`, as `test` (`str.endswith`, `str.startswith`)."""

    def with_argument(argument: str) -> Evaluator:
        def step(value: Any) -> bool:
            if type(value) is not str:  # jq reports an error in its own words
                raise NotPlain
            return test(check_text(value), argument)

        return step

    return with_argument


def _index(needle: str) -> Evaluator:
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


_STRING_FUNCTIONS: Final[dict[str, Callable[[str], Evaluator]]] = {
    "endswith": _string_test(str.endswith),
    "startswith": _string_test(str.startswith),
    "index": _index,
}
