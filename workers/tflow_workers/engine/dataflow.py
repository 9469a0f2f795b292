"""A run's data flow: runtime expressions with the spec's runtime arguments bound, the
`input.from` / `output.as` / `export.as` transformations, and data schema checks.

Expression failures become `expression` errors and schema mismatches `validation`
errors, each with the JSON pointer of the field at fault, so `try` can catch them. The
clock inside expressions (`now`) is the workflow's.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow

from tflow_workers.dsl.expressions import ExpressionError, evaluate, interpolate
from tflow_workers.dsl.models import Export, Input, Output, Schema
from tflow_workers.dsl.schemas import schema_errors
from tflow_workers.engine.errors import ErrorType, Problem, WorkflowError

RUNTIME_NAME = "temporal-flow"
RUNTIME_VERSION = "0.1.0"
_RUNTIME = {"name": RUNTIME_NAME, "version": RUNTIME_VERSION}


def truthy(value: Any) -> bool:
    return value is not None and value is not False


def given(model: Input | Output | Export, field: str) -> bool:
    """Whether the document sets `field` (to null too: a null `from` or `as` has always
    transformed the data to null, and runs that did so must replay)."""
    return field in model.model_fields_set


class DataFlow:
    """The runtime arguments every expression of a run sees, and the evaluation of
    expressions against them. `context` is `$context`, replaced by each `export.as`."""

    def __init__(self) -> None:
        self.context: dict[str, Any] = {}
        self.workflow: dict[str, Any] = {}
        self.secrets: dict[str, Any] = {}

    def _variables(self, variables: dict[str, Any]) -> dict[str, Any]:
        return {
            "context": self.context,
            "workflow": self.workflow,
            "runtime": _RUNTIME,
            "secret": self.secrets,
            **variables,
        }

    def expr(self, expression: Any, data: Any, variables: dict[str, Any], where: str) -> Any:
        """A field that is an expression by definition (bare jq or `${ }`); any other
        value is itself."""
        if not isinstance(expression, str):
            return expression
        try:
            return evaluate(expression, data, self._variables(variables), now=workflow.now())
        except ExpressionError as err:
            raise WorkflowError(
                Problem.model_validate({**err.to_error(), "instance": where})
            ) from None

    def interpolate(self, value: Any, data: Any, variables: dict[str, Any], where: str) -> Any:
        """`value` with every string that is wholly `${ }` evaluated, at any depth."""
        try:
            return interpolate(value, data, self._variables(variables), now=workflow.now())
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
