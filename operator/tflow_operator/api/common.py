"""Building blocks shared by every Temporal Flow custom resource.

This module owns the API group and version, the pydantic base classes (camelCase aliases,
strict spec models, lenient status models), the reusable field types (names, durations,
jq expressions, timestamps), the small shared objects (``Condition``, ``SecretKeyRef``,
``SecretRef``, ``EnvVar``, ``ObjectMeta``) and the helpers that turn CEL validation rules
into schema annotations. Nothing here knows about a particular kind.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Final, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    model_validator,
)
from pydantic.alias_generators import to_camel

GROUP: Final = "temporalflow.dev"
VERSION: Final = "v1alpha1"
API_VERSION: Final = "temporalflow.dev/v1alpha1"
CATEGORY: Final = "temporalflow"

# Every pattern below must be understood by both regex engines that enforce it: pydantic's
# (Rust `regex`) and the kube-apiserver's (Go RE2). Neither supports look-around.

DNS_LABEL_PATTERN: Final = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN_PATTERN: Final = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
SECRET_KEY_PATTERN: Final = r"^[-._a-zA-Z0-9]+$"
ENV_VAR_NAME_PATTERN: Final = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"
JQ_EXPRESSION_PATTERN: Final = r"^\s*\$\{[\s\S]*\}\s*$"

_ISO_SECONDS = r"[0-9]+(\.[0-9]+)?S"
_ISO_TIME = rf"T([0-9]+H([0-9]+M)?({_ISO_SECONDS})?|[0-9]+M({_ISO_SECONDS})?|{_ISO_SECONDS})"
_GO_DURATION = r"([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+"
DURATION_PATTERN: Final = rf"^(0|{_GO_DURATION}|P([0-9]+W|[0-9]+D({_ISO_TIME})?|{_ISO_TIME}))$"


# --------------------------------------------------------------------------- base models


class ApiModel(BaseModel):
    """Base of every API object: Python snake_case names, Kubernetes camelCase on the wire."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        serialize_by_alias=True,
    )


class SpecModel(ApiModel):
    """Base of objects users write: unknown fields are an error, never silently dropped."""

    model_config = ConfigDict(extra="forbid")


class StatusModel(ApiModel):
    """Base of objects the operator writes: unknown fields are ignored when read back."""

    model_config = ConfigDict(extra="ignore")


# --------------------------------------------------------------------------- CEL rules


class CelReason(StrEnum):
    """The reasons the apiserver accepts for a failed x-kubernetes-validations rule."""

    INVALID = "FieldValueInvalid"
    FORBIDDEN = "FieldValueForbidden"
    REQUIRED = "FieldValueRequired"
    DUPLICATE = "FieldValueDuplicate"


def cel_rule(
    rule: str,
    message: str,
    *,
    field_path: str | None = None,
    reason: CelReason | None = None,
) -> dict[str, str]:
    """One entry of ``x-kubernetes-validations``.

    ``field_path`` is relative to the object the rule is attached to (``.sqs``) and makes
    the apiserver report the error on that field instead of on the object itself.
    """
    out = {"rule": rule, "message": message}
    if field_path is not None:
        out["fieldPath"] = field_path
    if reason is not None:
        out["reason"] = reason.value
    return out


def cel_rules(*rules: dict[str, str]) -> dict[str, Any]:
    """``json_schema_extra`` value attaching CEL rules to a model or a field."""
    return {"x-kubernetes-validations": list(rules)}


# --------------------------------------------------------------------------- field types


def _to_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def format_timestamp(value: datetime) -> str:
    """RFC 3339 in UTC with second precision, as Kubernetes writes its own timestamps."""
    return _to_utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


Timestamp = Annotated[
    datetime,
    AfterValidator(_to_utc),
    PlainSerializer(format_timestamp, return_type=str, when_used="json"),
]
"""A point in time; naive values are taken as UTC, JSON output is ``2006-01-02T15:04:05Z``."""

DnsLabel = Annotated[str, Field(pattern=DNS_LABEL_PATTERN, min_length=1, max_length=63)]
DnsSubdomain = Annotated[str, Field(pattern=DNS_SUBDOMAIN_PATTERN, min_length=1, max_length=253)]
Duration = Annotated[str, Field(pattern=DURATION_PATTERN, max_length=64)]
JqExpression = Annotated[str, Field(pattern=JQ_EXPRESSION_PATTERN, max_length=16384)]


_GO_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|ms|s|m|h)")
_GO_UNITS: Final = {
    "ns": timedelta(microseconds=0.001),
    "us": timedelta(microseconds=1),
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
}
_ISO = re.compile(
    r"P(?:(?P<weeks>[0-9]+)W)?(?:(?P<days>[0-9]+)D)?"
    r"(?:T(?:(?P<hours>[0-9]+)H)?(?:(?P<minutes>[0-9]+)M)?(?:(?P<seconds>[0-9]+(?:\.[0-9]+)?)S)?)?"
)


def parse_duration(value: str) -> timedelta:
    """Parse a ``Duration`` field: Go style (``90s``, ``1h30m``) or ISO 8601 (``PT1M``)."""
    text = value.strip()
    if not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"invalid duration {value!r}: use Go style (1h30m) or ISO 8601 (PT1H)")
    if text == "0":
        return timedelta(0)
    if text.startswith("P"):
        iso = _ISO.fullmatch(text)
        if iso is None:  # pragma: no cover - DURATION_PATTERN already guarantees a match
            raise ValueError(f"invalid duration {value!r}")
        parts = {k: float(v) for k, v in iso.groupdict().items() if v is not None}
        return timedelta(**parts)
    total = timedelta(0)
    for number, unit in _GO_PART.findall(text):
        total += float(number) * _GO_UNITS[unit]
    return total


# --------------------------------------------------------------------------- shared objects


class SecretKeyRef(SpecModel):
    """A key of a Secret in the same namespace as the object that refers to it."""

    name: DnsSubdomain = Field(description="Name of the Secret, in the same namespace.")
    key: str = Field(
        pattern=SECRET_KEY_PATTERN,
        max_length=253,
        description="Key inside the Secret's data whose value is used.",
    )


class SecretRef(SpecModel):
    """A whole Secret in the same namespace as the object that refers to it."""

    name: DnsSubdomain = Field(description="Name of the Secret, in the same namespace.")


class ConfigMapKeyRef(SpecModel):
    """A key of a ConfigMap in the same namespace as the object that refers to it."""

    name: DnsSubdomain = Field(description="Name of the ConfigMap, in the same namespace.")
    key: str = Field(
        pattern=SECRET_KEY_PATTERN,
        max_length=253,
        description="Key inside the ConfigMap's data whose value is used.",
    )


ENV_SOURCE_MESSAGE: Final = "valueFrom needs exactly one of secretKeyRef and configMapKeyRef"
ENV_VALUE_MESSAGE: Final = "set value or valueFrom, not both"


class EnvVarSource(SpecModel):
    """Where an environment variable's value comes from, as in a Pod spec."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            cel_rule(
                "has(self.secretKeyRef) != has(self.configMapKeyRef)",
                ENV_SOURCE_MESSAGE,
                reason=CelReason.INVALID,
            )
        )
    )

    secret_key_ref: SecretKeyRef | None = Field(
        default=None, description="A key of a Secret in the same namespace."
    )
    config_map_key_ref: ConfigMapKeyRef | None = Field(
        default=None, description="A key of a ConfigMap in the same namespace."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.secret_key_ref is None) == (self.config_map_key_ref is None):
            raise ValueError(ENV_SOURCE_MESSAGE)
        return self


class EnvVar(SpecModel):
    """An environment variable set on a container the operator creates: a literal
    ``value``, or ``valueFrom`` a key of a Secret or ConfigMap (the kubelet reads it; the
    operator never copies it)."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            cel_rule(
                "!(has(self.value) && has(self.valueFrom))",
                ENV_VALUE_MESSAGE,
                field_path=".valueFrom",
                reason=CelReason.INVALID,
            )
        )
    )

    name: str = Field(
        pattern=ENV_VAR_NAME_PATTERN,
        max_length=256,
        description="Name of the environment variable.",
    )
    value: str | None = Field(
        default=None,
        description="Literal value of the environment variable (empty when nothing is set).",
    )
    value_from: EnvVarSource | None = Field(
        default=None, description="Take the value from a key of a Secret or ConfigMap."
    )

    @model_validator(mode="after")
    def _value_or_source(self) -> Self:
        if self.value is not None and self.value_from is not None:
            raise ValueError(ENV_VALUE_MESSAGE)
        return self


class ObjectMeta(ApiModel):
    """The parts of Kubernetes object metadata the operator reads; the rest is kept as is."""

    model_config = ConfigDict(extra="allow")

    name: str | None = Field(default=None, description="Name of the object.")
    namespace: str | None = Field(default=None, description="Namespace of the object.")
    uid: str | None = Field(default=None, description="Unique id the apiserver assigned.")
    generation: int | None = Field(default=None, description="Generation of the spec.")
    labels: dict[str, str] = Field(default_factory=dict, description="Labels.")
    annotations: dict[str, str] = Field(default_factory=dict, description="Annotations.")


class ConditionStatus(StrEnum):
    """Whether a condition holds."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(StatusModel):
    """One aspect of an object's current state, in the Kubernetes condition convention."""

    type: str = Field(
        pattern=r"^[A-Za-z]([A-Za-z0-9_.-]*[A-Za-z0-9])?$",
        max_length=128,
        description="Kind of condition in CamelCase, for example `Ready`.",
    )
    status: ConditionStatus = Field(description="Status of the condition: True, False or Unknown.")
    reason: str = Field(
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
        max_length=1024,
        description="Machine-readable CamelCase reason for the condition's last transition.",
    )
    message: str = Field(
        default="",
        max_length=32768,
        description="Human-readable details about the last transition.",
    )
    last_transition_time: Timestamp = Field(
        description="When the condition last changed from one status to another.",
    )
    observed_generation: int | None = Field(
        default=None,
        ge=0,
        description="The `metadata.generation` the condition was computed from.",
        json_schema_extra={"format": "int64"},
    )


class ResourceStatus(StatusModel):
    """What every status carries: conditions and the generation they describe."""

    conditions: list[Condition] = Field(
        default_factory=list,
        description=(
            "Current state of the object as conditions keyed by `type`; `Ready` summarises "
            "the others."
        ),
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
    )
    observed_generation: int | None = Field(
        default=None,
        ge=0,
        description="The `metadata.generation` the operator last reconciled.",
        json_schema_extra={"format": "int64"},
    )
    kopf: dict[str, Any] | None = Field(
        default=None,
        description=(
            "The operator's own bookkeeping (handler progress, a digest of the last handled "
            "spec); not part of the API."
        ),
    )


def set_condition(
    conditions: list[Condition],
    new: Condition,
) -> list[Condition]:
    """Return ``conditions`` with ``new`` replacing the condition of the same type.

    The previous ``lastTransitionTime`` is kept when the status did not change, so a
    repeated reconcile does not look like a transition.
    """
    out: list[Condition] = []
    replaced = False
    for current in conditions:
        if current.type != new.type:
            out.append(current)
            continue
        replaced = True
        if current.status == new.status:
            new = new.model_copy(update={"last_transition_time": current.last_transition_time})
        out.append(new)
    if not replaced:
        out.append(new)
    return out


def get_condition(conditions: list[Condition], type_: str) -> Condition | None:
    """The condition of the given type, if present."""
    return next((c for c in conditions if c.type == type_), None)


# --------------------------------------------------------------------------- kinds


@dataclass(frozen=True)
class ResourceNames:
    """How a kind is named to the apiserver and to kubectl."""

    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    categories: tuple[str, ...] = field(default=(CATEGORY,))

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"
