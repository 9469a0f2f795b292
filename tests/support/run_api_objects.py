"""What the run API's tests set up in the apiserver: WorkflowDefinitions with the status
the operator would write, and service accounts with RBAC grants on their runs."""

from __future__ import annotations

import json
from typing import Any

import yaml

from tflow_devstack.controlplane import ControlPlane

APPROVAL: dict[str, Any] = {
    "document": {"dsl": "1.0.0", "namespace": "test", "name": "approval", "version": "1.0.0"},
    "input": {
        "schema": {
            "format": "json",
            "document": {
                "type": "object",
                "required": ["orderId"],
                "properties": {"orderId": {"type": "string"}, "amount": {"type": "number"}},
            },
        }
    },
    "do": [
        {"awaitApproval": {"listen": {"to": {"one": {"with": {"type": "approve"}}}}}},
        {"done": {"set": {"approvedBy": "${ .[0].by }"}}},
    ],
}
ALL_VERBS = ["get", "list", "create", "update", "delete"]


def apply(kube: ControlPlane, *objects: dict[str, Any]) -> None:
    kube.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(objects))


def definition(
    kube: ControlPlane, namespace: str, name: str, task_queue: str, ready: bool = True
) -> None:
    apply(
        kube,
        {
            "apiVersion": "temporalflow.dev/v1alpha1",
            "kind": "WorkflowDefinition",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"taskQueue": task_queue, "workflow": APPROVAL},
        },
    )
    # No operator runs here: the status is what it would write.
    condition = {
        "type": "Ready",
        "status": "True" if ready else "False",
        "reason": "Reconciled" if ready else "WorkersUnavailable",
        "message": "ready" if ready else "the worker Deployment has no available replica",
        "lastTransitionTime": "2026-01-01T00:00:00Z",
        "observedGeneration": 1,
    }
    kube.kubectl(
        "patch",
        "workflowdefinition",
        name,
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": {"conditions": [condition], "taskQueue": task_queue}}),
    )


def grant(kube: ControlPlane, namespace: str, account: str, verbs: list[str]) -> str:
    """A service account whose Role allows `verbs` on workflowdefinitions/runs; its token."""
    apply(
        kube,
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": account, "namespace": namespace},
        },
    )
    if verbs:
        apply(
            kube,
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": f"runs-{account}", "namespace": namespace},
                "rules": [
                    {
                        "apiGroups": ["temporalflow.dev"],
                        "resources": ["workflowdefinitions/runs"],
                        "verbs": verbs,
                    }
                ],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": f"runs-{account}", "namespace": namespace},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": f"runs-{account}",
                },
                "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
            },
        )
    return kube.kubectl("create", "token", account, "-n", namespace).stdout.strip()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
