"""Helpers of the end-to-end tests: workloads (definitions, routes) applied to the cluster
on the real node, and waiting for what they do."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import httpx
import yaml
from temporalio.client import Client, WorkflowExecutionStatus

from tflow_devstack.cluster import Cluster
from tflow_workers.engine.model import WORKFLOW_TYPE


def apply(cluster: Cluster, namespace: str, *objects: dict[str, Any]) -> None:
    cluster.cp.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(objects))


def webhook(name: str = "events", **spec: Any) -> dict[str, Any]:
    """An unauthenticated webhook Listener: events it receives reach only the routes of its
    own namespace, so each test namespace gets one."""
    return {
        "apiVersion": "temporalflow.dev/v1alpha1",
        "kind": "Listener",
        "metadata": {"name": name},
        "spec": {"type": "webhook", "webhook": {"path": "/events", "port": 8080}, **spec},
    }


def definition(
    name: str, task_queue: str, do: list[dict[str, Any]], **workers: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "temporalflow.dev/v1alpha1",
        "kind": "WorkflowDefinition",
        "metadata": {"name": name},
        "spec": {
            "taskQueue": task_queue,
            "workers": {"minReplicas": 0, "maxReplicas": 3, "targetBacklog": 1, **workers},
            # Once a year: the Schedule exists and is reconciled, it never fires in a test.
            "schedule": {"cron": ["0 0 1 1 *"]},
            "workflow": {
                "document": {"dsl": "1.0.0", "namespace": "e2e", "name": name, "version": "1.0.0"},
                "do": do,
            },
        },
    }


def route(name: str, workflow: str, event_type: str, input_: str) -> dict[str, Any]:
    return {
        "apiVersion": "temporalflow.dev/v1alpha1",
        "kind": "EventRoute",
        "metadata": {"name": name},
        "spec": {"match": {"type": event_type}, "workflow": workflow, "input": input_},
    }


def replicas(cluster: Cluster, namespace: str, task_queue: str) -> int:
    out = cluster.cp.kubectl(
        "get",
        "deployments",
        "-n",
        namespace,
        "-l",
        f"temporalflow.dev/task-queue={task_queue}",
        "-o",
        "json",
    ).stdout
    items = json.loads(out)["items"]
    return sum(int(d["status"].get("readyReplicas", 0)) for d in items)


async def runs_of(client: Client, namespace: str, name: str) -> list[Any]:
    query = f'WorkflowType = "{WORKFLOW_TYPE}" AND TflowDefinition = "{namespace}/{name}"'
    return [r async for r in client.list_workflows(query)]


async def post_until_run(
    client: Client,
    url: str,
    event: dict[str, Any],
    namespace: str,
    name: str,
    within: float = 120.0,
) -> str:
    """Post the event until a run of the definition exists (a new route reaches the root
    orchestrator's mounted table within the kubelet's sync period); its workflow id."""
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(timeout=10) as http:
        while time.monotonic() < deadline:
            response = await http.post(url, json={**event, "id": uuid.uuid4().hex})
            assert response.status_code < 300, response.text
            for _ in range(10):
                found = await runs_of(client, namespace, name)
                if found:
                    return str(found[0].id)
                await asyncio.sleep(1)
    raise AssertionError(f"no run of {namespace}/{name} after posting for {within:.0f}s")


async def wait_for(predicate: Any, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(1)
    raise AssertionError(f"timed out after {within:.0f}s waiting for {what}")


async def stuck_runs(client: Client, namespace: str, name: str) -> str:
    """What the definition's unfinished runs wait on (their pending activities' state,
    attempt and worker, or a pending workflow task), for a timeout's message."""
    lines: list[str] = []
    for run in await runs_of(client, namespace, name):
        if run.status == WorkflowExecutionStatus.COMPLETED:
            continue
        described = await client.get_workflow_handle(run.id, run_id=run.run_id).describe()
        raw = described.raw_description
        pending = [
            f"{a.activity_type.name} state={a.state} attempt={a.attempt} "
            f"worker={a.last_worker_identity or '-'}"
            for a in raw.pending_activities
        ]
        task = raw.pending_workflow_task
        waiting = f" workflow-task state={task.state}" if task.ByteSize() else ""
        lines.append(f"{run.id} {run.status.name if run.status else '?'}{waiting} {pending}")
    return "\n".join(lines) or "none unfinished"
