"""The KEDA objects the operator builds are accepted by the apiserver with KEDA's CRDs
installed (their OpenAPI schemas and CEL rules): the workers' ScaledObject, and the queue
listeners' ScaledObject and TriggerAuthentication for SQS and Service Bus."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tflow_devstack.controlplane import ControlPlane
from tflow_operator import keda
from tflow_operator.api.listener import ListenerSpec

pytestmark = pytest.mark.integration


def apply(kube: ControlPlane, obj: dict[str, Any]) -> dict[str, Any]:
    """Server-side apply through kubectl; returns the stored object."""
    result = kube.kubectl(
        "apply",
        "--server-side",
        "--field-manager=test",
        "-o",
        "json",
        "-f",
        "-",
        input=json.dumps(obj),
    )
    stored: dict[str, Any] = json.loads(result.stdout)
    return stored


@pytest.fixture
def owner(kube: ControlPlane, namespace: str) -> list[dict[str, Any]]:
    """A real owner (a ConfigMap), so the garbage collector leaves the objects alone."""
    cm = apply(
        kube,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "owner", "namespace": namespace},
        },
    )
    return [keda.owner_reference("v1", "ConfigMap", "owner", cm["metadata"]["uid"])]


def sqs_spec(**sqs: Any) -> ListenerSpec:
    return ListenerSpec.model_validate(
        {
            "type": "sqs",
            "sqs": {
                "queueUrl": "https://sqs.eu-west-1.amazonaws.com/123456789012/documents",
                "region": "eu-west-1",
                **sqs,
            },
            "scaling": {"minReplicas": 0, "maxReplicas": 4},
        }
    )


def test_workers_scaled_object_is_accepted(
    keda_crds: None, kube: ControlPlane, namespace: str
) -> None:
    obj = keda.scaled_object_for_workers(
        name="tflow-worker-orders",
        namespace=namespace,
        deployment="tflow-worker-orders",
        temporal_address="temporal-frontend.temporal:7233",
        temporal_namespace="default",
        task_queue="orders",
        min_replicas=0,
        max_replicas=10,
        target_backlog=5,
        activation_backlog=0,
        owner_references=[],
        authentication_ref="temporal-cloud",
    )
    stored = apply(kube, obj)
    assert stored["spec"]["triggers"] == obj["spec"]["triggers"]
    assert stored["spec"]["minReplicaCount"] == 0
    assert stored["spec"]["maxReplicaCount"] == 10
    assert stored["spec"]["pollingInterval"] == keda.WORKER_POLLING_INTERVAL
    assert stored["spec"]["cooldownPeriod"] == keda.WORKER_COOLDOWN_PERIOD


@pytest.mark.parametrize(
    "spec",
    [
        sqs_spec(credentialsSecretRef={"name": "aws-creds"}, endpointUrl="http://moto:5000"),
        sqs_spec(),  # the pods' own AWS identity
        ListenerSpec.model_validate(
            {
                "type": "azureServiceBus",
                "azureServiceBus": {
                    "connectionStringSecretRef": {"name": "sb", "key": "connection"},
                    "queue": "orders",
                },
                "scaling": {"maxReplicas": 2},
            }
        ),
        ListenerSpec.model_validate(
            {
                "type": "azureServiceBus",
                "azureServiceBus": {
                    "connectionStringSecretRef": {"name": "sb", "key": "connection"},
                    "topic": "documents",
                    "subscription": "tflow",
                },
                "scaling": {"minReplicas": 1, "maxReplicas": 3},
            }
        ),
    ],
    ids=["sqs-secret", "sqs-pod-identity", "servicebus-queue", "servicebus-topic"],
)
def test_listener_scaled_objects_are_accepted(
    keda_crds: None,
    kube: ControlPlane,
    namespace: str,
    owner: list[dict[str, Any]],
    spec: ListenerSpec,
) -> None:
    auth = keda.trigger_authentication_for_listener("tflow-listener-x", namespace, spec, owner)
    scaled = keda.scaled_object_for_listener(
        "tflow-listener-x", namespace, "tflow-listener-x", spec, owner
    )
    stored_auth = apply(kube, auth)
    stored = apply(kube, scaled)
    assert stored_auth["spec"] == auth["spec"]
    assert stored["spec"]["triggers"] == scaled["spec"]["triggers"]
    assert stored["spec"]["triggers"][0]["authenticationRef"] == {"name": "tflow-listener-x"}
    assert stored["metadata"]["ownerReferences"][0]["uid"] == owner[0]["uid"]
    assert spec.scaling is not None
    assert stored["spec"]["minReplicaCount"] == spec.scaling.min_replicas
    assert stored["spec"]["maxReplicaCount"] == spec.scaling.max_replicas


def test_the_crds_reject_what_keda_would_not_understand(
    keda_crds: None, kube: ControlPlane, namespace: str
) -> None:
    """The schema is really enforced: a trigger metadata value must be a string."""
    obj = keda.scaled_object_for_workers(
        name="bad",
        namespace=namespace,
        deployment="bad",
        temporal_address="t:7233",
        temporal_namespace="default",
        task_queue="q",
        min_replicas=0,
        max_replicas=1,
        target_backlog=1,
        activation_backlog=0,
        owner_references=[],
    )
    obj["spec"]["triggers"][0]["metadata"]["targetQueueSize"] = 5
    result = kube.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(obj), check=False)
    assert result.returncode != 0
    assert "targetQueueSize" in result.stderr
