"""The Helm chart: lint, rendered objects, the values schema, install.yaml drift."""

from __future__ import annotations

from typing import Any

import pytest
from chart import CHART, INSTALL_YAML, find, helm, render, render_install_yaml

from tflow_devstack.tools import REPO_ROOT
from tflow_operator.configmaps import MAX_ROUTING_SHARDS
from tflow_operator.rbac import LEASE_RULES, RULES, SECRET_RULES

pytestmark = pytest.mark.integration


def env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_lint() -> None:
    helm("lint", str(CHART), "--strict")
    helm("lint", str(CHART), "--strict", "--values", str(REPO_ROOT / "hack" / "kind-values.yaml"))


def test_defaults_render_the_operator_rbac_and_kept_crds() -> None:
    objects = render()
    crds = [o for o in objects if o["kind"] == "CustomResourceDefinition"]
    assert sorted(c["spec"]["names"]["kind"] for c in crds) == [
        "EventRoute",
        "Listener",
        "WorkflowDefinition",
    ]
    assert all(c["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep" for c in crds)

    operator = find(objects, "Deployment", "operator")
    assert operator["spec"]["replicas"] == 1
    assert operator["spec"]["strategy"] == {"type": "Recreate"}
    pod = operator["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["command"] == ["tflow-operator"]
    assert container["image"] == "ghcr.io/temporal-flow/temporal-flow:0.1.0"
    assert env(container)["TEMPORAL_ADDRESS"] == "temporal-frontend:7233"
    assert env(container)["TFLOW_SYSTEM_NAMESPACE"] == "temporal-flow"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["serviceAccountName"] == find(objects, "ServiceAccount")["metadata"]["name"]

    role = find(objects, "ClusterRole")
    assert role["rules"] == RULES
    binding = find(objects, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"][0]["name"] == pod["serviceAccountName"]

    root = find(objects, "Deployment", "root-orchestrator")
    root_container = root["spec"]["template"]["spec"]["containers"][0]
    assert root_container["command"] == ["tflow-worker", "--serve-orchestrator"]
    assert env(root_container)["TFLOW_TASK_QUEUE"] == "root_orchestrator-queue"
    volumes = {v["name"]: v for v in root["spec"]["template"]["spec"]["volumes"]}
    routing = [s["configMap"] for s in volumes["routes"]["projected"]["sources"]]
    assert [r["name"] for r in routing[:2]] == ["tflow-routing", "tflow-routing-1"]
    assert len(routing) == MAX_ROUTING_SHARDS
    assert all(r["optional"] for r in routing)
    shards = [s["configMap"]["name"] for s in volumes["definitions"]["projected"]["sources"]]
    assert shards[:2] == ["tflow-definitions", "tflow-definitions-1"]
    assert len(shards) == 64

    test_pod = find(objects, "Pod", "test")
    assert test_pod["metadata"]["annotations"]["helm.sh/hook"] == "test"


def test_toggles() -> None:
    objects = render("crds.install=false", "rbac.create=false", "crds.keep=false")
    assert not [o for o in objects if o["kind"] == "CustomResourceDefinition"]
    assert not [o for o in objects if o["kind"].startswith("ClusterRole")]
    unkept = render("crds.keep=false")
    crd = find(unkept, "CustomResourceDefinition")
    assert "helm.sh/resource-policy" not in (crd["metadata"].get("annotations") or {})


def test_temporal_client_secret_reaches_every_temporal_client() -> None:
    objects = render("temporal.clientSecret=temporal-client", show_tests=False)
    for part in ("operator", "root-orchestrator"):
        deployment = find(objects, "Deployment", part)
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["envFrom"] == [{"secretRef": {"name": "temporal-client"}}]
    operator = find(objects, "Deployment", "operator")["spec"]["template"]["spec"]
    # The operator hands the name on to the worker and listener Deployments it makes.
    assert env(operator["containers"][0])["TFLOW_TEMPORAL_CLIENT_SECRET"] == "temporal-client"
    plain = find(render(show_tests=False), "Deployment", "operator")["spec"]["template"]["spec"]
    assert "envFrom" not in plain["containers"][0]


def test_several_operator_replicas_elect_a_leader_and_keep_one_through_disruptions() -> None:
    single = render(show_tests=False)
    assert not [o for o in single if o["kind"] == "PodDisruptionBudget"]
    single_env = env(
        find(single, "Deployment", "operator")["spec"]["template"]["spec"]["containers"][0]
    )
    assert "TFLOW_LEADER_ELECTION" not in single_env

    objects = render("operator.replicas=2", show_tests=False)
    operator = find(objects, "Deployment", "operator")
    assert operator["spec"]["replicas"] == 2
    assert operator["spec"]["strategy"]["type"] == "RollingUpdate"
    assert operator["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    container_env = env(operator["spec"]["template"]["spec"]["containers"][0])
    assert container_env["TFLOW_LEADER_ELECTION"] == "true"
    assert container_env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    pdb = find(objects, "PodDisruptionBudget", "operator")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == operator["spec"]["selector"]["matchLabels"]
    # The Lease rules come in a Role of the release namespace, never a ClusterRole.
    role = find(objects, "Role", "leader-election")
    assert role["metadata"]["namespace"] == operator["metadata"]["namespace"]
    assert role["rules"] == LEASE_RULES
    binding = find(objects, "RoleBinding", "leader-election")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    assert "leases" not in str(find(objects, "ClusterRole")["rules"])


def test_kind_values_use_the_local_image_and_dev_temporal() -> None:
    objects = render(str(REPO_ROOT / "hack" / "kind-values.yaml"))
    container = find(objects, "Deployment", "operator")["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "temporal-flow:dev"
    assert container["imagePullPolicy"] == "Never"
    assert env(container)["TEMPORAL_ADDRESS"] == "temporal-frontend.temporal.svc:7233"
    assert env(container)["TFLOW_WORKER_IMAGE"] == "temporal-flow:dev"
    listener = find(objects, "Listener")
    assert listener["spec"] == {"type": "webhook", "webhook": {"path": "/events", "port": 8080}}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("unknownKey=1", "additional properties 'unknownKey' not allowed"),
        ("operator.replicas=0", "at '/operator/replicas'"),
        ("temporal.address=no-port", "at '/temporal/address'"),
        ("temporal.clientSecret=Not_A_Name", "at '/temporal/clientSecret'"),
        ("image.pullPolicy=Sometimes", "at '/image/pullPolicy': value must be one of"),
    ],
)
def test_schema_rejects_bad_values(value: str, message: str) -> None:
    result = helm("template", "x", str(CHART), "--set", value, check=False)
    assert result.returncode != 0
    assert message in result.stderr


def test_install_yaml_is_rendered_from_the_chart() -> None:
    assert INSTALL_YAML.read_text() == render_install_yaml(), (
        "manifests/install.yaml is out of date: run `make manifests`"
    )


def test_secrets_are_readable_only_in_the_namespaces_listed() -> None:
    objects = render()
    secrets_role = find(objects, "ClusterRole", "operator-secrets")
    assert secrets_role["rules"] == SECRET_RULES
    assert not [
        o for o in objects if "secrets" in str(o.get("rules", "")) and o is not secrets_role
    ]
    # Nothing binds it by default, and never cluster-wide.
    assert not [
        o
        for o in objects
        if o["kind"] == "RoleBinding" and o["roleRef"]["name"] == secrets_role["metadata"]["name"]
    ]
    bindings = [o for o in objects if o["kind"] == "ClusterRoleBinding"]
    assert all(b["roleRef"]["name"] != secrets_role["metadata"]["name"] for b in bindings)

    listed = render("rbac.secretNamespaces={team-a,team-b}")
    role_bindings = [
        o for o in listed if o["kind"] == "RoleBinding" and o["roleRef"]["kind"] == "ClusterRole"
    ]
    assert sorted(b["metadata"]["namespace"] for b in role_bindings) == ["team-a", "team-b"]
    account = find(listed, "ServiceAccount")["metadata"]
    for binding in role_bindings:
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": secrets_role["metadata"]["name"],
        }
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": account["name"], "namespace": account["namespace"]}
        ]
