"""Listeners through the running operator (a subprocess under its shipped RBAC role, with
a 2-second resync): kubectl apply a Listener and its children appear with the right
flags, ports and Secret mounts; a queue listener with scaling gets its KEDA objects; a
missing Secret reports Ready=False/SecretNotFound until it is created; a child deleted by
hand comes back; deleting the Listener garbage-collects the children."""

from __future__ import annotations

from typing import Any

import pytest
from operator_harness import RESYNC_SECONDS, OperatorProcess, apply, condition, get
from polling import eventually

from tflow_devstack.controlplane import ControlPlane

pytestmark = [pytest.mark.integration]

WITHIN = 3 * RESYNC_SECONDS + 20


def listener(name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "temporalflow.dev/v1alpha1",
        "kind": "Listener",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def secret(name: str, namespace: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "stringData": data,
    }


def test_webhook_listener_end_to_end(
    operator: OperatorProcess, kube: ControlPlane, namespace: str
) -> None:
    apply(
        kube,
        secret("hook", namespace, {"hmac": "shh"}),
        listener(
            "hook",
            namespace,
            {
                "type": "webhook",
                "webhook": {
                    "path": "/in",
                    "auth": {"hmacSecretRef": {"name": "hook", "key": "hmac"}},
                },
            },
        ),
    )
    deployment = eventually(
        lambda: get(kube, "deployment", "tflow-listener-hook", namespace), WITHIN
    )
    service = eventually(lambda: get(kube, "service", "tflow-listener-hook", namespace), WITHIN)
    (c,) = deployment["spec"]["template"]["spec"]["containers"]
    assert c["args"][:5] == ["webhook", "--port", "8080", "--path", "/in"]
    assert "--hmac-secret-file" in c["args"]
    assert service["spec"]["ports"][0]["port"] == 8080

    def status() -> dict[str, Any] | None:
        found = get(kube, "listener", "hook", namespace)
        return (found or {}).get("status") if condition(found, "Ready") else None

    current = eventually(status, WITHIN)
    assert (
        current["endpoint"] == f"http://tflow-listener-hook.{namespace}.svc.cluster.local:8080/in"
    )
    assert condition(get(kube, "listener", "hook", namespace), "Ready")["reason"] == "Progressing"

    # Drift: a Service deleted by hand is back within a resync period.
    kube.kubectl("delete", "service", "tflow-listener-hook", "-n", namespace)
    eventually(lambda: get(kube, "service", "tflow-listener-hook", namespace), WITHIN)

    kube.kubectl("delete", "listener", "hook", "-n", namespace)
    eventually(
        lambda: (
            get(kube, "deployment", "tflow-listener-hook", namespace) is None
            and get(kube, "service", "tflow-listener-hook", namespace) is None
        ),
        60,
    )


def test_sqs_listener_waits_for_its_secret_then_scales_with_keda(
    operator: OperatorProcess, kube: ControlPlane, namespace: str
) -> None:
    operator.allow_secrets(namespace)
    apply(
        kube,
        listener(
            "docs",
            namespace,
            {
                "type": "sqs",
                "sqs": {
                    "queueUrl": "https://sqs.eu-west-1.amazonaws.com/123456789012/docs",
                    "region": "eu-west-1",
                    "credentialsSecretRef": {"name": "aws-docs"},
                },
                "scaling": {"minReplicas": 0, "maxReplicas": 3},
            },
        ),
    )

    def not_found() -> dict[str, Any] | None:
        ready = condition(get(kube, "listener", "docs", namespace), "Ready")
        return ready if ready.get("reason") == "SecretNotFound" else None

    ready = eventually(not_found, WITHIN)
    assert ready["status"] == "False"
    assert f"Secret {namespace}/aws-docs" in ready["message"]
    assert get(kube, "deployment", "tflow-listener-docs", namespace) is None

    apply(
        kube,
        secret(
            "aws-docs",
            namespace,
            {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "s3cret"},
        ),
    )
    scaled = eventually(lambda: get(kube, "scaledobject", "tflow-listener-docs", namespace), WITHIN)
    assert scaled["spec"]["triggers"][0]["type"] == "aws-sqs-queue"
    assert get(kube, "triggerauthentication", "tflow-listener-docs", namespace) is not None
    deployment = eventually(
        lambda: get(kube, "deployment", "tflow-listener-docs", namespace), WITHIN
    )
    assert deployment["spec"]["template"]["spec"]["volumes"][0]["secret"]["secretName"] == (
        "aws-docs"
    )
    eventually(
        lambda: (
            condition(get(kube, "listener", "docs", namespace), "Ready").get("reason")
            != "SecretNotFound"
        ),
        WITHIN,
    )
