"""The Temporal Flow API (group ``temporalflow.dev``, version ``v1alpha1``) as pydantic models.

The models are the single source of truth: the CustomResourceDefinitions in ``crds/`` and
the CRD reference in ``docs/`` are generated from them by :mod:`tflow_operator.api.crdgen`.
"""

from tflow_operator.api.common import (
    API_VERSION,
    CATEGORY,
    GROUP,
    VERSION,
    Condition,
    ConditionStatus,
    EnvVar,
    ObjectMeta,
    ResourceNames,
    ResourceStatus,
    SecretKeyRef,
    SecretRef,
    get_condition,
    parse_duration,
    set_condition,
)
from tflow_operator.api.eventroute import EventMatch, EventRoute, EventRouteSpec, EventRouteStatus
from tflow_operator.api.listener import (
    AzureServiceBusSpec,
    Listener,
    ListenerScaling,
    ListenerSpec,
    ListenerStatus,
    ListenerType,
    SqsSpec,
    WebhookAuth,
    WebhookSpec,
)
from tflow_operator.api.workflowdefinition import (
    OverlapPolicy,
    Schedule,
    Workers,
    WorkflowDefinition,
    WorkflowDefinitionSpec,
    WorkflowDefinitionStatus,
    WorkflowDocument,
    WorkflowDocumentHeader,
)

__all__ = [
    "API_VERSION",
    "CATEGORY",
    "GROUP",
    "VERSION",
    "AzureServiceBusSpec",
    "Condition",
    "ConditionStatus",
    "EnvVar",
    "EventMatch",
    "EventRoute",
    "EventRouteSpec",
    "EventRouteStatus",
    "Listener",
    "ListenerScaling",
    "ListenerSpec",
    "ListenerStatus",
    "ListenerType",
    "ObjectMeta",
    "OverlapPolicy",
    "ResourceNames",
    "ResourceStatus",
    "Schedule",
    "SecretKeyRef",
    "SecretRef",
    "SqsSpec",
    "WebhookAuth",
    "WebhookSpec",
    "Workers",
    "WorkflowDefinition",
    "WorkflowDefinitionSpec",
    "WorkflowDefinitionStatus",
    "WorkflowDocument",
    "WorkflowDocumentHeader",
    "get_condition",
    "parse_duration",
    "set_condition",
]
