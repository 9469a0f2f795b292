"""Long runs keep their history bounded: with a low continue-as-new threshold on a
Temporal server of their own, a long task list and a long loop continue as new, carrying
their data, context, task log and position."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from histories import replayer
from temporalio.client import Client

from tflow_devstack.temporal import TemporalServer
from tflow_workers.connection import connect
from tflow_workers.engine.activities import EngineActivities
from tflow_workers.engine.model import WORKFLOW_TYPE, RunInput, RunStatus
from tflow_workers.worker import build_worker

pytestmark = pytest.mark.integration


@pytest.fixture
async def client(small_history_server: TemporalServer, task_queue: str) -> AsyncIterator[Client]:
    client = await connect(small_history_server.address, small_history_server.namespace)
    async with build_worker(
        client,
        task_queue,
        EngineActivities(client=client),
        {
            "bump": lambda args: {"n": args["n"] + 1},
        },
    ):
        yield client


def doc(*tasks: dict[str, Any]) -> dict[str, Any]:
    return {
        "document": {"dsl": "1.0.0", "namespace": "t", "name": "long", "version": "1.0.0"},
        "do": list(tasks),
    }


async def _runs(client: Client, workflow_id: str) -> int:
    return len([w async for w in client.list_workflows(f'WorkflowId = "{workflow_id}"')])


async def test_long_loop_continues_as_new_with_its_state(client: Client, task_queue: str) -> None:
    document = doc(
        {"start": {"set": {"n": 0}, "export": {"as": '{origin: "start"}'}}},
        {
            "loop": {
                "for": {"each": "i", "in": "[range(30)]"},
                "do": [
                    {"bump": {"call": "bump", "with": {"n": "${ .n }"}}},
                    {"keep": {"set": {"n": "${ .n }", "seen": "${ (.seen // 0) + 1 }"}}},
                ],
            }
        },
        {"done": {"set": {"n": "${ .n }", "origin": "${ $context.origin }"}}},
    )
    workflow_id = f"loop-{uuid.uuid4().hex[:8]}"
    handle = await client.start_workflow(
        WORKFLOW_TYPE,
        RunInput(document=document, input={}),
        id=workflow_id,
        task_queue=task_queue,
    )
    assert await handle.result() == {"n": 30, "origin": "start"}
    assert await _runs(client, workflow_id) > 1
    latest = client.get_workflow_handle(workflow_id)
    status = await latest.query("status", result_type=RunStatus)
    loop_entries = [e for e in status.log if e.name == "loop"]
    assert loop_entries[0].outcome == "continued"
    assert loop_entries[-1].outcome == "completed"
    assert len([e for e in status.log if e.name == "bump"]) + status.log_dropped >= 30
    # Every run of the chain replays.
    async for run in client.list_workflows(f'WorkflowId = "{workflow_id}"'):
        history = await client.get_workflow_handle(workflow_id, run_id=run.run_id).fetch_history()
        await replayer().replay_workflow(history)


async def test_long_task_list_continues_as_new(client: Client, task_queue: str) -> None:
    steps = [{f"step{i}": {"call": "bump", "with": {"n": "${ .n }"}}} for i in range(25)]
    workflow_id = f"list-{uuid.uuid4().hex[:8]}"
    handle = await client.start_workflow(
        WORKFLOW_TYPE,
        RunInput(document=doc({"init": {"set": {"n": 0}}}, *steps), input={}),
        id=workflow_id,
        task_queue=task_queue,
    )
    assert await handle.result() == {"n": 25}
    assert await _runs(client, workflow_id) > 1
    status = await client.get_workflow_handle(workflow_id).query("status", result_type=RunStatus)
    assert [e.name for e in status.log][-1] == "step24"
    assert [e.outcome for e in status.log].count("completed") == 26
