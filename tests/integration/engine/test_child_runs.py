"""Runs started by `run: workflow` belong to their parent's tenant: they carry the
parent's TflowNamespace and event, so a namespace's run-control API reaches them and
another namespace's does not; a child whose definition lives in another Temporal
namespace is refused by name instead of waiting for a worker that never polls there.

The recorded order histories (tests/data/histories/order-*.json) start children from
before this: they still replay, because the change is guarded by `workflow.patched`.
"""

from __future__ import annotations

import asyncio
import urllib.parse
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer
from engine_harness import EngineHarness
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ChildWorkflowError

from tflow_listeners.webhook import Secret, WebhookListener, WebhookSettings
from tflow_workers.engine.model import (
    SA_DEFINITION,
    SA_EVENT_SOURCE,
    SA_EVENT_TYPE,
    SA_NAMESPACE,
    DefinitionRef,
    RunInput,
)
from tflow_workers.engine.starter import start_run

pytestmark = pytest.mark.integration

TOKEN = "child-runs-token"


def definition(
    namespace: str, name: str, task_queue: str, do: list[Any], **spec: Any
) -> dict[str, Any]:
    """A published WorkflowDefinition manifest, as the operator writes it for workers."""
    return {
        "apiVersion": "temporalflow.dev/v1alpha1",
        "kind": "WorkflowDefinition",
        "metadata": {"name": name, "namespace": namespace, "generation": 1},
        "spec": {
            "taskQueue": task_queue,
            "workflow": {
                "document": {
                    "dsl": "1.0.0",
                    "namespace": namespace,
                    "name": name,
                    "version": "1.0.0",
                },
                "do": do,
            },
            **spec,
        },
    }


def parent_run(namespace: str, name: str, child: str, detached: bool) -> RunInput:
    run_task: dict[str, Any] = {
        "workflow": {"namespace": namespace, "name": child, "version": "1.0.0"}
    }
    if detached:
        run_task["await"] = False
    return RunInput(
        document={
            "document": {"dsl": "1.0.0", "namespace": namespace, "name": name, "version": "1.0.0"},
            "do": [{"spawn": {"run": run_task}}],
        },
        definition=DefinitionRef(namespace=namespace, name=name, version="3"),
        event={"type": "order.created", "source": "shop-web", "id": uuid.uuid4().hex},
    )


async def webhook(tmp_path: Path, client: Client, namespace: str) -> TestClient[Any, Any]:
    token = tmp_path / f"token-{namespace}"
    token.write_text(TOKEN)
    settings = WebhookSettings(
        bearer_token=Secret.from_file(token), run_control=True, namespace=namespace
    )
    http = TestClient(TestServer(WebhookListener(client, settings).app()))
    await http.start_server()
    return http


async def test_a_child_run_carries_its_parents_tenant_and_event(
    engine: EngineHarness, temporal_client: Client, tmp_path: Path
) -> None:
    namespace = f"team-{uuid.uuid4().hex[:8]}"
    hold = [{"hold": {"listen": {"to": {"one": {"with": {"type": "release"}}}}}}]
    manifest = definition(namespace, "follow-up", engine.task_queue, hold)
    (engine.definitions / "follow-up.yaml").write_text(yaml.safe_dump(manifest))
    parent = await start_run(
        temporal_client,
        parent_run(namespace, "order", "follow-up", detached=True),
        engine.task_queue,
        execution_timeout=timedelta(seconds=60),
    )
    await parent.result()
    child = temporal_client.get_workflow_handle(f"{parent.id}/do.0.spawn")
    described = await child.describe()
    attributes = described.typed_search_attributes
    assert attributes.get(SA_NAMESPACE) == namespace
    assert attributes.get(SA_DEFINITION) == f"{namespace}/follow-up"
    assert attributes.get(SA_EVENT_TYPE) == "order.created"
    assert attributes.get(SA_EVENT_SOURCE) == "shop-web"
    assert await described.memo() == {"definition": f"{namespace}/follow-up", "version": "1"}
    query = f'TflowNamespace = "{namespace}"'
    for _ in range(50):  # visibility is eventually consistent
        found = sorted([w.id async for w in temporal_client.list_workflows(query)])
        if len(found) == 2:
            break
        await asyncio.sleep(0.1)
    assert found == sorted([parent.id, child.id])

    # The namespace's run-control API reaches the child; another namespace's does not.
    ours = await webhook(tmp_path, temporal_client, namespace)
    theirs = await webhook(tmp_path, temporal_client, "team-other")
    auth = {"Authorization": f"Bearer {TOKEN}"}
    # The child's id holds a '/': one path segment, percent-encoded.
    path = f"/runs/{urllib.parse.quote(child.id, safe='')}"
    try:
        response = await theirs.get(path, headers=auth)
        assert response.status == 403
        response = await theirs.post(f"{path}/signal/release", json={}, headers=auth)
        assert response.status == 403
        response = await ours.get(path, headers=auth)
        assert response.status == 200
        assert (await response.json())["execution"] == "RUNNING"
        response = await ours.post(f"{path}/signal/release", json={"by": "ops"}, headers=auth)
        assert response.status == 202
    finally:
        await ours.close()
        await theirs.close()
    await asyncio.wait_for(child.result(), 30)


async def test_an_awaited_child_is_indexed_too(
    engine: EngineHarness, temporal_client: Client
) -> None:
    namespace = f"team-{uuid.uuid4().hex[:8]}"
    manifest = definition(
        namespace, "price", engine.task_queue, [{"quote": {"set": {"price": 12}}}]
    )
    (engine.definitions / "price.yaml").write_text(yaml.safe_dump(manifest))
    parent = await start_run(
        temporal_client,
        parent_run(namespace, "order", "price", detached=False),
        engine.task_queue,
        execution_timeout=timedelta(seconds=60),
    )
    assert await parent.result() == {"price": 12}
    described = await temporal_client.get_workflow_handle(f"{parent.id}/do.0.spawn").describe()
    assert described.typed_search_attributes.get(SA_NAMESPACE) == namespace
    assert described.typed_search_attributes.get(SA_DEFINITION) == f"{namespace}/price"


async def test_a_child_in_another_temporal_namespace_is_refused_by_name(
    engine: EngineHarness, temporal_client: Client
) -> None:
    namespace = f"team-{uuid.uuid4().hex[:8]}"
    manifest = definition(
        namespace,
        "elsewhere",
        engine.task_queue,
        [{"x": {"set": {"y": 1}}}],
        temporalNamespace="tenant-far",
    )
    (engine.definitions / "elsewhere.yaml").write_text(yaml.safe_dump(manifest))
    parent = await start_run(
        temporal_client,
        parent_run(namespace, "order", "elsewhere", detached=False),
        engine.task_queue,
        execution_timeout=timedelta(seconds=60),
    )
    with pytest.raises(WorkflowFailureError) as failed:
        await parent.result()
    assert not isinstance(failed.value.cause, ChildWorkflowError)
    problem = failed.value.cause.details[0]  # type: ignore[attr-defined]
    assert problem["type"].endswith("/configuration")
    assert "'tenant-far'" in problem["detail"]
    assert "parent's Temporal namespace" in problem["detail"]
