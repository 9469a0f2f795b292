"""The seeds' own formats, converted to SW 1.0 and run end to end: the POC's
abandoned-cart step map (signal with a 1-minute timeout, then webhook -> wait -> message)
and the node/edge graph (api_call -> transform)."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest
from histories import check_replay
from samples import SAMPLES
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from tflow_samples import cart
from tflow_workers.convert import convert
from tflow_workers.dsl.validate import validate_document
from tflow_workers.dsl.yamlio import load_yaml
from tflow_workers.engine.activities import EngineActivities
from tflow_workers.engine.model import WORKFLOW_TYPE, RunInput, RunStatus
from tflow_workers.worker import build_worker

pytestmark = pytest.mark.integration

CART_FUNCTIONS = {
    "send_message": cart.send_message,
    "notify_creator": cart.notify_creator,
    "webhook": cart.webhook,
}


def _cart_document() -> dict[str, Any]:
    steps = load_yaml((SAMPLES / "seed-formats" / "abandoned-cart.steps.yaml").read_text())
    document = convert(steps, name="abandoned-cart", namespace="shop")
    assert validate_document(document, catalog=CART_FUNCTIONS) == []
    return document


@pytest.fixture
def cart_hooks(http_service: str, monkeypatch: pytest.MonkeyPatch) -> str:
    base = f"{http_service}/hooks/{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("CART_WEBHOOK_URL", base)
    return base


async def _posted(base: str, channel: str) -> list[Any]:
    async with httpx.AsyncClient() as http:
        body: list[Any] = (await http.get(f"{base}/{channel}")).json()
        return body


async def test_cart_client_answers_in_time(
    temporal_client: Client, task_queue: str, cart_hooks: str
) -> None:
    worker = build_worker(
        temporal_client, task_queue, EngineActivities(client=temporal_client), CART_FUNCTIONS
    )
    async with worker:
        handle = await temporal_client.start_workflow(
            WORKFLOW_TYPE,
            RunInput(document=_cart_document(), input={"cartId": "c-1"}),
            id=f"cart-{uuid.uuid4().hex[:8]}",
            task_queue=task_queue,
        )
        for _ in range(100):
            status = await handle.query("status", result_type=RunStatus)
            if status.current_task == "wait_answer":
                break
            await asyncio.sleep(0.1)
        await handle.signal("client-answered", {"answer": "yes"})
        await handle.result()
        status = await handle.query("status", result_type=RunStatus)
        await check_replay(handle, "cart-answered")
    assert [e.name for e in status.log] == [
        "step_1",
        "step_2",
        "wait_answer",
        "step_2_route",
        "step_3",
    ]
    assert [m["cartId"] for m in await _posted(cart_hooks, "messages")] == ["c-1"]
    assert [m["cartId"] for m in await _posted(cart_hooks, "creator")] == ["c-1"]
    assert await _posted(cart_hooks, "crm") == []


async def test_cart_timeout_runs_webhook_wait_and_message(
    time_skipping: WorkflowEnvironment, task_queue: str, cart_hooks: str
) -> None:
    client = time_skipping.client
    worker = build_worker(client, task_queue, EngineActivities(client=client), CART_FUNCTIONS)
    async with worker:
        handle = await client.start_workflow(
            WORKFLOW_TYPE,
            RunInput(document=_cart_document(), input={"cartId": "c-2"}),
            id=f"cart-{uuid.uuid4().hex[:8]}",
            task_queue=task_queue,
        )
        await handle.result()
        status = await handle.query("status", result_type=RunStatus)
        await check_replay(handle, "cart-timeout")
    assert [(e.name, e.outcome) for e in status.log] == [
        ("step_1", "completed"),
        ("step_2", "completed"),
        ("wait_answer", "faulted"),
        ("timed_out", "completed"),
        ("step_2_route", "completed"),
        ("step_4", "completed"),
        ("step_5", "completed"),
        ("step_6", "completed"),
    ]
    assert [m["cartId"] for m in await _posted(cart_hooks, "messages")] == ["c-2", "c-2"]
    assert [m["event"] for m in await _posted(cart_hooks, "crm")] == ["no-answer"]
    assert await _posted(cart_hooks, "creator") == []


async def test_node_graph_api_call_then_transform(
    temporal_client: Client, task_queue: str, http_service: str
) -> None:
    graph = json.loads((SAMPLES / "seed-formats" / "flov7-graph.json").read_text())
    graph["nodes"][0]["data"]["url"] = f"{http_service}/api/data"
    document = convert(graph)
    assert validate_document(document) == []
    worker = build_worker(temporal_client, task_queue, EngineActivities(client=temporal_client))
    async with worker:
        handle = await temporal_client.start_workflow(
            WORKFLOW_TYPE,
            RunInput(document=document, input={}),
            id=f"graph-{uuid.uuid4().hex[:8]}",
            task_queue=task_queue,
        )
        out = await handle.result()
        await check_replay(handle, "node-graph")
    # The transform maps `inputs.data` of the api_call's response to `result`.
    assert out == {"result": {"items": [1, 2, 3]}}
