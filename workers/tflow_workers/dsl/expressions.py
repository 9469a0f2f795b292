"""Runtime expressions: jq programs written as `${ ... }`, compiled once and cached.

Two evaluation entry points:

* `evaluate(expr, data, variables)` always treats `expr` as jq; the `${ }` wrapper is
  optional. Use it for fields that are expressions by definition (`if`, switch `when`,
  `for.in`, `while`, catch/retry `when`/`exceptWhen`, listen `until`, correlate `from`,
  and `input.from`/`output.as`/`export.as` when they are strings).
* `interpolate(value, data, variables)` walks a value and evaluates only the strings that
  are wholly wrapped in `${ }` (strict mode); everything else passes through unchanged.

The spec's runtime arguments ($context, $input, $output, $secret, $task, $workflow,
$runtime, $authorization) are always bound, to null when the caller does not pass them,
so an expression never fails to compile just because an argument is absent at one site.
Extra variables (a catch's `as`, a for loop's `each`/`at`) are passed by name.

jq binds variables at compile time, by value. To compile once per expression rather than
once per evaluation, the program is wrapped so that it reads its variables from its input:
`. as [$data, {$input, $context, ...}, $now] | ... | $data | (EXPR)`; the cache is keyed by
the expression text plus the sorted variable names. Only the variables the text mentions
are bound and handed to jq: every value passed is serialised for jq on every evaluation,
and `$workflow` alone carries the whole document.

The wrapper also makes evaluation safe to run inside a Temporal workflow: `$ENV` and `env`
are empty (worker environment variables must never reach documents), local time is UTC,
and `now` is the clock the caller passes (`now=workflow.now()` in workflow code); with no
clock, `now` is an expression error rather than a silent read of the host clock.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Final

import jq

EXPRESSION_ERROR_TYPE: Final = "https://serverlessworkflow.io/spec/1.0.0/errors/expression"
EXPRESSION_ERROR_STATUS: Final = 400

RUNTIME_ARGUMENTS: Final[tuple[str, ...]] = (
    "authorization",
    "context",
    "input",
    "output",
    "runtime",
    "secret",
    "task",
    "workflow",
)

CACHE_SIZE: Final = 4096
# Expressions per jq program in `compile_expressions`: near the least compile time per
# expression (a group of thousands compiles slower per expression than one alone).
GROUP_SIZE: Final = 128

_WRAPPED = re.compile(r"^\s*\$\{(?P<body>.*)\}\s*$", re.DOTALL)
_VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MENTION = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_DATA_VARIABLE: Final = "__tflow_data"
_NOW_VARIABLE: Final = "__tflow_now"
_SLOT_VARIABLE: Final = "__tflow_slot"
_GROUP_FUNCTION: Final = "__tflow_expression_"
# Builtins that would read the host (environment, clock, time zone) are replaced, so that
# replaying a workflow on another worker, later, evaluates every expression the same way.
_PRELUDE: Final = (
    "def env: {}; def localtime: gmtime; def strflocaltime(f): strftime(f); "
    f"def now: if ${_NOW_VARIABLE} == null "
    'then error("now is not available here: the caller passed no clock") '
    f"else ${_NOW_VARIABLE} end; "
    "{} as $ENV | "
)
_COMPILE_NOISE = re.compile(r"^jq: error: |:$")


class ExpressionError(Exception):
    """A runtime expression that failed; `expression` is the jq text, `message` the cause."""

    title: str = "Expression error"

    def __init__(self, expression: str, message: str) -> None:
        super().__init__(f"{message} (expression: {expression})")
        self.expression = expression
        self.message = message

    def to_error(self) -> dict[str, Any]:
        """The Serverless Workflow error object this failure raises."""
        return {
            "type": EXPRESSION_ERROR_TYPE,
            "status": EXPRESSION_ERROR_STATUS,
            "title": self.title,
            "detail": f"{self.message} (expression: {self.expression})",
        }


class ExpressionCompileError(ExpressionError):
    """The expression is not valid jq, or uses a variable that is not bound."""

    title = "Invalid expression"


class ExpressionRuntimeError(ExpressionError):
    """The expression compiled but failed on the data it was given."""

    title = "Expression evaluation failed"


def is_expression(value: object) -> bool:
    """True for a string that is wholly a `${ ... }` runtime expression."""
    return isinstance(value, str) and _WRAPPED.match(value) is not None


def strip_expression(text: str) -> str:
    """The jq program inside `${ ... }`; a bare program is returned stripped."""
    match = _WRAPPED.match(text)
    return (match.group("body") if match else text).strip()


def is_variable_name(name: str) -> bool:
    """True when `name` can be bound as a jq variable (`$name`)."""
    return bool(_VARIABLE_NAME.match(name)) and not name.startswith("__")


def _clean_compile_message(raw: str) -> str:
    first = raw.strip().splitlines()[0] if raw.strip() else "invalid expression"
    return _COMPILE_NOISE.sub("", first).replace(" at <top-level>, ", " at ")


Clock = datetime | float | None
"""What `now` returns inside expressions: a datetime or epoch seconds; None disables it."""


# The data handed to jq as JSON text: `json.dumps`'s defaults (ASCII, NaN allowed), compact.
_JQ_INPUT = json.JSONEncoder(separators=(",", ":"))


class CompiledExpression:
    """A compiled jq program with the variable names it binds. `slot` is set when the
    program is one of several compiled together (`compile_expressions`): it picks this
    expression's function out of the shared program."""

    __slots__ = ("_program", "_slot", "text", "variable_names")

    def __init__(
        self, text: str, variable_names: tuple[str, ...], program: Any, slot: int | None = None
    ) -> None:
        self.text = text
        self.variable_names = variable_names
        self._program = program
        self._slot = slot

    def _run(self, data: Any, variables: Mapping[str, Any] | None, now: Clock) -> Any:
        bound = {name: (variables or {}).get(name) for name in self.variable_names}
        clock = now.timestamp() if isinstance(now, datetime) else now
        value = [data, bound, clock] if self._slot is None else [self._slot, data, bound, clock]
        try:
            # What `input_value` sends (it runs `json.dumps`), compact, and without the
            # `isinstance` checks of `JSONEncoder.encode`, which the workflow sandbox
            # routes through a proxy.
            return self._program.input_text("".join(_JQ_INPUT.iterencode(value, True)))
        except (TypeError, ValueError) as error:
            raise ExpressionRuntimeError(self.text, f"cannot pass data to jq: {error}") from None

    def first(
        self, data: Any, variables: Mapping[str, Any] | None = None, *, now: Clock = None
    ) -> Any:
        """The first output, or None when the program outputs nothing."""
        return self._first(self._run(data, variables, now))

    def first_json(self, data_json: str) -> Any:
        """`first(data)` with no variables and no clock, for data already serialised
        (`json.dumps(data)`): a caller running many programs on one value serialises it
        once instead of once per program."""
        head = "[" if self._slot is None else f"[{self._slot},"
        # Unbound runtime arguments read as null from the empty object, as from `first`.
        return self._first(self._program.input_text(f"{head}{data_json},{{}},null]"))

    def _first(self, outputs: Any) -> Any:
        try:
            return outputs.first()
        except StopIteration:
            return None
        except ValueError as error:
            raise ExpressionRuntimeError(self.text, str(error)) from None

    def all(
        self, data: Any, variables: Mapping[str, Any] | None = None, *, now: Clock = None
    ) -> list[Any]:
        """Every output, in order."""
        outputs = self._run(data, variables, now)
        try:
            result: list[Any] = outputs.all()
        except ValueError as error:
            raise ExpressionRuntimeError(self.text, str(error)) from None
        return result


@functools.lru_cache(maxsize=CACHE_SIZE)
def _compile(text: str, names: tuple[str, ...]) -> CompiledExpression:
    if not text:
        raise ExpressionCompileError(text, "empty expression")
    # Compiling the bare program first gives error positions in the author's own text,
    # and refuses anything that would escape the wrapper below.
    try:
        jq.compile(text, args=dict.fromkeys(names))
    except ValueError as error:
        raise ExpressionCompileError(text, _clean_compile_message(str(error))) from None
    # A name the text does not mention cannot be read by it (a mention inside a string
    # literal only over-binds). jq refuses an empty `{}` pattern, so one name always stays.
    mentioned = set(_MENTION.findall(text))
    names = tuple(name for name in names if name in mentioned) or names[:1]
    bindings = ", ".join(f"${name}" for name in names)
    wrapped = (
        f". as [${_DATA_VARIABLE}, {{{bindings}}}, ${_NOW_VARIABLE}] | {_PRELUDE}"
        f"${_DATA_VARIABLE} | (\n{text}\n)"
    )
    try:
        program = jq.compile(wrapped)
    except ValueError as error:  # pragma: no cover - the bare compile above catches these
        raise ExpressionCompileError(text, _clean_compile_message(str(error))) from None
    return CompiledExpression(text, names, program)


def _names(variable_names: Iterable[str], expression: str) -> tuple[str, ...]:
    names = set(RUNTIME_ARGUMENTS)
    for name in variable_names:
        if not is_variable_name(name):
            raise ExpressionCompileError(expression, f"invalid variable name {name!r}")
        names.add(name)
    return tuple(sorted(names))


def compile_expression(expression: str, variable_names: Iterable[str] = ()) -> CompiledExpression:
    """Compile (or fetch from the cache) `expression`, binding the runtime arguments and
    `variable_names`. Raises `ExpressionCompileError`."""
    return _compile(strip_expression(expression), _names(variable_names, expression))


def compile_expressions(
    expressions: Iterable[str],
) -> dict[str, CompiledExpression | ExpressionCompileError]:
    """Compile many expressions that bind only the runtime arguments, each to the program
    `compile_expression` would give or to its error; not cached.

    jq compiles its builtins again for every program (a few milliseconds each), so a
    table of thousands of expressions is compiled in groups: one jq program per
    `GROUP_SIZE` expressions, each a function of it, picked by slot at evaluation. An
    expression that might not keep to itself inside the shared program (unbalanced
    brackets, a name of the wrapper's) is compiled alone, and so is every expression of a
    group that does not compile (halved until the culprits are alone), so errors read the
    same as from `compile_expression`."""
    names = _names((), "")
    results: dict[str, CompiledExpression | ExpressionCompileError] = {}
    grouped: list[tuple[str, str]] = []
    for expression in dict.fromkeys(expressions):
        text = strip_expression(expression)
        if text and _keeps_to_itself(text):
            grouped.append((expression, text))
        else:
            results[expression] = _compile_alone(expression)
    for start in range(0, len(grouped), GROUP_SIZE):
        _compile_group(grouped[start : start + GROUP_SIZE], names, results)
    return results


def _compile_alone(expression: str) -> CompiledExpression | ExpressionCompileError:
    try:
        return compile_expression(expression)
    except ExpressionCompileError as error:
        return error


def _compile_group(
    group: list[tuple[str, str]],
    names: tuple[str, ...],
    results: dict[str, CompiledExpression | ExpressionCompileError],
) -> None:
    functions = "".join(
        f"def {_GROUP_FUNCTION}{slot}: (\n{text}\n);\n" for slot, (_, text) in enumerate(group)
    )
    bindings = ", ".join(f"${name}" for name in names)
    program = (
        f". as [${_SLOT_VARIABLE}, ${_DATA_VARIABLE}, {{{bindings}}}, ${_NOW_VARIABLE}] | "
        f"{_PRELUDE}{functions}${_DATA_VARIABLE} | {_dispatch(0, len(group))}"
    )
    try:
        compiled = jq.compile(program)
    except ValueError:
        if len(group) == 1:
            results[group[0][0]] = _compile_alone(group[0][0])
            return
        half = len(group) // 2
        _compile_group(group[:half], names, results)
        _compile_group(group[half:], names, results)
        return
    for slot, (expression, text) in enumerate(group):
        results[expression] = CompiledExpression(text, names, compiled, slot)


def _dispatch(low: int, high: int) -> str:
    """The call of function `slot` for low <= slot < high, by bisection."""
    if high - low == 1:
        return f"{_GROUP_FUNCTION}{low}"
    middle = (low + high) // 2
    return (
        f"(if ${_SLOT_VARIABLE} < {middle} then {_dispatch(low, middle)} "
        f"else {_dispatch(middle, high)} end)"
    )


_CLOSING: Final = {"(": ")", "[": "]", "{": "}"}
_INTERPOLATION: Final = "\\("


def _keeps_to_itself(text: str) -> bool:
    """Whether `text`, placed in `( ... )`, cannot reach outside them: its brackets
    balance outside strings and comments and it names nothing of the group's wrapper
    (all of whose names start with `__`). Conservative: False when unsure."""
    if "__" in text:
        return False
    expected: list[str] = []  # the closer of each open bracket or string interpolation
    in_string = False
    i = 0
    while i < len(text):
        char = text[i]
        if in_string:
            if char == "\\":
                if text.startswith("(", i + 1):
                    expected.append(_INTERPOLATION)
                    in_string = False
                i += 2
                continue
            in_string = char != '"'
        elif char == '"':
            in_string = True
        elif char == "#":
            end = text.find("\n", i)
            comment = text[i:] if end < 0 else text[i:end]
            # A backslash may continue a comment onto the next line in newer jq.
            if "\\" in comment or "\r" in comment:
                return False
            i = len(text) if end < 0 else end
            continue
        elif char in _CLOSING:
            expected.append(_CLOSING[char])
        elif char in ")]}":
            if not expected:
                return False
            closer = expected.pop()
            if closer == _INTERPOLATION:
                if char != ")":
                    return False
                in_string = True
            elif closer != char:
                return False
        i += 1
    return not expected and not in_string


def cache_info() -> functools._CacheInfo:
    """Hits, misses and size of the compiled-program cache."""
    return _compile.cache_info()


def clear_cache() -> None:
    """Forget every compiled program (tests use this to observe cache behaviour)."""
    _compile.cache_clear()


def evaluate(
    expression: str, data: Any, variables: Mapping[str, Any] | None = None, *, now: Clock = None
) -> Any:
    """First output of `expression` (wrapper optional) run on `data`; None if it has none."""
    return compile_expression(expression, variables or ()).first(data, variables, now=now)


def evaluate_all(
    expression: str, data: Any, variables: Mapping[str, Any] | None = None, *, now: Clock = None
) -> list[Any]:
    """Every output of `expression` run on `data`."""
    return compile_expression(expression, variables or ()).all(data, variables, now=now)


def interpolate(
    value: Any, data: Any, variables: Mapping[str, Any] | None = None, *, now: Clock = None
) -> Any:
    """Return `value` with every `${ ... }` string inside it (at any depth) replaced by its
    first output; other strings, keys, and non-string scalars are left as they are."""
    if isinstance(value, str):
        return evaluate(value, data, variables, now=now) if is_expression(value) else value
    if isinstance(value, Mapping):
        return {key: interpolate(item, data, variables, now=now) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [interpolate(item, data, variables, now=now) for item in value]
    return value
