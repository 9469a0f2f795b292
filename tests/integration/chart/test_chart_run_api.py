"""The chart's run API: off by default; when enabled, a Deployment running `tflow run-api`
with its Service, and RBAC the apiserver enforces: the service may review tokens and
access and read WorkflowDefinitions, nothing more; the callers' ClusterRoles grant the
runs subresource only."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import yaml
from chart import CHART, find, helm, render

from tflow_devstack.controlplane import ControlPlane

pytestmark = pytest.mark.integration


def _component(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        o
        for o in objects
        if o["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "run-api"
    ]


def test_the_run_api_is_off_by_default() -> None:
    assert not _component(render())


def test_enabled() -> None:
    objects = render(
        "runApi.enabled=true",
        "runApi.audiences={tflow}",
        "temporal.clientSecret=temporal-client",
    )
    deployment = find(objects, "Deployment", "-run-api")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["tflow", "run-api"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["TFLOW_RUN_API_PORT"] == "8080"
    assert env["TFLOW_RUN_API_AUDIENCES"] == "tflow"
    assert env["TFLOW_LOG_FORMAT"] == "json"
    assert "TEMPORAL_ADDRESS" in env
    assert container["envFrom"] == [{"secretRef": {"name": "temporal-client"}}]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["serviceAccountName"] == deployment["metadata"]["name"]
    service = find(objects, "Service", "-run-api")
    assert service["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http"}]
    kinds = sorted(o["kind"] for o in _component(objects))
    assert kinds == [
        "ClusterRole",
        "ClusterRole",
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "Service",
        "ServiceAccount",
    ]


def test_schema_refuses_unknown_run_api_values() -> None:
    result = helm("template", "x", str(CHART), "--set", "runApi.colour=blue", check=False)
    assert result.returncode != 0
    assert "additional properties 'colour' not allowed" in result.stderr


def test_the_apiserver_holds_the_run_api_to_reviews_and_reads(
    kube: ControlPlane, crds: None, namespace: str
) -> None:
    release = f"api-{uuid.uuid4().hex[:6]}"
    out = helm(
        "template",
        release,
        str(CHART),
        "--namespace",
        namespace,
        "--set",
        "runApi.enabled=true",
        "--show-only",
        "templates/run-api.yaml",
    ).stdout
    rbac = [
        o
        for o in yaml.safe_load_all(out)
        if o and o["kind"] in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding")
    ]
    kube.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(rbac))
    name = f"{release}-temporal-flow-run-api"
    names = {o["metadata"]["name"] for o in rbac}
    assert {name, f"{name}-reader", f"{name}-operator"} <= names
    user = f"--as=system:serviceaccount:{namespace}:{name}"
    try:

        def can(*args: str, as_user: str = user) -> str:
            return kube.kubectl("auth", "can-i", *args, as_user, check=False).stdout.strip()

        assert can("create", "tokenreviews.authentication.k8s.io") == "yes"
        assert can("create", "subjectaccessreviews.authorization.k8s.io") == "yes"
        assert can("get", "workflowdefinitions.temporalflow.dev", "-n", "default") == "yes"
        assert can("create", "workflowdefinitions.temporalflow.dev", "-n", namespace) == "no"
        assert can("get", "secrets", "-n", namespace) == "no"
        # A caller bound to the reader ClusterRole in a namespace reads runs there only.
        kube.kubectl(
            "create",
            "rolebinding",
            "reader",
            "-n",
            namespace,
            f"--clusterrole={name}-reader",
            "--user=carol",
        )
        carol = "--as=carol"
        assert (
            can(
                "list",
                "workflowdefinitions.temporalflow.dev",
                "--subresource=runs",
                "-n",
                namespace,
                as_user=carol,
            )
            == "yes"
        )
        assert (
            can(
                "create",
                "workflowdefinitions.temporalflow.dev",
                "--subresource=runs",
                "-n",
                namespace,
                as_user=carol,
            )
            == "no"
        )
        assert (
            can(
                "list",
                "workflowdefinitions.temporalflow.dev",
                "--subresource=runs",
                "-n",
                "default",
                as_user=carol,
            )
            == "no"
        )
        assert (
            can("get", "workflowdefinitions.temporalflow.dev", "-n", namespace, as_user=carol)
            == "no"
        )
    finally:
        kube.kubectl(
            "delete",
            "clusterrole,clusterrolebinding",
            name,
            f"{name}-reader",
            f"{name}-operator",
            check=False,
        )
