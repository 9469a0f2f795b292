"""The Listener reconcile against the real apiserver (with the project's CRDs and KEDA's):
a webhook gets its Deployment and Service; an SQS listener with scaling gets a KEDA
ScaledObject and TriggerAuthentication the apiserver accepts; a missing Secret holds the
rollout with Ready=False/SecretNotFound; dropping scaling prunes the KEDA objects; and
deleting the Listener garbage-collects every child through the owner references."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from tflow_operator import listener
from tflow_operator.api.common import API_VERSION
from tflow_operator.config import Config
from tflow_operator.kube import KubeClient, KubeError
from tflow_operator.listener import reconcile_listener
from tflow_operator.listener_children import child_name

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("crds")]

CONFIG = Config(
    temporal_address="127.0.0.1:7233",
    worker_temporal_address="temporal-frontend.temporal:7233",
    listener_image="ghcr.io/temporal-flow/listener:test",
    router_task_queue="router-q",
)
KEDA = "keda.sh/v1alpha1"


async def create_listener(
    kube: KubeClient, namespace: str, name: str, spec: dict[str, Any]
) -> dict[str, Any]:
    return await kube.apply(
        {
            "apiVersion": API_VERSION,
            "kind": "Listener",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        }
    )


async def secret(kube: KubeClient, namespace: str, name: str, data: dict[str, str]) -> None:
    await kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace},
            "stringData": data,
        }
    )


def scaled_sqs_spec(queue_url: str) -> dict[str, Any]:
    """An SQS Listener's spec reading Secret `aws`, scaled by KEDA from 0 to 4."""
    return {
        "type": "sqs",
        "sqs": {
            "queueUrl": queue_url,
            "region": "eu-west-1",
            "credentialsSecretRef": {"name": "aws"},
        },
        "scaling": {"minReplicas": 0, "maxReplicas": 4},
    }


async def fetch(kube: KubeClient, namespace: str, name: str) -> dict[str, Any]:
    listener = await kube.get(API_VERSION, "Listener", namespace, name)
    assert listener is not None
    return listener


def ready(listener: dict[str, Any]) -> dict[str, Any]:
    conditions = listener.get("status", {}).get("conditions", [])
    found: list[dict[str, Any]] = [c for c in conditions if c["type"] == "Ready"]
    assert len(found) == 1, conditions
    return found[0]


async def gone(
    kube: KubeClient, kinds: list[tuple[str, str]], namespace: str, name: str, within: float = 60
) -> None:
    """Wait until none of `kinds` named `name` exists any more."""
    deadline = time.monotonic() + within
    left: list[str] = []
    while time.monotonic() < deadline:
        left = [
            kind
            for api_version, kind in kinds
            if await kube.get(api_version, kind, namespace, name) is not None
        ]
        if not left:
            return
        await asyncio.sleep(0.5)
    pytest.fail(f"still there after {within:.0f}s: {left}")


async def test_webhook_listener_gets_a_deployment_and_a_service(
    kube_client: KubeClient, namespace: str
) -> None:
    await secret(kube_client, namespace, "hook", {"hmac": "s3cret-hmac", "token": "s3cret-token"})
    body = await create_listener(
        kube_client,
        namespace,
        "orders",
        {
            "type": "webhook",
            "webhook": {
                "path": "/orders",
                "port": 9000,
                "auth": {
                    "hmacSecretRef": {"name": "hook", "key": "hmac"},
                    "bearerTokenSecretRef": {"name": "hook", "key": "token"},
                },
            },
            "replicas": 2,
        },
    )
    outcome = await reconcile_listener(kube_client, body, CONFIG)
    assert outcome.missing == []

    deployment = await kube_client.get("apps/v1", "Deployment", namespace, "tflow-listener-orders")
    service = await kube_client.get("v1", "Service", namespace, "tflow-listener-orders")
    assert deployment is not None
    assert service is not None
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["args"][:3] == ["webhook", "--port", "9000"]
    assert "--hmac-secret-file" in c["args"]
    assert "--bearer-token-file" in c["args"]
    assert {e["name"]: e["value"] for e in c["env"]}["TEMPORAL_ADDRESS"] == (
        "temporal-frontend.temporal:7233"
    )
    assert [v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v] == [
        "hook",
        "hook",
    ]
    assert "s3cret" not in str(deployment)
    assert service["spec"]["ports"][0]["port"] == 9000
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    for child in (deployment, service):
        (owner,) = child["metadata"]["ownerReferences"]
        assert owner["uid"] == body["metadata"]["uid"]
        assert owner["controller"] is True

    listener = await fetch(kube_client, namespace, "orders")
    status = listener["status"]
    assert (
        status["endpoint"]
        == f"http://tflow-listener-orders.{namespace}.svc.cluster.local:9000/orders"
    )
    assert status["readyReplicas"] == 0
    assert status["observedGeneration"] == body["metadata"]["generation"]
    # No kubelet here: the pods never become ready.
    condition = ready(listener)
    assert (condition["status"], condition["reason"]) == ("False", "Progressing")
    assert condition["observedGeneration"] == body["metadata"]["generation"]

    # A second reconcile changes nothing (same condition transition time, no new write).
    again = await reconcile_listener(kube_client, listener, CONFIG)
    assert again.status["conditions"] == status["conditions"]
    assert (await fetch(kube_client, namespace, "orders"))["metadata"]["resourceVersion"] == (
        listener["metadata"]["resourceVersion"]
    )


async def test_a_direct_listener_without_its_routing_table_says_so(
    kube_client: KubeClient, namespace: str
) -> None:
    """No operator runs here, so nothing publishes the namespace's routing table: the
    Listener's Ready names it until the ConfigMap exists, then falls back to the
    Deployment's progress (no kubelet here either)."""
    body = await create_listener(
        kube_client,
        namespace,
        "direct",
        {"type": "webhook", "webhook": {"path": "/in"}, "routing": "direct"},
    )
    await reconcile_listener(kube_client, body, CONFIG)
    condition = ready(await fetch(kube_client, namespace, "direct"))
    assert (condition["status"], condition["reason"]) == ("False", "RoutingTableMissing")
    assert "ConfigMap tflow-namespace-routing" in condition["message"]

    await kube_client.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "tflow-namespace-routing", "namespace": namespace},
            "data": {"routing-index.json": "{}"},
        }
    )
    await reconcile_listener(kube_client, await fetch(kube_client, namespace, "direct"), CONFIG)
    condition = ready(await fetch(kube_client, namespace, "direct"))
    assert (condition["status"], condition["reason"]) == ("False", "Progressing")


async def test_sqs_listener_with_scaling_gets_an_accepted_scaled_object(
    keda_crds: None, kube_client: KubeClient, namespace: str
) -> None:
    await secret(
        kube_client,
        namespace,
        "aws",
        {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "s3cret-key"},
    )
    queue_url = "https://sqs.eu-west-1.amazonaws.com/123456789012/documents"
    spec = scaled_sqs_spec(queue_url)
    body = await create_listener(kube_client, namespace, "docs", spec)
    await reconcile_listener(kube_client, body, CONFIG)

    name = child_name("docs")
    scaled = await kube_client.get(KEDA, "ScaledObject", namespace, name)
    auth = await kube_client.get(KEDA, "TriggerAuthentication", namespace, name)
    deployment = await kube_client.get("apps/v1", "Deployment", namespace, name)
    assert scaled is not None
    assert auth is not None
    assert deployment is not None
    trigger = scaled["spec"]["triggers"][0]
    assert trigger["type"] == "aws-sqs-queue"
    assert trigger["metadata"]["queueURL"] == queue_url
    assert trigger["authenticationRef"] == {"name": name}
    assert (scaled["spec"]["minReplicaCount"], scaled["spec"]["maxReplicaCount"]) == (0, 4)
    assert scaled["spec"]["scaleTargetRef"]["name"] == name
    assert {r["parameter"] for r in auth["spec"]["secretTargetRef"]} >= {
        "awsAccessKeyID",
        "awsSecretAccessKey",
    }
    assert "s3cret" not in str(auth)
    # The operator did not set a replica count: the apiserver's default until KEDA acts.
    managed = [
        f
        for f in deployment["metadata"]["managedFields"]
        if f["manager"] == "temporal-flow-operator"
    ]
    assert managed
    assert all("f:replicas" not in str(f.get("fieldsV1", {})) for f in managed)
    assert (await fetch(kube_client, namespace, "docs"))["status"]["endpoint"] == queue_url

    # Dropping spec.scaling prunes the KEDA objects and gives the replica count back to spec.
    spec.pop("scaling")
    spec["replicas"] = 2
    body = await create_listener(kube_client, namespace, "docs", spec)
    outcome = await reconcile_listener(kube_client, body, CONFIG)
    # A running KEDA holds a ScaledObject until its finalizer has run; the reconcile waits
    # for that, and the handler retries as below while it is still held.
    deadline = time.monotonic() + 60
    while outcome.releasing and time.monotonic() < deadline:
        await asyncio.sleep(1)
        outcome = await reconcile_listener(
            kube_client, await fetch(kube_client, namespace, "docs"), CONFIG
        )
    assert outcome.releasing == []
    for kind in ("ScaledObject", "TriggerAuthentication"):
        assert await kube_client.get(KEDA, kind, namespace, name) is None
    deployment = await kube_client.get("apps/v1", "Deployment", namespace, name)
    assert deployment is not None
    assert deployment["spec"]["replicas"] == 2


HOLD = "tests.temporalflow.dev/hold"


async def set_finalizers(
    kube: KubeClient, path: str, change: Callable[[list[str]], list[str]]
) -> None:
    """Change an object's finalizers with a JSON patch guarded by its resourceVersion (a
    running KEDA may add its own concurrently)."""
    while True:
        current = await kube._request("GET", path)
        patch = [
            {
                "op": "test",
                "path": "/metadata/resourceVersion",
                "value": current["metadata"]["resourceVersion"],
            },
            {
                "op": "add",
                "path": "/metadata/finalizers",
                "value": change(current["metadata"].get("finalizers") or []),
            },
        ]
        try:
            await kube._request(
                "PATCH", path, body=patch, content_type="application/json-patch+json"
            )
            return
        except KubeError as err:
            if err.status not in (409, 422):
                raise


async def test_replica_count_comes_back_once_keda_releases_the_scaled_object(
    keda_crds: None,
    kube_client: KubeClient,
    namespace: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The test plays KEDA: its finalizer holds the ScaledObject after the operator
    deleted it, and it scales the Deployment to zero meanwhile (as KEDA's scale loop may
    until its finalizer runs). The reconcile reports the object as releasing, and the
    first reconcile after it is gone gives the Deployment its replica count back."""
    monkeypatch.setattr(listener, "KEDA_RELEASE_SECONDS", 0.5)
    await secret(
        kube_client, namespace, "aws", {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"}
    )
    spec = scaled_sqs_spec("https://sqs.eu-west-1.amazonaws.com/123456789012/held")
    await reconcile_listener(
        kube_client, await create_listener(kube_client, namespace, "held", spec), CONFIG
    )
    name = child_name("held")
    scaled_path = f"/apis/{KEDA}/namespaces/{namespace}/scaledobjects/{name}"
    await set_finalizers(kube_client, scaled_path, lambda f: [*f, HOLD])

    spec.pop("scaling")
    spec["replicas"] = 2
    body = await create_listener(kube_client, namespace, "held", spec)
    outcome = await reconcile_listener(kube_client, body, CONFIG)
    held = f"ScaledObject {namespace}/{name}"
    # A running KEDA holds the TriggerAuthentication by a finalizer of its own too, for as
    # long as it takes to run it: it may be reported beside the held ScaledObject.
    keda_objects = {held, f"TriggerAuthentication {namespace}/{name}"}
    assert held in outcome.releasing
    assert set(outcome.releasing) <= keda_objects
    # Asked for again, a terminating object is reported without a second wait.
    again = await reconcile_listener(
        kube_client, await fetch(kube_client, namespace, "held"), CONFIG
    )
    assert held in again.releasing
    assert set(again.releasing) <= keda_objects

    await kube_client._request(
        "PATCH",
        f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale",
        body={"spec": {"replicas": 0}},
        content_type="application/merge-patch+json",
    )
    await set_finalizers(kube_client, scaled_path, lambda f: [x for x in f if x != HOLD])
    await gone(kube_client, [(KEDA, "ScaledObject")], namespace, name)

    deployment = await kube_client.get("apps/v1", "Deployment", namespace, name)
    assert deployment is not None
    # What the stand-in KEDA left (a real KEDA's HPA, while it is still being collected,
    # may have moved it to 1 since): not the spec's count, which only the reconcile sets.
    assert deployment["spec"]["replicas"] != 2
    outcome = await reconcile_listener(
        kube_client, await fetch(kube_client, namespace, "held"), CONFIG
    )
    assert outcome.releasing == []
    deployment = await kube_client.get("apps/v1", "Deployment", namespace, name)
    assert deployment is not None
    assert deployment["spec"]["replicas"] == 2


async def test_missing_secret_holds_the_rollout(kube_client: KubeClient, namespace: str) -> None:
    body = await create_listener(
        kube_client,
        namespace,
        "bus",
        {
            "type": "azureServiceBus",
            "azureServiceBus": {
                "connectionStringSecretRef": {"name": "sb-conn", "key": "connectionString"},
                "queue": "orders",
            },
        },
    )
    outcome = await reconcile_listener(kube_client, body, CONFIG)
    assert outcome.missing == [f"Secret {namespace}/sb-conn"]
    listener = await fetch(kube_client, namespace, "bus")
    condition = ready(listener)
    assert (condition["status"], condition["reason"]) == ("False", "SecretNotFound")
    assert f"{namespace}/sb-conn" in condition["message"]
    assert condition["observedGeneration"] == body["metadata"]["generation"]
    assert await kube_client.get("apps/v1", "Deployment", namespace, child_name("bus")) is None

    # The Secret without the key is still not enough; with it the listener rolls out.
    await secret(kube_client, namespace, "sb-conn", {"other": "x"})
    outcome = await reconcile_listener(kube_client, listener, CONFIG)
    assert outcome.missing == [f"key 'connectionString' of Secret {namespace}/sb-conn"]
    await secret(kube_client, namespace, "sb-conn", {"connectionString": "Endpoint=sb://x/;K=v"})
    listener = await fetch(kube_client, namespace, "bus")
    outcome = await reconcile_listener(kube_client, listener, CONFIG)
    assert outcome.missing == []
    assert await kube_client.get("apps/v1", "Deployment", namespace, child_name("bus")) is not None
    condition = ready(await fetch(kube_client, namespace, "bus"))
    assert condition["reason"] == "Progressing"


async def test_deleting_the_listener_collects_its_children(
    kube_client: KubeClient, namespace: str
) -> None:
    body = await create_listener(kube_client, namespace, "gone", {"type": "webhook"})
    await reconcile_listener(kube_client, body, CONFIG)
    name = child_name("gone")
    assert await kube_client.get("apps/v1", "Deployment", namespace, name) is not None
    assert await kube_client.get("v1", "Service", namespace, name) is not None

    await kube_client.delete(API_VERSION, "Listener", namespace, "gone")
    await gone(kube_client, [("apps/v1", "Deployment"), ("v1", "Service")], namespace, name)
