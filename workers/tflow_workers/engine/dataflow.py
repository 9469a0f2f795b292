"""A run's data flow: runtime expressions with the spec's runtime arguments bound, the
`input.from` / `output.as` / `export.as` transformations, and data schema checks.

Expression failures become `expression` errors and schema mismatches `validation`
errors, each with the JSON pointer of the field at fault, so `try` can catch them. The
clock inside expressions (`now`) is the workflow's.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Mapping
from typing import Any

from temporalio import workflow

from tflow_workers.dsl.expressions import (
    CompiledExpression,
    ExpressionError,
    compile_expression,
    is_expression,
)
from tflow_workers.dsl.jqpaths import NotPlain, follow, plain_path
from tflow_workers.dsl.jqterms import term_program
from tflow_workers.dsl.models import Export, Input, Output, Schema
from tflow_workers.dsl.schemas import schema_errors
from tflow_workers.engine.errors import ErrorType, Problem, WorkflowError
from tflow_workers.engine.tasklog import at_ns

RUNTIME_NAME = "temporal-flow"
RUNTIME_VERSION = "0.1.0"
_RUNTIME = {"name": RUNTIME_NAME, "version": RUNTIME_VERSION}
# The arguments every expression of a run may read, besides the caller's variables.
_RUN_ARGUMENTS = ("context", "workflow", "runtime", "secret")


class _Program:
    """An expression as a run evaluates it: the jq program, the field path when the text
    is a plain path (answered without jq, `tflow_workers.dsl.jqpaths`), and whether it
    reads the clock."""

    __slots__ = ("compiled", "path", "plain", "reads_clock")

    def __init__(self, compiled: CompiledExpression) -> None:
        self.compiled = compiled
        self.path = plain_path(compiled.text)
        # Sums, comparisons and objects of paths are answered in Python (`dsl.jqterms`);
        # the text never names a variable or the clock, or it would not be taken.
        self.plain = None if self.path is not None else term_program(compiled.text)
        # `now` is the only way an expression reads the clock; a text that does not even
        # contain the word cannot, so it is not handed the time.
        self.reads_clock = "now" in compiled.text


# Programs by (expression, the names of the caller's variables), per process: a pure
# function of its key, shared by every run and every workflow-activation thread. Looking
# one up here skips stripping the text, checking the variable names and sorting them, which
# `compile_expression` does on every call before its own cache; a miss still goes through
# it, so a bad variable name or expression fails exactly as it always has.
_PROGRAMS_LIMIT = 4096
_programs: dict[tuple[str, tuple[str, ...]], _Program] = {}
_programs_lock = threading.Lock()


def _program(expression: str, variables: Mapping[str, Any]) -> _Program:
    key = (expression, tuple(variables))
    found = _programs.get(key)
    if found is not None:
        return found
    program = _Program(compile_expression(expression, (*_RUN_ARGUMENTS, *variables)))
    with _programs_lock:
        if len(_programs) >= _PROGRAMS_LIMIT:
            _programs.clear()
        _programs[key] = program
    return program


@functools.lru_cache(maxsize=_PROGRAMS_LIMIT)
def _wrapped(text: str) -> bool:
    """Whether a string holding `${` is wholly an expression: a document's strings are
    interpolated on every run, and the answer is a pure function of the text."""
    return is_expression(text)


def truthy(value: Any) -> bool:
    return value is not None and value is not False


def given(model: Input | Output | Export, field: str) -> bool:
    """Whether the document sets `field` (to null too: a null `from` or `as` has always
    transformed the data to null, and runs that did so must replay)."""
    return field in model.model_fields_set


class TaskDescriptor:
    """`$task` of a running task. Most expressions never read it, so its JSON form (the
    task's definition, its start time as text) is built only for those that do."""

    __slots__ = ("definition", "input", "name", "reference", "started_ns")

    def __init__(
        self,
        name: str,
        reference: str,
        definition: Callable[[], dict[str, Any]],
        input: Any,
        started_ns: int,
    ) -> None:
        self.name = name
        self.reference = reference
        self.definition = definition
        # The raw input until the task's `input.from` has run, then the transformed one.
        self.input = input
        self.started_ns = started_ns

    def value(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "reference": self.reference,
            "definition": self.definition(),
            "input": self.input,
            "startedAt": {"iso8601": at_ns(self.started_ns).isoformat()},
        }


class DataFlow:
    """The runtime arguments every expression of a run sees, and the evaluation of
    expressions against them. `context` is `$context`, replaced by each `export.as`."""

    def __init__(self) -> None:
        self.context: dict[str, Any] = {}
        self.workflow: dict[str, Any] = {}
        self.secrets: dict[str, Any] = {}

    def _argument(self, name: str, variables: Mapping[str, Any]) -> Any:
        if name in variables:
            value = variables[name]
            return value.value() if type(value) is TaskDescriptor else value
        if name == "context":
            return self.context
        if name == "workflow":
            return self.workflow
        if name == "runtime":
            return _RUNTIME
        if name == "secret":
            return self.secrets
        return None

    def _evaluate(self, expression: str, data: Any, variables: Mapping[str, Any]) -> Any:
        program = _program(expression, variables)
        if program.path is not None:
            try:
                return follow(program.path, data)
            except NotPlain:
                pass  # jq's own answer, or its own error
        elif program.plain is not None:
            try:
                return program.plain(data)
            except NotPlain:
                pass
        compiled = program.compiled
        # Only the arguments the text mentions are looked up and handed to jq.
        bound = {name: self._argument(name, variables) for name in compiled.variable_names}
        return compiled.first(data, bound, now=workflow.now() if program.reads_clock else None)

    def _interpolate(self, value: Any, data: Any, variables: Mapping[str, Any]) -> Any:
        # Exact types first: inside the workflow sandbox every isinstance is a proxy check.
        kind = type(value)
        if kind is str:
            if "${" in value and _wrapped(value):
                return self._evaluate(value, data, variables)
            return value
        if kind is dict:
            return {k: self._interpolate(item, data, variables) for k, item in value.items()}
        if kind is list:
            return [self._interpolate(item, data, variables) for item in value]
        if value is None or kind is int or kind is float or kind is bool:
            return value
        if isinstance(value, str):
            return self._evaluate(value, data, variables) if is_expression(value) else value
        if isinstance(value, Mapping):
            return {k: self._interpolate(item, data, variables) for k, item in value.items()}
        if isinstance(value, list | tuple):
            return [self._interpolate(item, data, variables) for item in value]
        return value

    def expr(self, expression: Any, data: Any, variables: dict[str, Any], where: str) -> Any:
        """A field that is an expression by definition (bare jq or `${ }`); any other
        value is itself."""
        if not isinstance(expression, str):
            return expression
        try:
            return self._evaluate(expression, data, variables)
        except ExpressionError as err:
            raise WorkflowError(
                Problem.model_validate({**err.to_error(), "instance": where})
            ) from None

    def interpolate(self, value: Any, data: Any, variables: dict[str, Any], where: str) -> Any:
        """`value` with every string that is wholly `${ }` evaluated, at any depth."""
        try:
            return self._interpolate(value, data, variables)
        except ExpressionError as err:
            raise WorkflowError(
                Problem.model_validate({**err.to_error(), "instance": where})
            ) from None

    def transform(self, spec: Any, data: Any, variables: dict[str, Any], where: str) -> Any:
        """`input.from` / `output.as` / `export.as`: a jq string, or a value to interpolate."""
        if isinstance(spec, str):
            return self.expr(spec, data, variables, where)
        return self.interpolate(spec, data, variables, where)

    def input_of(
        self, spec: Input | None, raw: Any, variables: dict[str, Any], where: str, what: str
    ) -> Any:
        """A task's or the workflow's input: `raw` checked against `input.schema`, then
        transformed by `input.from`."""
        if spec is None:
            return raw
        check_schema(spec.schema_, raw, f"{where}/input/schema", f"the {what} input")
        if given(spec, "from_"):
            return self.transform(spec.from_, raw, variables, f"{where}/input/from")
        return raw

    def output_of(
        self,
        spec: Output | None,
        raw: Any,
        variables: dict[str, Any],
        where: str,
        what: str,
        *,
        bind_output: bool = True,
    ) -> Any:
        """A task's or the workflow's output: `raw` transformed by `output.as` (where a
        task's sees it as `$output`), then checked against `output.schema`."""
        if spec is None:
            return raw
        output = raw
        if given(spec, "as_"):
            scope = {**variables, "output": raw} if bind_output else variables
            output = self.transform(spec.as_, raw, scope, f"{where}/output/as")
        check_schema(spec.schema_, output, f"{where}/output/schema", f"the {what} output")
        return output

    def export(self, spec: Export | None, output: Any, variables: dict[str, Any], ref: str) -> None:
        """`export.as`: evaluated on the task's output, it becomes `$context`."""
        if spec is None or not given(spec, "as_"):
            return
        exported = self.transform(
            spec.as_, output, {**variables, "output": output}, f"{ref}/export/as"
        )
        if not isinstance(exported, dict):
            raise WorkflowError.of(
                ErrorType.VALIDATION,
                f"export.as must produce an object for $context, got {type(exported).__name__}",
                instance=f"{ref}/export/as",
            )
        self.context = exported
        check_schema(spec.schema_, exported, f"{ref}/export/schema", "the exported context")


# Runs recorded before this patch did not check data schemas; a run that would now fault
# on one must replay as it ran.
PATCH_DATA_SCHEMAS = "tflow-data-schemas"


def check_schema(schema: Schema | None, value: Any, where: str, what: str) -> None:
    """Fault with a validation error when `value` does not match an inline JSON Schema."""
    if schema is None or "document" not in schema.model_fields_set:
        return
    if not workflow.patched(PATCH_DATA_SCHEMAS):
        return
    problems = schema_errors(schema.document, value)
    if problems:
        raise WorkflowError.of(
            ErrorType.VALIDATION,
            f"{what} does not match its schema: " + "; ".join(problems),
            title="Schema validation failed",
            instance=where,
        )
