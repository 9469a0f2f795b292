"""The chart's operational values: the log format of every component, the operator's
metrics port, Service and ServiceMonitor, the listener image, the ServiceAccount apart
from the RBAC, Chart.yaml's metadata and NOTES.txt's commands."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart import CHART, NAMESPACE, RELEASE, find, helm, render

from tflow_devstack.controlplane import ControlPlane
from tflow_devstack.tools import cache_dir, versions

pytestmark = pytest.mark.integration


def container(objects: list[dict[str, Any]], part: str) -> dict[str, Any]:
    (found,) = find(objects, "Deployment", part)["spec"]["template"]["spec"]["containers"]
    return dict(found)


def env(found: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in found["env"]}


def kinds(objects: list[dict[str, Any]]) -> set[str]:
    return {o["kind"] for o in objects}


def test_log_format_defaults_to_json_for_every_component_and_the_pods_it_makes() -> None:
    objects = render(show_tests=False)
    # The operator's own, which it also writes into every worker and listener pod.
    assert env(container(objects, "operator"))["TFLOW_LOG_FORMAT"] == "json"
    assert env(container(objects, "root-orchestrator"))["TFLOW_LOG_FORMAT"] == "json"
    text = render("logFormat=text", show_tests=False)
    assert env(container(text, "operator"))["TFLOW_LOG_FORMAT"] == "text"
    assert env(container(text, "root-orchestrator"))["TFLOW_LOG_FORMAT"] == "text"
    refused = helm("template", "x", str(CHART), "--set", "logFormat=yaml", check=False)
    assert refused.returncode != 0
    assert "at '/logFormat'" in refused.stderr


def test_operator_metrics_port_and_service_and_no_service_monitor_by_default() -> None:
    objects = render(show_tests=False)
    operator = container(objects, "operator")
    assert env(operator)["TFLOW_METRICS_PORT"] == "9090"
    assert {"name": "metrics", "containerPort": 9090} in operator["ports"]
    service = find(objects, "Service", "operator-metrics")
    pod_labels = find(objects, "Deployment", "operator")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"}
    ]
    assert "ServiceMonitor" not in kinds(objects)

    off = render("operator.metrics.enabled=false", show_tests=False)
    assert "TFLOW_METRICS_PORT" not in env(container(off, "operator"))
    assert not [o for o in off if o["kind"] == "Service" and "metrics" in o["metadata"]["name"]]


def test_service_monitor_scrapes_the_metrics_service() -> None:
    objects = render(
        "operator.metrics.serviceMonitor.enabled=true",
        "operator.metrics.serviceMonitor.labels.release=prometheus",
        "operator.metrics.serviceMonitor.interval=15s",
        "operator.metrics.port=9400",
        show_tests=False,
    )
    monitor = find(objects, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["metadata"]["namespace"] == NAMESPACE
    service = find(objects, "Service", "operator-metrics")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint == {
        "port": "metrics",
        "path": "/metrics",
        "interval": "15s",
        "scrapeTimeout": "10s",
    }
    assert [p["name"] for p in service["spec"]["ports"]] == ["metrics"]
    assert service["spec"]["ports"][0]["port"] == 9400
    assert env(container(objects, "operator"))["TFLOW_METRICS_PORT"] == "9400"

    refused = helm(
        "template", "x", str(CHART),
        "--set", "operator.metrics.serviceMonitor.enabled=true",
        "--set", "operator.metrics.enabled=false",
        check=False,
    )  # fmt: skip
    assert refused.returncode != 0
    assert "serviceMonitor.enabled needs operator.metrics.enabled" in refused.stderr


@pytest.fixture(scope="module")
def service_monitor_crd(kube: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> None:
    """prometheus-operator's ServiceMonitor CRD, from its Go module at the pinned version."""
    module = "github.com/prometheus-operator/prometheus-operator"
    workdir = cache_dir() / "go-mod-download"
    workdir.mkdir(parents=True, exist_ok=True)
    found = subprocess.run(
        ["go", "mod", "download", "-json", f"{module}@{versions()['PROMETHEUS_OPERATOR_VERSION']}"],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    crds = Path(json.loads(found.stdout)["Dir"]) / "example" / "prometheus-operator-crd"
    only = tmp_path_factory.mktemp("servicemonitor-crd")
    shutil.copy(crds / "monitoring.coreos.com_servicemonitors.yaml", only)
    kube.apply_crds(only)


def test_the_apiserver_accepts_the_service_monitor_under_its_crd(
    kube: ControlPlane, service_monitor_crd: None, namespace: str
) -> None:
    objects = render(
        "operator.metrics.serviceMonitor.enabled=true",
        "operator.metrics.serviceMonitor.labels.release=prometheus",
        show_tests=False,
    )
    for kind, part in (("ServiceMonitor", "operator"), ("Service", "operator-metrics")):
        obj = find(objects, kind, part)
        obj["metadata"]["namespace"] = namespace
        kube.kubectl(
            "apply", "--dry-run=server", "--validate=strict", "-f", "-",
            input=yaml.safe_dump(obj),
        )  # fmt: skip
    # The CRD's schema is checked, not only the kind: a wrong field is refused.
    monitor = find(objects, "ServiceMonitor")
    monitor["metadata"]["namespace"] = namespace
    monitor["spec"]["endpoints"][0]["interval"] = "every minute"
    refused = kube.kubectl(
        "apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump(monitor), check=False
    )
    assert refused.returncode != 0
    assert "interval" in refused.stderr


def test_listeners_get_their_own_image_value() -> None:
    default = env(container(render(show_tests=False), "operator"))
    assert default["TFLOW_LISTENER_IMAGE"] == "ghcr.io/temporal-flow/temporal-flow:0.1.0"
    objects = render(
        "listener.image.repository=registry.example/listener",
        "listener.image.tag=1.2.3",
        "operator.image.repository=registry.example/operator",
        show_tests=False,
    )
    operator = container(objects, "operator")
    assert env(operator)["TFLOW_LISTENER_IMAGE"] == "registry.example/listener:1.2.3"
    assert operator["image"] == "registry.example/operator:0.1.0"


def test_service_account_is_created_apart_from_the_rbac() -> None:
    both = render(show_tests=False)
    account = find(both, "ServiceAccount")["metadata"]["name"]
    assert find(both, "ClusterRoleBinding")["subjects"][0]["name"] == account

    # A ServiceAccount made elsewhere (workload identity), the chart's RBAC bound to it.
    existing = render(
        "serviceAccount.create=false", "serviceAccount.name=tflow-irsa", show_tests=False
    )
    assert "ServiceAccount" not in kinds(existing)
    assert find(existing, "ClusterRoleBinding")["subjects"][0]["name"] == "tflow-irsa"
    assert find(existing, "RoleBinding", "leader-election")["subjects"][0]["name"] == "tflow-irsa"
    pod = find(existing, "Deployment", "operator")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "tflow-irsa"

    # RBAC managed elsewhere, the ServiceAccount still made here.
    no_rbac = render(
        "rbac.create=false", "serviceAccount.annotations.team=platform", show_tests=False
    )
    assert not {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"} & kinds(no_rbac)
    assert find(no_rbac, "ServiceAccount")["metadata"]["annotations"] == {"team": "platform"}


def test_chart_metadata_names_its_sources_and_maintainers() -> None:
    chart = yaml.safe_load(helm("show", "chart", str(CHART)).stdout)
    assert chart["sources"]
    assert all(s.startswith("https://") for s in chart["sources"])
    assert chart["maintainers"]
    assert all(m.get("name") for m in chart["maintainers"])


def notes(kube: ControlPlane, *values: str) -> str:
    args = ["install", RELEASE, str(CHART), "--namespace", NAMESPACE, "--dry-run=client"]
    # A client dry run refuses CRDs already there that are not the release's (the tests'
    # control plane has them).
    for value in ("crds.install=false", *values):
        args += ["--set", value]
    out = helm(*args, kubeconfig=kube.kubeconfig).stdout
    return out.split("NOTES:", 1)[1]


def test_notes_show_commands_a_chart_user_can_run(
    kube: ControlPlane, crds: None, namespace: str
) -> None:
    text = notes(kube)
    lines = text.splitlines()
    commands = [line.strip() for line in lines if re.match(r"\s+(kubectl|helm|curl)", line)]
    assert commands
    # Nothing that needs a checkout of the repository: manifests come inline.
    assert "manifests/" not in text
    assert "charts/" not in text
    assert all(not re.search(r"\s-f\s+(?!-)", c) for c in commands), commands
    # The inline objects, as pasted (indented), are one YAML document.
    manifest = text.split("<<'EOF'\n", 1)[1].split("\n  EOF", 1)[0]
    listed = yaml.safe_load(manifest)
    assert [o["kind"] for o in listed["items"]] == ["WorkflowDefinition", "EventRoute"]
    # ... that the apiserver accepts under the CRDs' schemas.
    kube.kubectl("apply", "--dry-run=server", "-n", namespace, "-f", "-", input=manifest)
    operator = f"deploy/{RELEASE}-operator"
    assert f"kubectl exec -n {NAMESPACE} {operator} -- tflow send --type hello" in text
    assert "tflow runs list --definition default/hello" in text
    assert f"svc/{RELEASE}-operator-metrics 9090" in text

    webhook = notes(kube, "listener.sample.enabled=true")
    assert "curl -X POST localhost:8080/events" in webhook
    assert "tflow send" not in webhook


def leaves(values: Any, prefix: str = "") -> list[str]:
    if not isinstance(values, dict) or not values:
        return [prefix]
    return [path for key, v in values.items() for path in leaves(v, f"{prefix}{key}.")]


def test_the_readme_documents_every_value() -> None:
    readme = (CHART / "README.md").read_text()
    table = readme.split("## Values", 1)[1]
    documented = {
        key
        for row in re.findall(r"^\| (`[^|]+`) \|", table, re.MULTILINE)
        for key in re.findall(r"`([^`]+)`", row)
    }
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for key in documented:
        node: Any = values
        for part in key.split("."):
            assert isinstance(node, dict), key
            assert part in node, f"README names {key}, not a value"
            node = node[part]
    for leaf in leaves(values):
        parts = leaf.rstrip(".").split(".")
        prefixes = {".".join(parts[: i + 1]) for i in range(len(parts))}
        assert prefixes & documented, f"{leaf.rstrip('.')} is not in the README's table"
