"""Finding runs: search attributes and memo set at start, the current task kept current.

tests/data/histories/indexed-order-upsert-per-task.json is this run recorded before
TflowCurrentTask followed only waiting tasks (it was upserted at every top-level task);
it must keep replaying (the interpreter guards the change with `workflow.patched`).
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from engine_harness import EngineHarness
from histories import check_replay
from temporalio.client import Client

from tflow_workers.engine.model import SA_CURRENT_TASK, SA_LISTENING, DefinitionRef, RunInput
from tflow_workers.engine.starter import start_run

pytestmark = pytest.mark.integration


async def test_runs_are_searchable_by_definition_event_and_task(
    engine: EngineHarness, temporal_client: Client
) -> None:
    marker = uuid.uuid4().hex[:8]
    run = RunInput(
        document={
            "document": {"dsl": "1.0.0", "namespace": "shop", "name": "order", "version": "2.1.0"},
            "do": [
                {"receive": {"set": {"ok": True}}},
                {"awaitPayment": {"listen": {"to": {"one": {"with": {"type": "paid"}}}}}},
            ],
        },
        definition=DefinitionRef(name=f"order-{marker}", namespace="shop", version="7"),
        event={"type": "order.created", "source": f"webshop-{marker}", "id": "e1"},
    )
    handle = await start_run(temporal_client, run, engine.task_queue)
    query = f'TflowDefinition = "shop/order-{marker}" AND TflowEventSource = "webshop-{marker}"'
    for _ in range(100):
        found = [w async for w in temporal_client.list_workflows(query)]
        described = await handle.describe()
        if found and described.typed_search_attributes.get(SA_CURRENT_TASK) == "awaitPayment":
            break
        await asyncio.sleep(0.1)
    assert [w.id for w in found] == [handle.id]
    assert described.typed_search_attributes.get(SA_CURRENT_TASK) == "awaitPayment"
    assert described.typed_search_attributes.get(SA_LISTENING) == ["paid"]
    listening = f'TflowListening = "paid" AND TflowDefinition = "shop/order-{marker}"'
    for _ in range(50):  # visibility is eventually consistent
        waiting = [w.id async for w in temporal_client.list_workflows(listening)]
        if waiting:
            break
        await asyncio.sleep(0.1)
    assert waiting == [handle.id]
    memo = await described.memo()
    assert memo == {"definition": f"shop/order-{marker}", "version": "7"}
    await handle.signal("paid", {"amount": 10})
    await handle.result()
    described = await handle.describe()
    assert described.typed_search_attributes.get(SA_LISTENING) is None
    # Only the task the run waited in was indexed as current, not `receive` before it.
    history = await handle.fetch_history()
    current = [
        e.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields[
            "TflowCurrentTask"
        ].data
        for e in history.events
        if e.HasField("upsert_workflow_search_attributes_event_attributes")
        and "TflowCurrentTask"
        in e.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
    ]
    assert current == [b'"awaitPayment"']
    await check_replay(handle, "indexed-order")
