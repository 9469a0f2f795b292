"""The chart's web UI: off by default; when enabled, a Deployment running `tflow ui` that
checks callers' Kubernetes tokens, a Service, read-only access to the custom resources
(and no Secrets) plus token and access reviews, which the apiserver enforces, and the
reader and operator ClusterRoles for callers even without the run API. The old shared
token Secret is refused with a sentence."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import yaml
from chart import CHART, find, helm, render

from tflow_devstack.controlplane import ControlPlane

pytestmark = pytest.mark.integration


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_the_ui_is_off_by_default() -> None:
    assert not [
        o
        for o in render()
        if o["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "ui"
    ]


def test_enabled_with_kubernetes_tokens() -> None:
    objects = render(
        "ui.enabled=true",
        "ui.namespaces={shop,ops}",
        "ui.temporalUiUrl=https://temporal.example",
        "temporal.clientSecret=temporal-client",
        "ui.codec=true",
    )
    deployment = find(objects, "Deployment", "-ui")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["tflow", "ui"]
    env = _env(container)
    assert env["TFLOW_UI_AUTH"] == "kubernetes"
    assert "TFLOW_UI_TOKEN" not in env
    assert env["TFLOW_UI_NAMESPACES"] == "shop,ops"
    assert env["TFLOW_UI_HOST"] == "0.0.0.0"
    assert env["TFLOW_TEMPORAL_UI_URL"] == "https://temporal.example"
    assert "TFLOW_UI_READ_ONLY" not in env
    assert env["TFLOW_UI_CODEC"] == "1"
    assert container["envFrom"] == [{"secretRef": {"name": "temporal-client"}}]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["serviceAccountName"] == deployment["metadata"]["name"]
    service = find(objects, "Service", "-ui")
    assert service["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http"}]
    role = find(objects, "ClusterRole", "-ui")
    assert role["rules"] == [
        {
            "apiGroups": ["temporalflow.dev"],
            "resources": ["workflowdefinitions", "eventroutes", "listeners"],
            "verbs": ["get", "list", "watch"],
        },
        {
            "apiGroups": ["authentication.k8s.io"],
            "resources": ["tokenreviews"],
            "verbs": ["create"],
        },
        {
            "apiGroups": ["authorization.k8s.io"],
            "resources": ["subjectaccessreviews"],
            "verbs": ["create"],
        },
    ]
    # Callers' roles come with the UI, the run API on or not.
    reader = find(objects, "ClusterRole", "-run-api-reader")
    assert reader["rules"][0]["resources"] == ["workflowdefinitions/runs"]
    assert reader["rules"][0]["verbs"] == ["get", "list"]
    operator = find(objects, "ClusterRole", "-run-api-operator")
    assert set(operator["rules"][0]["verbs"]) >= {"update", "delete"}
    assert not [
        o for o in objects if o["kind"] == "Deployment" and "-run-api" in o["metadata"]["name"]
    ]


def _ui_env(*values: str) -> dict[str, Any]:
    pod = find(render("ui.enabled=true", *values), "Deployment", "-ui")["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    return _env(container)


def test_defaults_and_read_only() -> None:
    env = _ui_env()
    # Every namespace at most, RBAC deciding per caller; actions on.
    assert env["TFLOW_UI_NAMESPACES"] == "*"
    assert "TFLOW_UI_READ_ONLY" not in env
    assert "TFLOW_UI_CODEC" not in env
    assert _ui_env("ui.readOnly=true")["TFLOW_UI_READ_ONLY"] == "1"


def _refusal(*values: str) -> str:
    args = [a for v in values for a in ("--set", v)]
    result = helm("template", "x", str(CHART), "--set", "ui.enabled=true", *args, check=False)
    assert result.returncode != 0
    return str(result.stderr)


def test_the_shared_token_secret_is_refused_with_a_sentence() -> None:
    assert "ui.tokenSecret is gone" in _refusal("ui.tokenSecret.name=t")
    assert "ui.enabled needs rbac.create" in _refusal("rbac.create=false")


def test_schema_refuses_unknown_ui_values() -> None:
    result = helm("template", "x", str(CHART), "--set", "ui.colour=blue", check=False)
    assert result.returncode != 0
    assert "additional properties 'colour' not allowed" in result.stderr


def test_the_apiserver_lets_the_ui_read_custom_resources_and_review_callers(
    kube: ControlPlane, crds: None, namespace: str
) -> None:
    release = f"ui-{uuid.uuid4().hex[:6]}"
    out = helm(
        "template",
        release,
        str(CHART),
        "--namespace",
        namespace,
        "--set",
        "ui.enabled=true",
        "--show-only",
        "templates/ui.yaml",
    ).stdout
    rbac = [
        o
        for o in yaml.safe_load_all(out)
        if o and o["kind"] in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding")
    ]
    kube.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(rbac))
    name = rbac[0]["metadata"]["name"]
    user = f"--as=system:serviceaccount:{namespace}:{name}"
    try:

        def can(*args: str) -> str:
            result = kube.kubectl("auth", "can-i", *args, user, check=False)
            return result.stdout.strip()

        assert can("list", "workflowdefinitions.temporalflow.dev", "-A") == "yes"
        assert can("get", "listeners.temporalflow.dev", "-n", "default") == "yes"
        assert can("list", "eventroutes.temporalflow.dev", "-A") == "yes"
        assert can("create", "workflowdefinitions.temporalflow.dev", "-n", namespace) == "no"
        assert can("create", "tokenreviews.authentication.k8s.io") == "yes"
        assert can("create", "subjectaccessreviews.authorization.k8s.io") == "yes"
        assert can("get", "secrets", "-n", namespace) == "no"
    finally:
        kube.kubectl("delete", "clusterrole,clusterrolebinding", name, check=False)
