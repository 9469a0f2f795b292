"""The definitions page's data: WorkflowDefinitions with their Ready condition, schedule,
task queue and worker bounds, the EventRoutes that start each, and the Listeners, read
from the apiserver with the operator's Kubernetes client (kubeconfig or service account)."""

from __future__ import annotations

from typing import Any

from tflow_cli.ui.models import Catalogue, Definition, ListenerRow
from tflow_operator.api import API_VERSION
from tflow_operator.kube import KubeClient, KubeError


def _ready(obj: dict[str, Any]) -> dict[str, Any]:
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return dict(condition)
    return {}


def definition(obj: dict[str, Any], routes: list[dict[str, Any]]) -> Definition:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    workers = spec.get("workers") or {}
    schedule = spec.get("schedule") or {}
    ready = _ready(obj)
    cron = schedule.get("cron") or []
    return Definition(
        namespace=meta.get("namespace", ""),
        name=meta.get("name", ""),
        ready=ready.get("status"),
        ready_reason=ready.get("reason"),
        ready_message=ready.get("message"),
        task_queue=status.get("taskQueue") or spec.get("taskQueue"),
        schedule=[cron] if isinstance(cron, str) else list(cron),
        min_replicas=workers.get("minReplicas"),
        max_replicas=workers.get("maxReplicas"),
        version=status.get("version"),
        running=status.get("running"),
        routes=[
            {
                "name": (r.get("metadata") or {}).get("name"),
                "match": (r.get("spec") or {}).get("match"),
                "ready": _ready(r).get("status"),
            }
            for r in routes
            if (r.get("metadata") or {}).get("namespace") == meta.get("namespace")
            and (r.get("spec") or {}).get("workflow") == meta.get("name")
        ],
    )


async def read_catalogue(kube: KubeClient | None, namespace: str | None) -> Catalogue:
    if kube is None:
        return Catalogue(
            definitions=[],
            listeners=[],
            notes=["no Kubernetes configuration: definitions, routes and listeners are not shown"],
        )
    try:
        definitions = await kube.list(API_VERSION, "WorkflowDefinition", namespace)
        routes = await kube.list(API_VERSION, "EventRoute", namespace)
        listeners = await kube.list(API_VERSION, "Listener", namespace)
    except KubeError as err:
        return Catalogue(
            definitions=[],
            listeners=[],
            notes=[f"the Kubernetes API did not answer ({err.status}): {err}"],
        )
    rows = sorted((definition(d, routes) for d in definitions), key=lambda d: (d.namespace, d.name))
    return Catalogue(
        definitions=rows,
        listeners=[
            ListenerRow(
                namespace=(o.get("metadata") or {}).get("namespace", ""),
                name=(o.get("metadata") or {}).get("name", ""),
                type=(o.get("spec") or {}).get("type"),
                ready=_ready(o).get("status"),
                run_control=bool(
                    (((o.get("spec") or {}).get("webhook") or {}).get("runControl") or {}).get(
                        "enabled"
                    )
                ),
            )
            for o in listeners
        ],
    )


async def read_definition(kube: KubeClient, namespace: str, name: str) -> Definition | None:
    obj = await kube.get(API_VERSION, "WorkflowDefinition", namespace, name)
    if obj is None:
        return None
    routes = await kube.list(API_VERSION, "EventRoute", namespace)
    return definition(obj, routes)
