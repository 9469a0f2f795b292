"""What crosses the interpreter's boundary: a run's input (the document snapshot, its
data, where it came from), its status with the ordered task log, and the search
attributes and memo that let a person find runs in the Temporal UI and CLI."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from temporalio.common import SearchAttributeKey

from tflow_workers.engine.errors import Problem

WORKFLOW_TYPE = "ServerlessWorkflow"

# Registered on the Temporal namespace (dev server flags, or the operator at start-up).
SA_DEFINITION = SearchAttributeKey.for_keyword("TflowDefinition")
SA_VERSION = SearchAttributeKey.for_keyword("TflowVersion")
SA_EVENT_TYPE = SearchAttributeKey.for_keyword("TflowEventType")
SA_EVENT_SOURCE = SearchAttributeKey.for_keyword("TflowEventSource")
SA_CURRENT_TASK = SearchAttributeKey.for_keyword("TflowCurrentTask")
# The Kubernetes namespace a run belongs to (its WorkflowDefinition's, or for a
# RootOrchestrator run the namespace of the Listener that received its event). Tenancy is
# checked against this attribute, never against a workflow id a caller could choose.
SA_NAMESPACE = SearchAttributeKey.for_keyword("TflowNamespace")
# The event types a run's current `listen` waits for, so the router can find the runs an
# event should be delivered to.
SA_LISTENING = SearchAttributeKey.for_keyword_list("TflowListening")
SEARCH_ATTRIBUTES: dict[str, str] = {
    **{
        key.name: "Keyword"
        for key in (
            SA_DEFINITION,
            SA_VERSION,
            SA_EVENT_TYPE,
            SA_EVENT_SOURCE,
            SA_CURRENT_TASK,
            SA_NAMESPACE,
        )
    },
    SA_LISTENING.name: "KeywordList",
}

# How many task log entries a run keeps; older ones are counted, not kept, so a long
# loop cannot grow the query result (or the continue-as-new input) without bound.
TASK_LOG_LIMIT = 500


class _Model(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")


class DefinitionRef(_Model):
    """The WorkflowDefinition a run was started from (absent for ad-hoc runs)."""

    name: str
    namespace: str = "default"
    version: str | None = None


class ResumeState(_Model):
    """What a run carries across continue-as-new: where it was and what it had."""

    next_task: int
    data: Any = None
    # Set when the run continued as new inside a top-level `for` loop: the loop resumes
    # at this iteration with this loop-carried data.
    loop_index: int | None = None
    loop_data: Any = None
    context: dict[str, Any] = Field(default_factory=dict)
    started_at: datetime
    workflow_input: Any = None
    log: list[TaskLogEntry] = Field(default_factory=list)
    log_dropped: int = 0
    pending_events: list[dict[str, Any]] = Field(default_factory=list)


class RunInput(_Model):
    """The interpreter's input: the document travels with the run (a snapshot)."""

    document: dict[str, Any]
    input: Any = None
    definition: DefinitionRef | None = None
    event: dict[str, Any] | None = None
    resume: ResumeState | None = None


# "continued": the task was still going when the run continued as new; the next run's
# log carries on with it.
TaskOutcome = Literal["running", "completed", "faulted", "skipped", "cancelled", "continued"]


# Text rather than the value: a cut value is not JSON, and a string does not keep the
# task's data (and whatever it refers to) alive in the worker (engine.tasklog).
class DataPreview(_Model):
    """A task's input or output as compact JSON text, cut at 4096 characters (then
    `truncated` is true and `text` is not valid JSON)."""

    text: str
    truncated: bool = False


class TaskLogEntry(_Model):
    # Fields a newer worker adds are ignored, so an older reader still parses its answers.
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    name: str
    reference: str
    kind: str
    started_at: datetime
    ended_at: datetime | None = None
    outcome: TaskOutcome = "running"
    error: Problem | None = None
    # The task's transformed input and its output (absent from older workers' answers, for
    # a skipped task, and where the run's preview budget let them go; engine.tasklog).
    # Left out of the JSON when absent, so an entry without them (as the continue-as-new
    # input carries them) is written exactly as older workers wrote and read it.
    input: DataPreview | None = Field(default=None, exclude_if=lambda v: v is None)
    output: DataPreview | None = Field(default=None, exclude_if=lambda v: v is None)


RunPhase = Literal["pending", "running", "waiting", "completed", "faulted", "cancelled"]


class RunStatus(_Model):
    """The `status` query's answer: the audit trail of a run."""

    phase: RunPhase
    current_task: str | None = None
    log: list[TaskLogEntry] = Field(default_factory=list)
    log_dropped: int = 0
    output: Any = None
    error: Problem | None = None


ResumeState.model_rebuild()


# Built-in activities, called by name so workflow code never imports their I/O.
ACTIVITY_HTTP = "tflow.http"
ACTIVITY_EMIT = "tflow.emit"
ACTIVITY_RESOLVE = "tflow.resolve-definition"
ACTIVITY_SECRETS = "tflow.secrets"
ACTIVITY_OPENAPI = "tflow.openapi"


class HttpRequest(_Model):
    method: str
    uri: str
    headers: dict[str, str] = Field(default_factory=dict)
    # A list repeats the parameter (`?status=a&status=b`).
    query: dict[str, str | list[str]] = Field(default_factory=dict)
    body: Any = None
    output: Literal["content", "response", "raw"] = "content"
    redirect: bool = False
    basic: tuple[str, str] | None = None
    bearer: str | None = None


class OpenApiRequest(_Model):
    """A `call: openapi`: the activity reads the document and builds the HTTP request."""

    document: str
    operation_id: str
    parameters: dict[str, Any] = Field(default_factory=dict)
    output: Literal["content", "response", "raw"] = "content"
    redirect: bool = False
    basic: tuple[str, str] | None = None
    bearer: str | None = None


class ResolveRequest(_Model):
    namespace: str
    name: str
    version: str | None = None


class ResolvedDefinition(_Model):
    document: dict[str, Any]
    task_queue: str | None = None
    definition: DefinitionRef | None = None
    # The Temporal namespace its runs live in, when the worker knows it (see
    # tflow_workers.temporal_namespaces); None: wherever the starter is.
    temporal_namespace: str | None = None
