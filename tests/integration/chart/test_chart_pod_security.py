"""Every pod of the Helm chart against the real apiserver's Pod Security admission: each
pod template the chart renders (Deployments, the `helm test` Pod), made into a Pod and
applied with a server-side dry run into a namespace that enforces `restricted`, is
admitted; each container has a read-only root and a writable /tmp; only the operator
mounts a service-account token."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from chart import render

from tflow_devstack.controlplane import ControlPlane

pytestmark = pytest.mark.integration

# Kinds whose objects carry a pod template at spec.template.
TEMPLATED = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}


def pod_specs(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every pod the chart would run, by the name of the object that holds it."""
    found: dict[str, dict[str, Any]] = {}
    for obj in objects:
        name = f"{obj['kind'].lower()}-{obj['metadata']['name']}"
        if obj["kind"] == "Pod":
            found[name] = obj["spec"]
        elif obj["kind"] in TEMPLATED:
            found[name] = obj["spec"]["template"]["spec"]
        elif obj["kind"] == "CronJob":
            found[name] = obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return found


def as_pod(name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name[:63].rstrip("-"), "namespace": namespace},
        "spec": spec,
    }


def dry_run(kube: ControlPlane, pod: dict[str, Any]) -> tuple[int, str]:
    result = kube.kubectl(
        "apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump(pod), check=False
    )
    return result.returncode, result.stderr


def test_every_chart_pod_is_admitted_under_restricted(kube: ControlPlane, namespace: str) -> None:
    kube.kubectl(
        "label",
        "namespace",
        namespace,
        "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/enforce-version=latest",
    )
    objects = render("listener.sample.enabled=true")
    pods = pod_specs(objects)
    assert {name.split("-", 1)[0] for name in pods} == {"deployment", "pod"}
    assert len(pods) == 3  # operator, root orchestrator, the helm test
    # The ServiceAccount admission looks the account up even in a dry run.
    for account in {s["serviceAccountName"] for s in pods.values() if "serviceAccountName" in s}:
        kube.kubectl("create", "serviceaccount", account, "-n", namespace)

    for name, spec in pods.items():
        code, stderr = dry_run(kube, as_pod(name, namespace, spec))
        assert code == 0, f"{name}: {stderr}"

    # The namespace enforces for real: the same pod without its securityContext is refused.
    name, spec = next(iter(pods.items()))
    bare = {**spec, "securityContext": {}}
    bare["containers"] = [{**c, "securityContext": {}} for c in spec["containers"]]
    code, stderr = dry_run(kube, as_pod(name, namespace, bare))
    assert code != 0
    assert 'violates PodSecurity "restricted:latest"' in stderr


def test_every_chart_container_has_a_read_only_root_and_a_writable_tmp() -> None:
    pods = pod_specs(render())
    for name, spec in pods.items():
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for container in spec["containers"]:
            assert container["securityContext"]["readOnlyRootFilesystem"] is True, name
            (tmp,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
            assert volumes[tmp["name"]]["emptyDir"] == {"sizeLimit": "64Mi"}, name
        calls_the_api = name.endswith("-operator")
        assert spec["automountServiceAccountToken"] is calls_the_api, name
    sized = render("tmpVolume.sizeLimit=256Mi")
    for spec in pod_specs(sized).values():
        tmp_volume = next(v for v in spec["volumes"] if v["name"] == "tmp")
        assert tmp_volume["emptyDir"]["sizeLimit"] == "256Mi"
