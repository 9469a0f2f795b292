"""Serverless Workflow errors (RFC 7807 problem details) inside the interpreter, and their
passage through Temporal: activities raise them as ApplicationErrors whose details carry
the problem, the interpreter turns failures back into them so `try`/`catch` can match."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict

ERROR_BASE = "https://serverlessworkflow.io/spec/1.0.0/errors/"


class ErrorType:
    """The spec's standard error types and their default statuses."""

    CONFIGURATION = ERROR_BASE + "configuration"
    VALIDATION = ERROR_BASE + "validation"
    EXPRESSION = ERROR_BASE + "expression"
    AUTHENTICATION = ERROR_BASE + "authentication"
    AUTHORIZATION = ERROR_BASE + "authorization"
    TIMEOUT = ERROR_BASE + "timeout"
    COMMUNICATION = ERROR_BASE + "communication"
    RUNTIME = ERROR_BASE + "runtime"


# The CTK and parts of the spec's text spell the standard types this way; a catch filter
# written either way matches the error the engine raised.
ERROR_ALIAS_BASE = "https://serverlessworkflow.io/dsl/errors/types/"


def same_error_type(wanted: Any, actual: Any) -> bool:
    """Whether a catch filter's `type` names the error type `actual`, accepting both
    spellings of the spec's standard types."""
    if wanted == actual:
        return True
    if not isinstance(wanted, str) or not isinstance(actual, str):
        return False

    def kind(uri: str) -> str | None:
        for base in (ERROR_BASE, ERROR_ALIAS_BASE):
            if uri.startswith(base):
                return uri[len(base) :]
        return None

    return kind(wanted) is not None and kind(wanted) == kind(actual)


DEFAULT_STATUS = {
    ErrorType.CONFIGURATION: 400,
    ErrorType.VALIDATION: 400,
    ErrorType.EXPRESSION: 400,
    ErrorType.AUTHENTICATION: 401,
    ErrorType.AUTHORIZATION: 403,
    ErrorType.TIMEOUT: 408,
    ErrorType.COMMUNICATION: 500,
    ErrorType.RUNTIME: 500,
}

# The ApplicationError type name that marks a failure as carrying a problem document.
APPLICATION_ERROR_TYPE = "ServerlessWorkflowError"


class Problem(BaseModel):
    """An error as the DSL describes it; what `catch ... as: err` binds."""

    model_config = ConfigDict(extra="allow")

    type: str
    status: int
    title: str | None = None
    detail: str | None = None
    instance: str | None = None
    data: Any = None

    def as_data(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


class WorkflowError(Exception):
    """A DSL error raised while running a document."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        super().__init__(problem.detail or problem.title or problem.type)

    @classmethod
    def of(
        cls,
        type_: str,
        detail: str | None = None,
        *,
        title: str | None = None,
        status: int | None = None,
        instance: str | None = None,
        data: Any = None,
    ) -> WorkflowError:
        return cls(
            Problem(
                type=type_,
                status=status if status is not None else DEFAULT_STATUS.get(type_, 500),
                title=title,
                detail=detail,
                instance=instance,
                data=data,
            )
        )

    def at(self, instance: str) -> WorkflowError:
        """Fill in the JSON pointer of the task that raised it, unless already set."""
        if self.problem.instance is None:
            self.problem = self.problem.model_copy(update={"instance": instance})
        return self


# Temporal refuses a payload over 2 MiB (its default blob size limit); checking first
# turns an opaque server rejection into an error that names the limit and the culprit.
PAYLOAD_LIMIT_BYTES = 2 * 1024 * 1024


# One encoder for every check (`json.dumps` with options builds a new one per call). Its
# output is ASCII (`ensure_ascii`), so its length in characters is its size in bytes.
_SIZE_ENCODER = json.JSONEncoder(separators=(",", ":"), default=str)


def payload_size(value: Any) -> int:
    # `iterencode(..., True)` is what `encode` runs, without its `isinstance` checks
    # (proxied in the workflow sandbox).
    return len("".join(_SIZE_ENCODER.iterencode(value, True)))


def check_payload(value: Any, what: str, instance: str | None = None) -> None:
    check_payload_size(payload_size(value), what, instance)


def check_payload_size(size: int, what: str, instance: str | None = None) -> None:
    """Fault when `size` bytes of a payload named `what` are over Temporal's limit."""
    if size > PAYLOAD_LIMIT_BYTES:
        raise WorkflowError.of(
            ErrorType.RUNTIME,
            f"{what} is {size / 1048576:.1f} MiB, over Temporal's payload limit of "
            f"{PAYLOAD_LIMIT_BYTES // 1048576} MiB; pass a reference (e.g. a document store "
            "URI) instead of the data",
            title="Payload too large",
            status=413,
            instance=instance,
        )
