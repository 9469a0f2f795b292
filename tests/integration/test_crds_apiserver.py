"""The generated CRDs on a real kube-apiserver: the samples apply, invalid objects are
rejected with a message naming the field, defaults apply, and kubectl prints the columns."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import pytest
import yaml
from pydantic import BaseModel

from tflow_operator.api import (
    Condition,
    ConditionStatus,
    EventRoute,
    Listener,
    WorkflowDefinition,
    WorkflowDefinitionStatus,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("crds")]

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "manifests" / "samples"
SAMPLE_FILES = sorted(SAMPLES.glob("*.yaml"))
MODELS: dict[str, type[BaseModel]] = {
    "WorkflowDefinition": WorkflowDefinition,
    "EventRoute": EventRoute,
    "Listener": Listener,
}


class Kube(Protocol):
    """What the session fixture ``kube`` (tests/conftest.py) provides."""

    @property
    def kubeconfig(self) -> Path: ...

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]: ...


MINIMAL_WORKFLOW: dict[str, Any] = {
    "document": {"dsl": "1.0.0", "namespace": "test", "name": "minimal", "version": "0.1.0"},
    "do": [{"hello": {"set": {"greeting": "hello"}}}],
}


def _wfd(spec: dict[str, Any], name: str = "bad") -> dict[str, Any]:
    return {
        "apiVersion": "temporalflow.dev/v1alpha1",
        "kind": "WorkflowDefinition",
        "metadata": {"name": name},
        "spec": spec,
    }


def _listener(spec: dict[str, Any], name: str = "bad") -> dict[str, Any]:
    return {
        "apiVersion": "temporalflow.dev/v1alpha1",
        "kind": "Listener",
        "metadata": {"name": name},
        "spec": spec,
    }


def _route(spec: dict[str, Any], name: str = "bad") -> dict[str, Any]:
    return {
        "apiVersion": "temporalflow.dev/v1alpha1",
        "kind": "EventRoute",
        "metadata": {"name": name},
        "spec": spec,
    }


def _apply(kube: Kube, namespace: str, obj: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    return kube.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(obj), check=False)


def _rejected(kube: Kube, namespace: str, obj: dict[str, Any], *expected: str) -> str:
    result = _apply(kube, namespace, obj)
    assert result.returncode != 0, f"accepted: {obj}\n{result.stdout}"
    for text in expected:
        assert text in result.stderr, f"{text!r} not in:\n{result.stderr}"
    return result.stderr


def _get(kube: Kube, namespace: str, resource: str, name: str) -> dict[str, Any]:
    out = kube.kubectl("get", resource, name, "-n", namespace, "-o", "json").stdout
    obj: dict[str, Any] = json.loads(out)
    return obj


def _header(output: str) -> str:
    return " ".join(output.splitlines()[0].split())


def _headers(output: str) -> list[str]:
    return [" ".join(line.split()) for line in output.splitlines() if line.startswith("NAME ")]


# --------------------------------------------------------------------------- samples


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=[p.name for p in SAMPLE_FILES])
def test_sample_applies(kube: Kube, namespace: str, path: Path) -> None:
    result = kube.kubectl("apply", "-n", namespace, "-f", str(path))
    for obj in yaml.safe_load_all(path.read_text(encoding="utf-8")):
        assert f"{obj['metadata']['name']} created" in result.stdout, result.stdout
    # What the apiserver stored (with its defaults) reads back into the models.
    stored = json.loads(kube.kubectl("get", "-n", namespace, "-f", str(path), "-o", "json").stdout)
    items = stored["items"] if stored["kind"] == "List" else [stored]
    for item in items:
        if item["kind"] in MODELS:
            MODELS[item["kind"]].model_validate(item)


def test_server_applies_defaults_and_keeps_the_document(kube: Kube, namespace: str) -> None:
    doc = json.loads(json.dumps(MINIMAL_WORKFLOW))
    doc["do"][0]["hello"]["export"] = {"as": "${ {greeting: .greeting} }"}
    doc["output"] = {"as": "${ .greeting }"}
    wfd_spec = {"taskQueue": "defaults", "schedule": {"cron": ["@hourly"]}, "workflow": doc}
    lsn_spec = {"type": "sqs", "sqs": {"queueUrl": "http://sqs.local:4566/queue/q"}}
    for obj in (_wfd(wfd_spec, name="defaults"), _listener(lsn_spec, name="queue")):
        kube.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(obj))
    wfd = _get(kube, namespace, "wfd", "defaults")["spec"]
    assert wfd["workers"] == {
        "minReplicas": 0,
        "maxReplicas": 10,
        "targetBacklog": 5,
        "activationBacklog": 0,
    }
    assert wfd["schedule"] == {
        "cron": ["@hourly"],
        "timezone": "UTC",
        "overlap": "Skip",
        "catchupWindow": "1m",
        "paused": False,
    }
    assert wfd["workflow"] == doc, "the workflow document must be stored unchanged"
    lsn = _get(kube, namespace, "lsn", "queue")["spec"]
    assert lsn["replicas"] == 1
    assert lsn["sqs"]["region"] == "us-east-1"
    assert lsn["sqs"]["waitTimeSeconds"] == 20
    assert "webhook" not in lsn


# --------------------------------------------------------------------------- rejections


def test_rejects_missing_required_field(kube: Kube, namespace: str) -> None:
    _rejected(
        kube, namespace, _wfd({"workflow": MINIMAL_WORKFLOW}), "spec.taskQueue", "Required value"
    )


def test_rejects_wrong_type(kube: Kube, namespace: str) -> None:
    _rejected(
        kube,
        namespace,
        _wfd({"taskQueue": 5, "workflow": MINIMAL_WORKFLOW}),
        "spec.taskQueue",
        "must be of type string",
    )
    _rejected(
        kube,
        namespace,
        _listener({"type": "webhook", "replicas": "two"}),
        "spec.replicas",
        "must be of type integer",
    )


def test_rejects_bad_enum(kube: Kube, namespace: str) -> None:
    _rejected(
        kube,
        namespace,
        _listener({"type": "kafka"}),
        "spec.type",
        'Unsupported value: "kafka"',
    )


def test_rejects_pattern_violation(kube: Kube, namespace: str) -> None:
    _rejected(
        kube,
        namespace,
        _wfd({"taskQueue": "Orders_TQ", "workflow": MINIMAL_WORKFLOW}),
        "spec.taskQueue",
        "should match",
    )


def test_rejects_unknown_field(kube: Kube, namespace: str) -> None:
    _rejected(
        kube,
        namespace,
        _wfd({"taskQueue": "q", "taskqueue": "typo", "workflow": MINIMAL_WORKFLOW}),
        'unknown field "spec.taskqueue"',
    )


def test_rejects_min_replicas_above_max(kube: Kube, namespace: str) -> None:
    spec = {"taskQueue": "q", "workers": {"minReplicas": 5, "maxReplicas": 2}}
    _rejected(
        kube,
        namespace,
        _wfd({**spec, "workflow": MINIMAL_WORKFLOW}),
        "spec.workers.minReplicas",
        "spec.workers.minReplicas must not exceed spec.workers.maxReplicas",
    )


def test_rejects_worker_env_with_value_and_value_from(kube: Kube, namespace: str) -> None:
    env = [{"name": "A", "value": "x", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]
    _rejected(
        kube,
        namespace,
        _wfd({"taskQueue": "q", "workers": {"env": env}, "workflow": MINIMAL_WORKFLOW}),
        "spec.workers.env[0].valueFrom",
        "set value or valueFrom, not both",
    )


def test_rejects_sqs_listener_without_sqs_block(kube: Kube, namespace: str) -> None:
    _rejected(
        kube,
        namespace,
        _listener({"type": "sqs"}),
        "spec.sqs",
        "Required value",
        "spec.sqs is required when spec.type is sqs",
    )


def test_rejects_block_for_another_type(kube: Kube, namespace: str) -> None:
    _rejected(
        kube,
        namespace,
        _listener({"type": "webhook", "sqs": {"queueUrl": "https://sqs.example.com/q"}}),
        "spec.sqs",
        "Forbidden",
        "spec.sqs is only allowed when spec.type is sqs",
    )


def test_run_control_needs_webhook_auth(kube: Kube, namespace: str) -> None:
    _rejected(
        kube,
        namespace,
        _listener({"type": "webhook", "webhook": {"runControl": {"enabled": True}}}),
        "spec.webhook.runControl.enabled",
        "Forbidden",
        "never served without authentication",
    )
    # Disabled, it needs nothing; enabled with a credential, it is accepted.
    off = _listener({"type": "webhook", "webhook": {"runControl": {"enabled": False}}}, "off")
    assert _apply(kube, namespace, off).returncode == 0
    auth = {"bearerTokenSecretRef": {"name": "hook", "key": "token"}}
    on = {"type": "webhook", "webhook": {"runControl": {"enabled": True}, "auth": auth}}
    result = _apply(kube, namespace, _listener(on, "on"))
    assert result.returncode == 0, result.stderr
    # A GitHub signature carries no timestamp: alone, it cannot guard run control.
    github = {"hmacSecretRef": {"name": "hook", "key": "hmac"}, "hmacScheme": "GitHub"}
    _rejected(
        kube,
        namespace,
        _listener(
            {"type": "webhook", "webhook": {"runControl": {"enabled": True}, "auth": github}}
        ),
        "spec.webhook.runControl.enabled",
        "a GitHub signature has no timestamp",
    )


def test_direct_routing_cannot_share_events(kube: Kube, namespace: str) -> None:
    shared = {"type": "webhook", "routing": "direct", "shareEventsWith": ["billing"]}
    _rejected(
        kube,
        namespace,
        _listener(shared),
        "spec.shareEventsWith",
        "Forbidden",
        "needs spec.routing orchestrator",
        "routed by the root orchestrator",
    )
    # Direct alone is accepted; unset, routing defaults to the orchestrator.
    result = _apply(kube, namespace, _listener({"type": "webhook", "routing": "direct"}, "d"))
    assert result.returncode == 0, result.stderr
    assert _apply(kube, namespace, _listener({"type": "webhook"}, "o")).returncode == 0
    assert _get(kube, namespace, "listener", "o")["spec"]["routing"] == "orchestrator"


def test_hmac_settings_need_an_hmac_secret(kube: Kube, namespace: str) -> None:
    auth = {"bearerTokenSecretRef": {"name": "hook", "key": "token"}, "hmacToleranceSeconds": 60}
    _rejected(
        kube,
        namespace,
        _listener({"type": "webhook", "webhook": {"auth": auth}}),
        "spec.webhook.auth.hmacSecretRef",
        "need hmacSecretRef",
    )
    auth = {"hmacSecretRef": {"name": "hook", "key": "hmac"}, "hmacToleranceSeconds": 7200}
    _rejected(kube, namespace, _listener({"type": "webhook", "webhook": {"auth": auth}}), "3600")


def test_rejects_service_bus_without_entity(kube: Kube, namespace: str) -> None:
    block = {"connectionStringSecretRef": {"name": "sb", "key": "cs"}, "topic": "t"}
    _rejected(
        kube,
        namespace,
        _listener({"type": "azureServiceBus", "azureServiceBus": block}),
        "spec.azureServiceBus",
        "needs either queue, or both topic and subscription",
    )


def test_rejects_workflow_without_document_or_do(kube: Kube, namespace: str) -> None:
    _rejected(
        kube,
        namespace,
        _wfd({"taskQueue": "q", "workflow": {"document": MINIMAL_WORKFLOW["document"]}}),
        "spec.workflow",
        "spec.workflow must be a Serverless Workflow 1.0 document with `document` and `do`",
    )
    document = {"dsl": "1.0.0", "name": "x", "version": "1.0.0"}
    _rejected(
        kube,
        namespace,
        _wfd({"taskQueue": "q", "workflow": {"document": document, "do": MINIMAL_WORKFLOW["do"]}}),
        "spec.workflow.document",
        "spec.workflow.document must set dsl, namespace, name and version",
    )
    document = {**MINIMAL_WORKFLOW["document"], "dsl": "0.8"}
    _rejected(
        kube,
        namespace,
        _wfd({"taskQueue": "q", "workflow": {"document": document, "do": MINIMAL_WORKFLOW["do"]}}),
        "spec.workflow.document.dsl",
        "must be a 1.0.x version",
    )


def test_rejects_route_without_match_criteria(kube: Kube, namespace: str) -> None:
    _rejected(
        kube,
        namespace,
        _route({"match": {}, "workflow": "incident"}),
        "spec.match",
        "spec.match must set at least one of type, source or filter",
    )


# --------------------------------------------------------------------------- kubectl get


def _apply_samples(kube: Kube, namespace: str) -> None:
    for path in SAMPLE_FILES:
        kube.kubectl("apply", "-n", namespace, "-f", str(path))


def test_workflowdefinition_columns(kube: Kube, namespace: str) -> None:
    _apply_samples(kube, namespace)
    for resource in ("workflowdefinitions", "wfd", "workflowdefinitions.temporalflow.dev"):
        out = kube.kubectl("get", resource, "-n", namespace).stdout
        assert _header(out) == "NAME TASK QUEUE SCHEDULE READY LAST RUN AGE", out
    out = kube.kubectl("get", "wfd", "-n", namespace).stdout
    row = next(line for line in out.splitlines() if line.startswith("nightly-report "))
    assert "reports" in row, row
    assert "0 2 * * *" in row, row
    wide = kube.kubectl("get", "wfd", "-n", namespace, "-o", "wide").stdout
    assert _header(wide).endswith("AGE VERSION RUNNING TEMPORAL NAMESPACE MESSAGE"), wide


def test_category_lists_every_kind(kube: Kube, namespace: str) -> None:
    _apply_samples(kube, namespace)
    out = kube.kubectl("get", "temporalflow", "-n", namespace).stdout
    headers = _headers(out)
    assert "NAME TASK QUEUE SCHEDULE READY LAST RUN AGE" in headers, out
    assert "NAME TYPE SOURCE WORKFLOW READY AGE" in headers, out
    assert "NAME TYPE ROUTING READY REPLICAS ENDPOINT AGE" in headers, out
    assert "workflowdefinition.temporalflow.dev/incident" in out
    assert "eventroute.temporalflow.dev/pdf-documents" in out
    assert "listener.temporalflow.dev/webhook" in out


def test_eventroute_columns(kube: Kube, namespace: str) -> None:
    _apply_samples(kube, namespace)
    out = kube.kubectl("get", "er", "-n", namespace).stdout
    assert _header(out) == "NAME TYPE SOURCE WORKFLOW READY AGE", out
    row = next(line for line in out.splitlines() if line.startswith("pdf-documents "))
    # An unset column (here the source) prints as an empty cell.
    assert row.split()[1:3] == ["document-added", "document-processing"], row


def test_listener_columns(kube: Kube, namespace: str) -> None:
    _apply_samples(kube, namespace)
    out = kube.kubectl("get", "lsn", "-n", namespace).stdout
    assert _header(out) == "NAME TYPE ROUTING READY REPLICAS ENDPOINT AGE", out
    row = next(line for line in out.splitlines() if line.startswith("s3-documents "))
    assert row.split()[1:3] == ["sqs", "orchestrator"], row
    row = next(line for line in out.splitlines() if line.startswith("webhook-direct "))
    assert row.split()[1:3] == ["webhook", "direct"], row


def _patch_status(
    kube: Kube, namespace: str, name: str, patch: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    args = ("patch", "wfd", name, "-n", namespace, "--subresource=status", "--type=merge")
    return kube.kubectl(*args, "-p", patch, check=check)


def test_status_subresource_feeds_the_columns(kube: Kube, namespace: str) -> None:
    kube.kubectl("apply", "-n", namespace, "-f", str(SAMPLES / "nightly-report-workflow.yaml"))
    now = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    status = WorkflowDefinitionStatus(
        observed_generation=1,
        version="1.0.0-abc123",
        last_run=now,
        running=1,
        conditions=[
            Condition(
                type="Ready",
                status=ConditionStatus.TRUE,
                reason="Reconciled",
                message="schedule and workers in place",
                last_transition_time=now,
                observed_generation=1,
            )
        ],
    )
    patch = json.dumps({"status": status.model_dump(mode="json", exclude_none=True)})
    _patch_status(kube, namespace, "nightly-report", patch)
    out = kube.kubectl("get", "wfd", "nightly-report", "-n", namespace, "-o", "wide").stdout
    row = " ".join(out.splitlines()[1].split())
    assert " True " in row, row
    assert "1.0.0-abc123" in row, row
    assert "schedule and workers in place" in row, row
    stored = _get(kube, namespace, "wfd", "nightly-report")
    assert WorkflowDefinition.model_validate(stored).status == status

    bad = json.dumps({"status": {"conditions": [{"type": "Ready", "status": "Maybe"}]}})
    result = _patch_status(kube, namespace, "nightly-report", bad, check=False)
    assert result.returncode != 0
    assert "status.conditions[0].status" in result.stderr, result.stderr
