"""The EventRoute kind: which CloudEvents start which WorkflowDefinition, with what input.

This module owns the spec (a match on the event's type, source and a jq filter, the target
workflow, an optional jq input mapping, priority and an on/off switch), the status the
operator reports after compiling routes into the routing table, and the rules a spec must
satisfy.
"""

from __future__ import annotations

from typing import ClassVar, Literal, Self

from pydantic import ConfigDict, Field, model_validator

from tflow_operator.api.common import (
    API_VERSION,
    ApiModel,
    CelReason,
    DnsLabel,
    DnsSubdomain,
    JqExpression,
    ObjectMeta,
    ResourceNames,
    ResourceStatus,
    SpecModel,
    cel_rule,
    cel_rules,
)

NAMES = ResourceNames(
    kind="EventRoute",
    plural="eventroutes",
    singular="eventroute",
    short_names=("er",),
)

MATCH_EMPTY_MESSAGE = "spec.match must set at least one of type, source or filter"


class EventMatch(SpecModel):
    """Which events a route applies to; every attribute that is set must match."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            cel_rule(
                "has(self.type) || has(self.source) || has(self.filter)",
                MATCH_EMPTY_MESSAGE,
                reason=CelReason.REQUIRED,
            )
        )
    )

    type: str | None = Field(
        default=None,
        min_length=1,
        max_length=253,
        description="The CloudEvents `type` attribute must equal this, e.g. `document-added`.",
    )
    source: str | None = Field(
        default=None,
        min_length=1,
        max_length=1024,
        description="The CloudEvents `source` attribute must equal this, e.g. `s3`.",
    )
    filter: JqExpression | None = Field(
        default=None,
        description=(
            "A jq expression `${ ... }` evaluated on the whole CloudEvent; the route matches "
            'only when it yields true, e.g. `${ .data.key | endswith(".pdf") }`.'
        ),
    )

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if self.type is None and self.source is None and self.filter is None:
            raise ValueError(MATCH_EMPTY_MESSAGE)
        return self


class EventRouteSpec(SpecModel):
    """Desired state of an EventRoute."""

    match: EventMatch = Field(description="Which events this route applies to.")
    workflow: DnsSubdomain = Field(
        description="Name of the WorkflowDefinition, in the same namespace, that a match starts.",
    )
    input: JqExpression | None = Field(
        default=None,
        description=(
            "A jq expression `${ ... }` evaluated on the CloudEvent that builds the run's input, "
            "e.g. `${ {uri: .data.documentUri} }`; the event's `data` when unset."
        ),
    )
    priority: int = Field(
        default=0,
        description=(
            "When several routes match an event, the highest priority wins; ties go to the "
            "route whose namespace/name sorts first."
        ),
    )
    enabled: bool = Field(
        default=True,
        description="A disabled route stays in the cluster but matches no events.",
    )
    from_namespaces: list[DnsLabel] | None = Field(
        default=None,
        max_length=64,
        description=(
            "Other namespaces whose events this route also sees: this route's side of a "
            "two-sided opt-in. An event from namespace X reaches it only when a Listener in "
            "X also lists this route's namespace in spec.shareEventsWith (else Ready is "
            "False with reason NamespaceNotShared). Events of the route's own namespace "
            "always reach it."
        ),
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )


class EventRouteStatus(ResourceStatus):
    """Observed state of an EventRoute."""

    routing_table_hash: str | None = Field(
        default=None,
        description="Content hash of the routing table this route was last compiled into.",
    )


class EventRoute(ApiModel):
    """Routes matching CloudEvents to a WorkflowDefinition in the same namespace."""

    NAMES: ClassVar[ResourceNames] = NAMES

    api_version: Literal["temporalflow.dev/v1alpha1"] = Field(
        default=API_VERSION, description="API version."
    )
    kind: Literal["EventRoute"] = Field(default="EventRoute", description="Kind.")
    metadata: ObjectMeta = Field(default_factory=ObjectMeta, description="Object metadata.")
    spec: EventRouteSpec = Field(description="Desired state.")
    status: EventRouteStatus | None = Field(default=None, description="Observed state.")
