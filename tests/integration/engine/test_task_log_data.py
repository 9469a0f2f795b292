"""Each task's transformed input and its output in the `status` query's task log, for
every kind (not only calls, whose data the history also holds), cut short when large."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from engine_harness import EngineHarness
from temporalio.client import Client

from tflow_workers.cloudevents import event_workflow_id
from tflow_workers.engine.model import RunStatus, TaskLogEntry
from tflow_workers.engine.tasklog import PREVIEW_LIMIT

pytestmark = pytest.mark.integration

DOCUMENT: dict[str, Any] = {
    "document": {"dsl": "1.0.0", "namespace": "test", "name": "logdata", "version": "1.0.0"},
    "do": [
        {"prepare": {"set": {"n": "${ .start }", "items": [1, 2, 3]}}},
        {
            "route": {
                "switch": [
                    {"many": {"when": "${ .n > 1 }", "then": "continue"}},
                    {"few": {"then": "end"}},
                ]
            }
        },
        {
            "sum": {
                "input": {"from": "${ {items: .items} }"},
                "for": {"each": "item", "in": "${ .items }"},
                "do": [{"add": {"set": {"total": "${ (.total // 0) + $item }"}}}],
            }
        },
        {"waitGo": {"listen": {"to": {"one": {"with": {"type": "go"}}}}}},
        {
            "announce": {
                "emit": {
                    "event": {
                        "with": {
                            "source": "test/logdata",
                            "type": "sum.done",
                            "data": {"total": 6},
                        }
                    }
                }
            }
        },
        {"big": {"set": {"numbers": "${ [range(0; 3000)] }"}}},
    ],
}


def value(part: Any) -> Any:
    assert part is not None
    assert not part.truncated
    return json.loads(part.text)


def only(log: list[TaskLogEntry], name: str) -> TaskLogEntry:
    found = [e for e in log if e.name == name]
    assert len(found) == 1, [e.name for e in log]
    return found[0]


@pytest.mark.runs("task.set", "task.switch", "task.for", "task.listen", "task.emit")
async def test_every_task_kind_logs_its_input_and_output(
    engine: EngineHarness, temporal_client: Client
) -> None:
    handle = await engine.start(DOCUMENT, {"start": 2})
    for _ in range(100):
        status = await handle.query("status", result_type=RunStatus)
        if status.current_task == "waitGo":
            break
        await asyncio.sleep(0.1)
    # A waiting task shows what it took already; its output comes when it completes.
    waiting = only(status.log, "waitGo")
    assert waiting.outcome == "running"
    assert value(waiting.input) == {"total": 6}
    assert waiting.output is None

    await handle.signal("go", {"by": "ops"})
    result = await handle.result()
    assert len(result["numbers"]) == 3000
    log = (await handle.query("status", result_type=RunStatus)).log

    prepare = only(log, "prepare")
    assert value(prepare.input) == {"start": 2}
    assert value(prepare.output) == {"n": 2, "items": [1, 2, 3]}
    route = only(log, "route")
    assert value(route.input) == value(route.output) == {"n": 2, "items": [1, 2, 3]}
    # The for task's input is its transformed input (`input.from`), not what it was given.
    loop = only(log, "sum")
    assert value(loop.input) == {"items": [1, 2, 3]}
    assert value(loop.output) == {"total": 6}
    adds = [e for e in log if e.name == "add"]
    assert [value(e.output) for e in adds] == [{"total": 1}, {"total": 3}, {"total": 6}]
    listen = only(log, "waitGo")
    assert value(listen.output) == [{"by": "ops"}]
    emit = only(log, "announce")
    event = value(emit.output)
    assert (event["type"], event["data"]) == ("sum.done", {"total": 6})

    # A large output is cut, and says so.
    big = only(log, "big").output
    assert big is not None
    assert big.truncated
    assert len(big.text) == PREVIEW_LIMIT
    assert big.text.startswith('{"numbers":[0,1,2,')

    router_run = temporal_client.get_workflow_handle(event_workflow_id("test/logdata", event["id"]))
    await router_run.terminate("test cleanup")
