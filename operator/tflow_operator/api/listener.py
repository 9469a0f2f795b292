"""The Listener kind: a Deployment that turns outside events into CloudEvents for Temporal.

This module owns the spec (the listener type and one settings block per type: an HTTP
webhook, an SQS queue, an Azure Service Bus queue or topic subscription; replicas and
optional KEDA scaling for queue listeners; how events become flow runs), the status the
operator reports, and the rules tying the settings block to the type.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar, Literal, Self

from pydantic import ConfigDict, Field, model_validator

from tflow_operator.api.common import (
    API_VERSION,
    ApiModel,
    CelReason,
    DnsLabel,
    ObjectMeta,
    ResourceNames,
    ResourceStatus,
    SecretKeyRef,
    SecretRef,
    SpecModel,
    cel_rule,
    cel_rules,
)

NAMES = ResourceNames(
    kind="Listener",
    plural="listeners",
    singular="listener",
    short_names=("lsn",),
)

URL_PATTERN = r"^https?://[^\s]+$"


class ListenerType(StrEnum):
    """Where a listener receives events from."""

    WEBHOOK = "webhook"
    SQS = "sqs"
    AZURE_SERVICE_BUS = "azureServiceBus"


# The settings block that belongs to each type: (type, field alias).
_BLOCKS: tuple[tuple[ListenerType, str], ...] = (
    (ListenerType.WEBHOOK, "webhook"),
    (ListenerType.SQS, "sqs"),
    (ListenerType.AZURE_SERVICE_BUS, "azureServiceBus"),
)


def block_required_message(block: str) -> str:
    return f"spec.{block} is required when spec.type is {block}"


def block_forbidden_message(block: str) -> str:
    return f"spec.{block} is only allowed when spec.type is {block}"


WEBHOOK_AUTH_EMPTY_MESSAGE = (
    "spec.webhook.auth must set at least one of hmacSecretRef or bearerTokenSecretRef"
)
ASB_ENTITY_MESSAGE = "spec.azureServiceBus needs either queue, or both topic and subscription"
ASB_QUEUE_AND_TOPIC_MESSAGE = (
    "spec.azureServiceBus.queue and spec.azureServiceBus.topic are exclusive"
)
SCALING_WEBHOOK_MESSAGE = (
    "spec.scaling applies to queue listeners (sqs, azureServiceBus) only; "
    "set spec.replicas for a webhook"
)
SCALING_MIN_MAX_MESSAGE = "spec.scaling.minReplicas must not exceed spec.scaling.maxReplicas"
RUN_CONTROL_AUTH_MESSAGE = (
    "spec.webhook.runControl.enabled needs spec.webhook.auth: the run-control API "
    "(signal a run, read its status) is never served without authentication"
)
RUN_CONTROL_GITHUB_MESSAGE = (
    "spec.webhook.runControl.enabled needs spec.webhook.auth.bearerTokenSecretRef or the "
    "StandardWebhooks HMAC scheme: a GitHub signature has no timestamp, so a captured "
    "request could be replayed forever"
)
HMAC_SETTINGS_MESSAGE = "spec.webhook.auth.hmacScheme and hmacToleranceSeconds need hmacSecretRef"
DIRECT_ROUTING_SHARING_MESSAGE = (
    "spec.shareEventsWith needs spec.routing orchestrator, not direct: shared events are "
    "routed by the root orchestrator, which sees the other namespaces' routes (a direct "
    "listener has only its own namespace's)"
)


class ListenerRouting(StrEnum):
    """How a listener's events become flow runs."""

    ORCHESTRATOR = "orchestrator"
    DIRECT = "direct"


class HmacScheme(StrEnum):
    """How an HMAC-signed request carries its signature."""

    STANDARD_WEBHOOKS = "StandardWebhooks"
    GITHUB = "GitHub"


class WebhookAuth(SpecModel):
    """How a webhook authenticates callers; requests failing any configured check get 401."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            cel_rule(
                "has(self.hmacSecretRef) || has(self.bearerTokenSecretRef)",
                WEBHOOK_AUTH_EMPTY_MESSAGE,
                reason=CelReason.REQUIRED,
            ),
            cel_rule(
                "has(self.hmacSecretRef) || (!has(self.hmacScheme) && "
                "!has(self.hmacToleranceSeconds))",
                HMAC_SETTINGS_MESSAGE,
                field_path=".hmacSecretRef",
                reason=CelReason.REQUIRED,
            ),
        )
    )

    hmac_secret_ref: SecretKeyRef | None = Field(
        default=None,
        description=(
            "Secret key holding the shared secret (`whsec_<base64>` is decoded, as Standard "
            "Webhooks senders mean it); requests must carry an HMAC-SHA256 signature made "
            "with it, as hmacScheme says."
        ),
    )
    hmac_scheme: HmacScheme | None = Field(
        default=None,
        description=(
            "`StandardWebhooks` (the default): `webhook-id`, `webhook-timestamp` and "
            "`webhook-signature: v1,<base64 HMAC of id.timestamp.body>`, a timestamp within "
            "hmacToleranceSeconds, and an id seen before refused as a replay. `GitHub`: "
            "`X-Hub-Signature-256: sha256=<hex HMAC of the body>`, no timestamp, for "
            "senders that can only do that."
        ),
    )
    hmac_tolerance_seconds: int | None = Field(
        default=None,
        ge=1,
        le=3600,
        description=(
            "How far a StandardWebhooks timestamp may be from the listener's clock, either "
            "way; 300 when unset."
        ),
    )
    bearer_token_secret_ref: SecretKeyRef | None = Field(
        default=None,
        description="Secret key holding the token requests must send as `Authorization: Bearer`.",
    )

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if self.hmac_secret_ref is None and self.bearer_token_secret_ref is None:
            raise ValueError(WEBHOOK_AUTH_EMPTY_MESSAGE)
        if self.hmac_secret_ref is None and (
            self.hmac_scheme is not None or self.hmac_tolerance_seconds is not None
        ):
            raise ValueError(HMAC_SETTINGS_MESSAGE)
        return self

    @property
    def replayable(self) -> bool:
        """Whether a captured request could be sent again at any time (no bearer token,
        only a GitHub signature, which carries no timestamp)."""
        return self.bearer_token_secret_ref is None and self.hmac_scheme is HmacScheme.GITHUB


class RunControl(SpecModel):
    """The webhook's run-control API: `POST /runs/{id}/signal/{name}` and `GET /runs/{id}`."""

    enabled: bool = Field(
        default=False,
        description=(
            "Serve the run-control API. It needs spec.webhook.auth and reaches only runs of "
            "definitions in the Listener's namespace (other runs, and runs that do not "
            "exist, get 403)."
        ),
    )


class WebhookSpec(SpecModel):
    """An HTTP endpoint that accepts CloudEvents or plain JSON by POST."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            cel_rule(
                "!has(self.runControl) || !self.runControl.enabled || has(self.auth)",
                RUN_CONTROL_AUTH_MESSAGE,
                field_path=".runControl",
                reason=CelReason.FORBIDDEN,
            ),
            cel_rule(
                "!has(self.runControl) || !self.runControl.enabled || !has(self.auth)"
                " || has(self.auth.bearerTokenSecretRef) || !has(self.auth.hmacScheme)"
                " || self.auth.hmacScheme != 'GitHub'",
                RUN_CONTROL_GITHUB_MESSAGE,
                field_path=".runControl",
                reason=CelReason.FORBIDDEN,
            ),
        )
    )

    path: str = Field(
        default="/events",
        pattern=r"^/[-A-Za-z0-9._~/]*$",
        max_length=256,
        description="URL path events are POSTed to.",
    )
    port: int = Field(default=8080, ge=1, le=65535, description="Container and Service port.")
    auth: WebhookAuth | None = Field(
        default=None,
        description="Caller authentication; unauthenticated when unset.",
    )
    max_body_bytes: int = Field(
        default=1048576,
        ge=1,
        description="Largest request body accepted; larger requests get 413.",
        json_schema_extra={"format": "int64"},
    )
    rate_limit_per_second: int | None = Field(
        default=None,
        ge=1,
        description=(
            "Requests per second each replica accepts before answering 429; unlimited when unset."
        ),
    )
    run_control: RunControl | None = Field(
        default=None,
        description="The run-control API (`/runs/...`); off when unset.",
    )

    @model_validator(mode="after")
    def _run_control_needs_auth(self) -> Self:
        if self.run_control is not None and self.run_control.enabled:
            if self.auth is None:
                raise ValueError(RUN_CONTROL_AUTH_MESSAGE)
            if self.auth.replayable:
                raise ValueError(RUN_CONTROL_GITHUB_MESSAGE)
        return self


class SqsSpec(SpecModel):
    """An Amazon SQS queue, for example one receiving S3 event notifications."""

    queue_url: str = Field(
        pattern=URL_PATTERN,
        max_length=2048,
        description="URL of the queue.",
    )
    region: str = Field(
        default="us-east-1",
        pattern=r"^[a-z0-9-]+$",
        max_length=64,
        description="AWS region of the queue.",
    )
    credentials_secret_ref: SecretRef | None = Field(
        default=None,
        description=(
            "Secret with `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and optionally "
            "`AWS_SESSION_TOKEN`; the pod's ambient credentials when unset."
        ),
    )
    endpoint_url: str | None = Field(
        default=None,
        pattern=URL_PATTERN,
        max_length=2048,
        description="Custom SQS endpoint (a local or compatible server); AWS's when unset.",
    )
    wait_time_seconds: int = Field(
        default=20,
        ge=0,
        le=20,
        description="Long-poll wait of each receive call, in seconds.",
    )
    max_messages: int = Field(
        default=10,
        ge=1,
        le=10,
        description="Most messages fetched by one receive call.",
    )
    visibility_timeout_seconds: int = Field(
        default=60,
        ge=0,
        le=43200,
        description=(
            "Seconds a received message stays hidden from other consumers while it is handed "
            "to Temporal."
        ),
    )
    max_receive_count: int = Field(
        default=5,
        ge=1,
        description=(
            "A message received this many times without success is no longer retried by the "
            "listener and is left to the queue's redrive policy."
        ),
    )


class AzureServiceBusSpec(SpecModel):
    """An Azure Service Bus queue, or a subscription of a topic."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            cel_rule(
                "has(self.queue) || (has(self.topic) && has(self.subscription))",
                ASB_ENTITY_MESSAGE,
                reason=CelReason.REQUIRED,
            ),
            cel_rule(
                "!(has(self.queue) && has(self.topic))",
                ASB_QUEUE_AND_TOPIC_MESSAGE,
                field_path=".topic",
                reason=CelReason.FORBIDDEN,
            ),
        )
    )

    connection_string_secret_ref: SecretKeyRef = Field(
        description="Secret key holding the namespace connection string (`Endpoint=sb://...`).",
    )
    queue: str | None = Field(
        default=None,
        min_length=1,
        max_length=260,
        description="Queue to receive from; set this or topic and subscription.",
    )
    topic: str | None = Field(
        default=None,
        min_length=1,
        max_length=260,
        description="Topic whose subscription is received from; needs subscription.",
    )
    subscription: str | None = Field(
        default=None,
        min_length=1,
        max_length=50,
        description="Subscription of the topic to receive from.",
    )
    max_messages: int = Field(
        default=10,
        ge=1,
        le=100,
        description="Most messages fetched by one receive call.",
    )

    @model_validator(mode="after")
    def _one_entity(self) -> Self:
        if self.queue is None and (self.topic is None or self.subscription is None):
            raise ValueError(ASB_ENTITY_MESSAGE)
        if self.queue is not None and self.topic is not None:
            raise ValueError(ASB_QUEUE_AND_TOPIC_MESSAGE)
        return self


class ListenerScaling(SpecModel):
    """KEDA autoscaling of a queue listener on the queue's length; replaces spec.replicas."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            cel_rule(
                "!has(self.minReplicas) || !has(self.maxReplicas)"
                " || self.minReplicas <= self.maxReplicas",
                SCALING_MIN_MAX_MESSAGE,
                field_path=".minReplicas",
                reason=CelReason.INVALID,
            )
        )
    )

    min_replicas: int = Field(
        default=0,
        ge=0,
        description="Fewest replicas; 0 lets the listener scale to zero on an empty queue.",
    )
    max_replicas: int = Field(default=5, ge=1, description="Most replicas.")
    target_queue_length: int = Field(
        default=5,
        ge=1,
        description=(
            "Messages waiting per replica KEDA aims for when scaling out (SQS `queueLength`, "
            "Service Bus `messageCount`)."
        ),
    )
    activation_queue_length: int = Field(
        default=0,
        ge=0,
        description=(
            "Messages waiting above which KEDA wakes the listener from zero replicas "
            "(`activationQueueLength`, `activationMessageCount`)."
        ),
    )

    @model_validator(mode="after")
    def _min_not_above_max(self) -> Self:
        if self.min_replicas > self.max_replicas:
            raise ValueError(SCALING_MIN_MAX_MESSAGE)
        return self


def _listener_rules() -> list[dict[str, str]]:
    rules: list[dict[str, str]] = []
    for listener_type, block in _BLOCKS:
        if listener_type is not ListenerType.WEBHOOK:  # a webhook's block may default
            rules.append(
                cel_rule(
                    f"self.type != '{listener_type.value}' || has(self.{block})",
                    block_required_message(block),
                    field_path=f".{block}",
                    reason=CelReason.REQUIRED,
                )
            )
        rules.append(
            cel_rule(
                f"!has(self.{block}) || self.type == '{listener_type.value}'",
                block_forbidden_message(block),
                field_path=f".{block}",
                reason=CelReason.FORBIDDEN,
            )
        )
    rules.append(
        cel_rule(
            "!has(self.scaling) || self.type != 'webhook'",
            SCALING_WEBHOOK_MESSAGE,
            field_path=".scaling",
            reason=CelReason.FORBIDDEN,
        )
    )
    rules.append(
        cel_rule(
            "!has(self.routing) || self.routing != 'direct'"
            " || !has(self.shareEventsWith) || size(self.shareEventsWith) == 0",
            DIRECT_ROUTING_SHARING_MESSAGE,
            field_path=".shareEventsWith",
            reason=CelReason.FORBIDDEN,
        )
    )
    return rules


class ListenerSpec(SpecModel):
    """Desired state of a Listener."""

    model_config = ConfigDict(json_schema_extra=cel_rules(*_listener_rules()))

    type: ListenerType = Field(
        description="Where events come from: webhook, sqs or azureServiceBus.",
    )
    webhook: WebhookSpec | None = Field(
        default=None,
        description="Webhook settings, for type webhook; all defaults when unset.",
    )
    sqs: SqsSpec | None = Field(default=None, description="SQS settings, required for type sqs.")
    azure_service_bus: AzureServiceBusSpec | None = Field(
        default=None,
        description="Service Bus settings, required for type azureServiceBus.",
    )
    replicas: int = Field(
        default=1,
        ge=0,
        description="Listener replicas when spec.scaling is unset.",
    )
    image: str | None = Field(
        default=None,
        max_length=1024,
        description="Listener container image; the operator's configured default when unset.",
    )
    scaling: ListenerScaling | None = Field(
        default=None,
        description="Scale a queue listener with KEDA on the queue's length instead of replicas.",
    )
    share_events_with: list[DnsLabel] | None = Field(
        default=None,
        max_length=64,
        description=(
            "Other namespaces whose EventRoutes may also see this listener's events: the "
            "sending side of a two-sided opt-in. A route there sees them only when it lists "
            "this namespace in spec.fromNamespaces. Unset: events stay in this namespace."
        ),
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    routing: ListenerRouting = Field(
        default=ListenerRouting.ORCHESTRATOR,
        description=(
            "How events become flow runs. orchestrator (the default) starts one "
            "RootOrchestratorWorkflow per event, which routes it with every namespace's "
            "routes and records its decision in Temporal. direct: the listener matches this "
            "namespace's EventRoutes itself and starts the flow runs, with no workflow per "
            "event (about half the Temporal server's work per event; no decision record, and "
            "events cannot be shared with other namespaces)."
        ),
    )

    @model_validator(mode="after")
    def _block_matches_type(self) -> Self:
        blocks = {
            "webhook": self.webhook,
            "sqs": self.sqs,
            "azureServiceBus": self.azure_service_bus,
        }
        for listener_type, block in _BLOCKS:
            present = blocks[block] is not None
            if listener_type is self.type:
                if not present and listener_type is not ListenerType.WEBHOOK:
                    raise ValueError(block_required_message(block))
            elif present:
                raise ValueError(block_forbidden_message(block))
        if self.scaling is not None and self.type is ListenerType.WEBHOOK:
            raise ValueError(SCALING_WEBHOOK_MESSAGE)
        if self.routing is ListenerRouting.DIRECT and self.share_events_with:
            raise ValueError(DIRECT_ROUTING_SHARING_MESSAGE)
        return self

    @property
    def effective_webhook(self) -> WebhookSpec:
        """The webhook settings with defaults filled in (type webhook only)."""
        return self.webhook if self.webhook is not None else WebhookSpec()


class ListenerStatus(ResourceStatus):
    """Observed state of a Listener."""

    ready_replicas: int | None = Field(
        default=None,
        ge=0,
        description="Listener pods that are ready.",
    )
    endpoint: str | None = Field(
        default=None,
        description="Where the listener receives from: the webhook's in-cluster URL or the queue.",
    )


class Listener(ApiModel):
    """Receives events from a webhook, an SQS queue or Azure Service Bus and starts routing."""

    NAMES: ClassVar[ResourceNames] = NAMES

    api_version: Literal["temporalflow.dev/v1alpha1"] = Field(
        default=API_VERSION, description="API version."
    )
    kind: Literal["Listener"] = Field(default="Listener", description="Kind.")
    metadata: ObjectMeta = Field(default_factory=ObjectMeta, description="Object metadata.")
    spec: ListenerSpec = Field(description="Desired state.")
    status: ListenerStatus | None = Field(default=None, description="Observed state.")
