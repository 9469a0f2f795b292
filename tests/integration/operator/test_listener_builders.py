"""The Listener's children as the operator builds them (no servers): the Deployment's
command line is one the real `python -m tflow_listeners` accepts, credentials are only
mounted from the referenced Secrets, a listener that routes its events itself mounts its
namespace's routing table, names stay valid, and Ready follows the Deployment."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from pydantic import ValidationError

from tflow_listeners.__main__ import SOURCES, build_parser
from tflow_operator import keda
from tflow_operator.api.listener import ListenerSpec
from tflow_operator.config import Config
from tflow_operator.listener_children import (
    child_name,
    listener_children,
    listener_deployment,
    listener_endpoint,
    ready_condition,
    secret_mounts,
)
from tflow_operator.pods import PodTrouble
from tflow_operator.workers import MAX_NAMESPACE_SHARDS

CONFIG = Config(
    temporal_address="temporal-frontend.temporal:7233",
    worker_temporal_address="temporal-frontend.temporal:7233",
    temporal_namespace="shop",
    listener_image="ghcr.io/temporal-flow/listener:test",
    router_task_queue="router-q",
)
UID = "5b2f1c4e-0000-4000-8000-000000000001"
TMP_VOLUME = {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}

WEBHOOK = {
    "type": "webhook",
    "webhook": {
        "path": "/hooks/orders",
        "port": 9000,
        "maxBodyBytes": 65536,
        "rateLimitPerSecond": 20,
        "runControl": {"enabled": True},
        "auth": {
            "hmacSecretRef": {"name": "hook-secrets", "key": "hmac"},
            "bearerTokenSecretRef": {"name": "hook-token", "key": "token"},
        },
    },
    "replicas": 2,
}
SQS = {
    "type": "sqs",
    "sqs": {
        "queueUrl": "http://127.0.0.1:5000/123456789012/documents",
        "region": "eu-west-1",
        "endpointUrl": "http://127.0.0.1:5000",
        "credentialsSecretRef": {"name": "aws"},
        "waitTimeSeconds": 5,
    },
    "scaling": {"minReplicas": 0, "maxReplicas": 3},
}
SERVICE_BUS = {
    "type": "azureServiceBus",
    "azureServiceBus": {
        "connectionStringSecretRef": {"name": "sb", "key": "connectionString"},
        "topic": "documents",
        "subscription": "tflow",
    },
}


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


@pytest.mark.parametrize("raw", [WEBHOOK, SQS, SERVICE_BUS], ids=["webhook", "sqs", "servicebus"])
def test_the_listener_command_line_parses(raw: dict[str, Any]) -> None:
    """The args the operator writes are the flags the listener process defines."""
    spec = ListenerSpec.model_validate(raw)
    args = container(listener_deployment("orders", "shop", UID, spec, CONFIG))["args"]
    assert args[0] in SOURCES
    assert build_parser(args[0]).parse_args(args).source == args[0]


def test_webhook_deployment() -> None:
    spec = ListenerSpec.model_validate(WEBHOOK)
    deployment = listener_deployment("orders", "shop", UID, spec, CONFIG)
    c = container(deployment)
    assert deployment["metadata"]["name"] == "tflow-listener-orders"
    assert deployment["spec"]["replicas"] == 2
    assert c["image"] == "ghcr.io/temporal-flow/listener:test"
    assert c["command"] == ["python", "-m", "tflow_listeners"]
    assert c["args"] == [
        "webhook",
        "--port", "9000",
        "--path", "/hooks/orders",
        "--max-body-bytes", "65536",
        "--rate-limit", "20",
        "--hmac-secret-file", "/etc/tflow/secrets/hmac/secret",
        "--bearer-token-file", "/etc/tflow/secrets/bearer-token/token",
        "--run-control",
    ]  # fmt: skip
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env == {
        "TEMPORAL_ADDRESS": "temporal-frontend.temporal:7233",
        "TEMPORAL_NAMESPACE": "shop",
        "TFLOW_LISTENER_TASK_QUEUE": "router-q",
        "TFLOW_LISTENER_KUBE_NAMESPACE": "shop",
    }
    assert c["ports"] == [{"name": "http", "containerPort": 9000, "protocol": "TCP"}]
    assert c["readinessProbe"] == {
        "httpGet": {"path": "/readyz", "port": "http"},
        "periodSeconds": 2,
    }
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    assert volumes == [
        {
            "name": "hmac",
            "secret": {
                "secretName": "hook-secrets",
                "defaultMode": 0o440,
                "items": [{"key": "hmac", "path": "secret"}],
            },
        },
        {
            "name": "bearer-token",
            "secret": {
                "secretName": "hook-token",
                "defaultMode": 0o440,
                "items": [{"key": "token", "path": "token"}],
            },
        },
        TMP_VOLUME,
    ]
    assert all(m["readOnly"] for m in c["volumeMounts"] if m["name"] != "tmp")
    owner = deployment["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("Listener", UID, True)


def test_webhook_defaults_and_service() -> None:
    spec = ListenerSpec.model_validate({"type": "webhook"})
    children = listener_children("plain", "shop", UID, spec, CONFIG)
    assert [c["kind"] for c in children] == ["Deployment", "Service"]
    deployment, service = children
    assert container(deployment)["args"] == [
        "webhook", "--port", "8080", "--path", "/events", "--max-body-bytes", "1048576",
    ]  # fmt: skip
    assert deployment["spec"]["template"]["spec"]["volumes"] == [TMP_VOLUME]
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}
    ]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert (
        listener_endpoint("plain", "shop", spec)
        == "http://tflow-listener-plain.shop.svc.cluster.local:8080/events"
    )


def test_sqs_with_scaling_children() -> None:
    spec = ListenerSpec.model_validate(SQS)
    children = listener_children("docs", "shop", UID, spec, CONFIG)
    assert [c["kind"] for c in children] == ["Deployment", "TriggerAuthentication", "ScaledObject"]
    deployment, auth, scaled = children
    # KEDA owns the replica count.
    assert "replicas" not in deployment["spec"]
    c = container(deployment)
    assert c["args"][:9] == [
        "sqs",
        "--queue-url", "http://127.0.0.1:5000/123456789012/documents",
        "--region", "eu-west-1",
        "--endpoint-url", "http://127.0.0.1:5000",
        "--credentials-dir", "/etc/tflow/secrets/aws",
    ]  # fmt: skip
    assert c["ports"] == [{"name": "ops", "containerPort": 8080, "protocol": "TCP"}]
    # The whole credentials Secret is mounted as files, nothing else.
    assert deployment["spec"]["template"]["spec"]["volumes"] == [
        {"name": "aws", "secret": {"secretName": "aws", "defaultMode": 0o440}},
        TMP_VOLUME,
    ]
    assert auth["spec"]["secretTargetRef"] == [
        {"parameter": "awsAccessKeyID", "name": "aws", "key": "AWS_ACCESS_KEY_ID"},
        {"parameter": "awsSecretAccessKey", "name": "aws", "key": "AWS_SECRET_ACCESS_KEY"},
        {"parameter": "awsSessionToken", "name": "aws", "key": "AWS_SESSION_TOKEN"},
    ]
    trigger = scaled["spec"]["triggers"][0]
    assert trigger == {
        "type": "aws-sqs-queue",
        "metadata": {
            "queueURL": "http://127.0.0.1:5000/123456789012/documents",
            "awsRegion": "eu-west-1",
            "awsEndpoint": "http://127.0.0.1:5000",
            "queueLength": "5",
            "activationQueueLength": "0",
        },
        "authenticationRef": {"name": "tflow-listener-docs"},
    }
    assert scaled["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert (scaled["spec"]["minReplicaCount"], scaled["spec"]["maxReplicaCount"]) == (0, 3)
    assert listener_endpoint("docs", "shop", spec) == SQS["sqs"]["queueUrl"]  # type: ignore[index]


def test_service_bus_children_without_scaling() -> None:
    spec = ListenerSpec.model_validate(SERVICE_BUS)
    children = listener_children("sb", "shop", UID, spec, CONFIG)
    assert [c["kind"] for c in children] == ["Deployment"]
    c = container(children[0])
    assert c["args"] == [
        "servicebus",
        "--connection-string-file", "/etc/tflow/secrets/servicebus/connection-string",
        "--topic", "documents",
        "--subscription", "tflow",
        "--max-messages", "10",
        "--port", "8080",
    ]  # fmt: skip
    assert children[0]["spec"]["replicas"] == 1
    assert listener_endpoint("sb", "shop", spec) == (
        "servicebus:topic/documents/subscriptions/tflow"
    )


def test_service_bus_scaled_object() -> None:
    spec = ListenerSpec.model_validate({**SERVICE_BUS, "scaling": {"maxReplicas": 2}})
    auth = keda.trigger_authentication_for_listener("x", "shop", spec, [])
    scaled = keda.scaled_object_for_listener("x", "shop", "x", spec, [], target_queue_length=20)
    assert auth["spec"] == {
        "secretTargetRef": [{"parameter": "connection", "name": "sb", "key": "connectionString"}]
    }
    assert scaled["spec"]["triggers"][0]["metadata"] == {
        "topicName": "documents",
        "subscriptionName": "tflow",
        "messageCount": "20",
        "activationMessageCount": "0",
    }


def test_scaling_targets_come_from_the_spec() -> None:
    scaling = {"maxReplicas": 4, "targetQueueLength": 50, "activationQueueLength": 3}
    for raw, target, activation in (
        (SQS, "queueLength", "activationQueueLength"),
        (SERVICE_BUS, "messageCount", "activationMessageCount"),
    ):
        spec = ListenerSpec.model_validate({**raw, "scaling": scaling})
        scaled = next(
            c
            for c in listener_children("q", "shop", UID, spec, CONFIG)
            if c["kind"] == "ScaledObject"
        )
        metadata = scaled["spec"]["triggers"][0]["metadata"]
        assert (metadata[target], metadata[activation]) == ("50", "3")
    with pytest.raises(ValueError, match="targetQueueLength"):
        ListenerSpec.model_validate({**SQS, "scaling": {"targetQueueLength": 0}})


def test_listener_pods_load_the_temporal_client_secret_when_configured() -> None:
    spec = ListenerSpec.model_validate(WEBHOOK)
    assert "envFrom" not in container(listener_deployment("x", "shop", UID, spec, CONFIG))
    config = dataclasses.replace(CONFIG, temporal_client_secret="temporal-client")
    assert container(listener_deployment("x", "shop", UID, spec, config))["envFrom"] == [
        {"secretRef": {"name": "temporal-client", "optional": True}}
    ]


def test_credentials_come_only_from_the_referenced_secrets() -> None:
    """Secrets are mounted by name; no value, no env var from anywhere else."""
    for raw in (WEBHOOK, SQS, SERVICE_BUS):
        spec = ListenerSpec.model_validate(raw)
        deployment = listener_deployment("x", "shop", UID, spec, CONFIG)
        pod = deployment["spec"]["template"]["spec"]
        assert {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v} == {
            m.secret for m in secret_mounts(spec)
        }
        assert [v for v in pod["volumes"] if "secret" not in v] == [TMP_VOLUME]
        assert all("valueFrom" not in e for e in container(deployment)["env"])
        text = json.dumps(listener_children("x", "shop", UID, spec, CONFIG))
        assert "stringData" not in text
        assert '"data"' not in text


def test_long_names_stay_valid_dns_labels() -> None:
    name = "a" * 200
    assert len(child_name(name)) <= 63
    assert child_name(name) != child_name("a" * 199)
    spec = ListenerSpec.model_validate({"type": "webhook"})
    deployment = listener_deployment(name, "shop", UID, spec, CONFIG)
    assert all(len(v) <= 63 for v in deployment["spec"]["selector"]["matchLabels"].values())


@pytest.mark.parametrize(
    ("replicas", "ready", "scaling", "status", "reason"),
    [
        (2, 2, False, "True", "Available"),
        (2, 1, False, "False", "Progressing"),
        (0, 0, True, "True", "ScaledToZero"),
    ],
)
def test_ready_follows_the_deployment(
    replicas: int, ready: int, scaling: bool, status: str, reason: str
) -> None:
    spec = ListenerSpec.model_validate(SQS if scaling else WEBHOOK)
    deployment = {"spec": {"replicas": replicas}, "status": {"readyReplicas": ready}}
    condition = ready_condition(spec, deployment, 4)
    assert (condition.status.value, condition.reason, condition.observed_generation) == (
        status,
        reason,
        4,
    )


def test_ready_names_why_the_pods_do_not_start() -> None:
    spec = ListenerSpec.model_validate(WEBHOOK)
    deployment = {
        "metadata": {"name": "tflow-listener-orders"},
        "spec": {"replicas": 2},
        "status": {"readyReplicas": 2},
    }
    trouble = PodTrouble("ImagePullBackOff", "pod p, container listener: ImagePullBackOff")
    condition = ready_condition(spec, deployment, 4, trouble)
    assert (condition.status.value, condition.reason) == ("False", "ImagePullBackOff")
    assert condition.message == (
        "Deployment tflow-listener-orders: pod p, container listener: ImagePullBackOff"
    )


@pytest.mark.parametrize("raw", [WEBHOOK, SQS, SERVICE_BUS], ids=["webhook", "sqs", "servicebus"])
def test_listener_pods_are_restricted_with_a_writable_tmp(raw: dict[str, Any]) -> None:
    spec = ListenerSpec.model_validate(raw)
    pod = listener_deployment("x", "shop", UID, spec, CONFIG)["spec"]["template"]["spec"]
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 65532,
        "runAsGroup": 65532,
        "fsGroup": 65532,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    # The listener never calls the Kubernetes API.
    assert pod["automountServiceAccountToken"] is False
    c = container({"spec": {"template": {"spec": pod}}})
    assert c["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]
    assert TMP_VOLUME in pod["volumes"]


def test_run_control_without_auth_is_refused_naming_the_field() -> None:
    raw = {"type": "webhook", "webhook": {"runControl": {"enabled": True}}}
    with pytest.raises(ValidationError, match=r"spec\.webhook\.runControl\.enabled needs"):
        ListenerSpec.model_validate(raw)
    off = ListenerSpec.model_validate({"type": "webhook", "webhook": {"runControl": {}}})
    args = container(listener_deployment("hook", "shop", UID, off, CONFIG))["args"]
    assert "--run-control" not in args


def test_hmac_scheme_and_tolerance_reach_the_command_line() -> None:
    hmac = {"name": "hook", "key": "hmac"}
    default = ListenerSpec.model_validate(
        {"type": "webhook", "webhook": {"auth": {"hmacSecretRef": hmac}}}
    )
    args = container(listener_deployment("hook", "shop", UID, default, CONFIG))["args"]
    assert "--hmac-scheme" not in args  # the listener's default: Standard Webhooks
    github = ListenerSpec.model_validate(
        {
            "type": "webhook",
            "webhook": {
                "auth": {"hmacSecretRef": hmac, "hmacScheme": "GitHub"},
            },
        }
    )
    args = container(listener_deployment("hook", "shop", UID, github, CONFIG))["args"]
    assert args[args.index("--hmac-scheme") + 1] == "github"
    assert build_parser("webhook").parse_args(args).hmac_scheme == "github"
    tolerant = ListenerSpec.model_validate(
        {
            "type": "webhook",
            "webhook": {"auth": {"hmacSecretRef": hmac, "hmacToleranceSeconds": 60}},
        }
    )
    args = container(listener_deployment("hook", "shop", UID, tolerant, CONFIG))["args"]
    assert build_parser("webhook").parse_args(args).hmac_tolerance_seconds == 60.0

    # Run control on a GitHub signature alone is refused; with a bearer token it is not.
    run_control = {
        "type": "webhook",
        "webhook": {
            "runControl": {"enabled": True},
            "auth": {"hmacSecretRef": hmac, "hmacScheme": "GitHub"},
        },
    }
    with pytest.raises(ValidationError, match="GitHub signature has no timestamp"):
        ListenerSpec.model_validate(run_control)
    run_control["webhook"]["auth"]["bearerTokenSecretRef"] = {"name": "hook", "key": "token"}  # type: ignore[index]
    ListenerSpec.model_validate(run_control)
    with pytest.raises(ValidationError, match="need hmacSecretRef"):
        ListenerSpec.model_validate(
            {
                "type": "webhook",
                "webhook": {
                    "auth": {
                        "bearerTokenSecretRef": {"name": "h", "key": "t"},
                        "hmacScheme": "GitHub",
                    }
                },
            }
        )


# --------------------------------------------------------------------------- routing


def test_a_direct_listener_mounts_its_namespaces_table_and_definitions() -> None:
    spec = ListenerSpec.model_validate({**WEBHOOK, "routing": "direct"})
    deployment = listener_deployment("orders", "shop", UID, spec, CONFIG)
    c = container(deployment)
    env = {e["name"]: e["value"] for e in c["env"]}
    assert {k: v for k, v in env.items() if k.startswith("TFLOW_") and "DIR" in k} == {
        "TFLOW_ROUTES_DIR": "/etc/temporal-flow/routes",
        "TFLOW_DEFINITIONS_DIR": "/etc/temporal-flow/definitions",
    }
    assert env["TFLOW_LISTENER_ROUTING"] == "direct"
    pod = deployment["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert list(volumes) == ["hmac", "bearer-token", "routes", "definitions", "tmp"]
    assert volumes["routes"]["projected"]["sources"] == [
        {"configMap": {"name": name, "optional": True}}
        for name in (
            "tflow-namespace-routing",
            "tflow-namespace-routing-1",
            "tflow-namespace-routing-2",
            "tflow-namespace-routing-3",
        )
    ]
    # The namespace's published definitions, as the workers mount them.
    definitions = [s["configMap"] for s in volumes["definitions"]["projected"]["sources"]]
    assert definitions[:2] == [
        {"name": "tflow-namespace-definitions", "optional": True},
        {"name": "tflow-namespace-definitions-1", "optional": True},
    ]
    assert len(definitions) == MAX_NAMESPACE_SHARDS
    mounts = c["volumeMounts"]
    assert {"name": "routes", "mountPath": "/etc/temporal-flow/routes", "readOnly": True} in mounts
    assert {
        "name": "definitions",
        "mountPath": "/etc/temporal-flow/definitions",
        "readOnly": True,
    } in mounts
    # Still restricted: the mounts are read-only and /tmp the only writable directory.
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["automountServiceAccountToken"] is False
    assert [m["name"] for m in mounts if not m.get("readOnly")] == ["tmp"]


@pytest.mark.parametrize("raw", [WEBHOOK, SQS, SERVICE_BUS], ids=["webhook", "sqs", "servicebus"])
def test_the_orchestrator_routing_leaves_the_deployment_as_it_was(raw: dict[str, Any]) -> None:
    default = listener_deployment("x", "shop", UID, ListenerSpec.model_validate(raw), CONFIG)
    explicit = ListenerSpec.model_validate({**raw, "routing": "orchestrator"})
    assert listener_deployment("x", "shop", UID, explicit, CONFIG) == default
    assert "TFLOW_LISTENER_ROUTING" not in json.dumps(default)
    assert "tflow-namespace-routing" not in json.dumps(default)


def test_direct_routing_cannot_share_events() -> None:
    raw = {"type": "webhook", "routing": "direct", "shareEventsWith": ["billing"]}
    with pytest.raises(ValidationError, match=r"spec\.shareEventsWith needs spec\.routing") as err:
        ListenerSpec.model_validate(raw)
    assert "root orchestrator" in str(err.value)
    # Either alone is fine, and so is direct with nothing to share.
    assert ListenerSpec.model_validate({**raw, "routing": "orchestrator"}).share_events_with
    assert ListenerSpec.model_validate({**raw, "shareEventsWith": []}).routing == "direct"
    assert ListenerSpec.model_validate({"type": "webhook"}).routing == "orchestrator"
