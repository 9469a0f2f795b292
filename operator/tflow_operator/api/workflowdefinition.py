"""The WorkflowDefinition kind: one Serverless Workflow 1.0 document and how it runs.

This module owns the spec (task queue, worker autoscaling, optional Temporal Schedule and
the workflow document itself), the status the operator reports, and the rules a spec must
satisfy. The document is kept loosely typed here; the engine in ``tflow_workers``
validates it in depth.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import ConfigDict, Field, model_validator

from tflow_operator.api.common import (
    API_VERSION,
    DNS_LABEL_PATTERN,
    ApiModel,
    CelReason,
    Duration,
    EnvVar,
    ObjectMeta,
    ResourceNames,
    ResourceStatus,
    SpecModel,
    Timestamp,
    cel_rule,
    cel_rules,
)
from tflow_workers.temporal_namespaces import TEMPORAL_NAMESPACE_PATTERN

NAMES = ResourceNames(
    kind="WorkflowDefinition",
    plural="workflowdefinitions",
    singular="workflowdefinition",
    short_names=("wfd",),
)

MIN_MAX_REPLICAS_MESSAGE = "spec.workers.minReplicas must not exceed spec.workers.maxReplicas"
WORKFLOW_SHAPE_MESSAGE = (
    "spec.workflow must be a Serverless Workflow 1.0 document with `document` and `do`"
)
DOCUMENT_FIELDS_MESSAGE = "spec.workflow.document must set dsl, namespace, name and version"
DSL_VERSION_MESSAGE = "spec.workflow.document.dsl must be a 1.0.x version such as 1.0.0"
DSL_VERSION_PATTERN = r"^1[.]0[.][0-9]+(-[0-9A-Za-z.-]+)?$"


class OverlapPolicy(StrEnum):
    """What a Temporal Schedule does when a run is due while an earlier one still runs."""

    SKIP = "Skip"
    BUFFER_ONE = "BufferOne"
    BUFFER_ALL = "BufferAll"
    CANCEL_OTHER = "CancelOther"
    TERMINATE_OTHER = "TerminateOther"
    ALLOW_ALL = "AllowAll"


CronExpression = Annotated[str, Field(min_length=1, max_length=256)]


class Workers(SpecModel):
    """The worker Deployment that runs this task queue, scaled by KEDA on its backlog."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            cel_rule(
                "!has(self.minReplicas) || !has(self.maxReplicas)"
                " || self.minReplicas <= self.maxReplicas",
                MIN_MAX_REPLICAS_MESSAGE,
                field_path=".minReplicas",
                reason=CelReason.INVALID,
            )
        )
    )

    min_replicas: int = Field(
        default=0,
        ge=0,
        description="Fewest worker replicas; 0 lets the Deployment scale to zero when idle.",
    )
    max_replicas: int = Field(default=10, ge=1, description="Most worker replicas.")
    target_backlog: int = Field(
        default=5,
        ge=1,
        description="Task queue backlog per replica KEDA aims for when scaling out.",
    )
    activation_backlog: int = Field(
        default=0,
        ge=0,
        description="Backlog above which KEDA wakes the Deployment from zero replicas.",
    )
    image: str | None = Field(
        default=None,
        max_length=1024,
        description="Worker container image; the operator's configured default when unset.",
    )
    resources: dict[str, Any] | None = Field(
        default=None,
        description=(
            "Compute resources of the worker container, as in a Pod spec (`requests` and `limits`)."
        ),
    )
    env: list[EnvVar] = Field(
        default_factory=list,
        description="Extra environment variables for the worker container.",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
        },
    )

    @model_validator(mode="after")
    def _min_not_above_max(self) -> Self:
        if self.min_replicas > self.max_replicas:
            raise ValueError(MIN_MAX_REPLICAS_MESSAGE)
        return self


class Schedule(SpecModel):
    """Runs of this workflow started by a Temporal Schedule the operator keeps in sync."""

    cron: list[CronExpression] = Field(
        min_length=1,
        description=(
            "Cron expressions (five fields, or @hourly style); a run starts at every time "
            "any of them matches."
        ),
    )
    timezone: str = Field(
        default="UTC",
        min_length=1,
        max_length=64,
        description="IANA time zone the cron expressions are read in, for example Europe/Paris.",
    )
    overlap: OverlapPolicy = Field(
        default=OverlapPolicy.SKIP,
        description="What to do when a run is due while the previous one is still running.",
    )
    catchup_window: Duration = Field(
        default="1m",
        description=(
            "How late a missed run (while Temporal was unavailable) may still start; "
            "Go (90s, 1h) or ISO 8601 (PT1M) duration."
        ),
    )
    jitter: Duration | None = Field(
        default=None,
        description="Random delay of up to this duration added to each run's start time.",
    )
    paused: bool = Field(default=False, description="Keep the schedule but start no runs.")
    input: dict[str, Any] = Field(
        default_factory=dict,
        description="Input every scheduled run starts with.",
    )


class WorkflowDocumentHeader(ApiModel):
    """The `document` section of a Serverless Workflow: which workflow this is."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra=lambda schema: _loosen(
            schema,
            cel_rule(
                "has(self.dsl) && has(self.__namespace__) && has(self.name) && has(self.version)",
                DOCUMENT_FIELDS_MESSAGE,
                reason=CelReason.REQUIRED,
            ),
        ),
    )

    dsl: str = Field(
        max_length=64,
        description="Version of the Serverless Workflow DSL the document is written in (1.0.x).",
        json_schema_extra=cel_rules(
            cel_rule(f"self.matches('{DSL_VERSION_PATTERN}')", DSL_VERSION_MESSAGE)
        ),
    )
    namespace: str = Field(max_length=253, description="Namespace of the workflow in the DSL.")
    name: str = Field(max_length=253, description="Name of the workflow in the DSL.")
    version: str = Field(max_length=64, description="Semantic version of the workflow.")

    @model_validator(mode="after")
    def _dsl_is_1_0(self) -> Self:
        if not re.fullmatch(DSL_VERSION_PATTERN, self.dsl):
            raise ValueError(DSL_VERSION_MESSAGE)
        return self


class EmbeddedWorkflow(ApiModel):
    """A Serverless Workflow 1.0 document; keys other than `document` and `do` are kept."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra=lambda schema: _loosen(
            schema,
            cel_rule(
                "has(self.document) && has(self.do)",
                WORKFLOW_SHAPE_MESSAGE,
                reason=CelReason.REQUIRED,
            ),
        ),
    )

    document: WorkflowDocumentHeader = Field(
        description="Identifies the workflow: dsl, namespace, name and version.",
    )
    do: list[dict[str, Any]] = Field(
        min_length=1,
        description="The tasks the workflow performs, in order; each item maps a name to a task.",
    )


def _loosen(schema: dict[str, Any], *rules: dict[str, str]) -> None:
    """Turn the schema's ``required`` into CEL rules with readable messages."""
    schema.pop("required", None)
    schema["x-kubernetes-validations"] = list(rules)


class WorkflowDefinitionSpec(SpecModel):
    """Desired state of a WorkflowDefinition."""

    task_queue: str = Field(
        pattern=DNS_LABEL_PATTERN,
        min_length=1,
        max_length=63,
        description=(
            "Temporal task queue this workflow's runs are executed on; one worker Deployment "
            "serves each task queue. Lower-case letters, digits and '-'."
        ),
    )
    temporal_namespace: str | None = Field(
        default=None,
        pattern=TEMPORAL_NAMESPACE_PATTERN,
        max_length=255,
        description=(
            "Temporal namespace of this workflow's runs, workers and schedule: one of those "
            "the operator's temporal.namespaces lets this Kubernetes namespace use. Unset: "
            "the first of them, or the shared Temporal namespace when this namespace is not "
            "mapped. A definition asking for another is not Valid "
            "(TemporalNamespaceNotAllowed)."
        ),
    )
    workers: Workers = Field(
        default_factory=Workers,
        description="Worker Deployment and autoscaling for the task queue.",
        json_schema_extra={"default": {}},
    )
    schedule: Schedule | None = Field(
        default=None,
        description="Start runs on a schedule (a Temporal Schedule); no schedule when unset.",
    )
    workflow: EmbeddedWorkflow = Field(
        description=(
            "The Serverless Workflow 1.0 document every run executes (`document`, `do`, and "
            "optionally `input`, `output`, `use`, `timeout`...). Runs keep the document they "
            "started with."
        ),
    )


class WorkflowDefinitionStatus(ResourceStatus):
    """Observed state of a WorkflowDefinition."""

    version: str | None = Field(
        default=None,
        description=(
            "Version new runs start with: the document's version and a short hash of spec.workflow."
        ),
    )
    task_queue: str | None = Field(
        default=None,
        description="Task queue the worker Deployment currently serves.",
    )
    temporal_namespace: str | None = Field(
        default=None,
        description="Temporal namespace the runs, workers and schedule currently live in.",
    )
    last_run: Timestamp | None = Field(default=None, description="When the last run started.")
    next_run: Timestamp | None = Field(
        default=None,
        description="When the schedule starts the next run, if scheduled.",
    )
    running: int | None = Field(default=None, ge=0, description="Runs currently open.")


class WorkflowDefinition(ApiModel):
    """A Serverless Workflow 1.0 document run on Temporal, with its workers and schedule."""

    NAMES: ClassVar[ResourceNames] = NAMES

    api_version: Literal["temporalflow.dev/v1alpha1"] = Field(
        default=API_VERSION, description="API version."
    )
    kind: Literal["WorkflowDefinition"] = Field(default="WorkflowDefinition", description="Kind.")
    metadata: ObjectMeta = Field(default_factory=ObjectMeta, description="Object metadata.")
    spec: WorkflowDefinitionSpec = Field(description="Desired state.")
    status: WorkflowDefinitionStatus | None = Field(default=None, description="Observed state.")
