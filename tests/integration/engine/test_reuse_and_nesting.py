"""Features with no other run-level test: reusable components called by name (`use.*`),
nested `do`, `wait`, workflow and named timeouts, and a detached child run."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import pytest
from engine_harness import EngineHarness
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import ApplicationError

from tflow_workers.engine.model import RunStatus

pytestmark = pytest.mark.integration

TIMEOUT = "https://serverlessworkflow.io/spec/1.0.0/errors/timeout"
RUNTIME = "https://serverlessworkflow.io/spec/1.0.0/errors/runtime"


def doc(*tasks: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "document": {"dsl": "1.0.0", "namespace": "test", "name": "reuse", "version": "1.0.0"},
        "do": list(tasks),
        **extra,
    }


@pytest.mark.runs("task.do", "task.wait")
async def test_nested_do_lists_and_a_wait(engine: EngineHarness) -> None:
    handle = await engine.start(
        doc(
            {
                "outer": {
                    "do": [
                        {"pause": {"wait": {"milliseconds": 300}}},
                        {
                            "inner": {
                                "do": [
                                    {"first": {"set": {"n": "${ .n + 1 }"}}},
                                    {"second": {"set": {"n": "${ .n * 10 }"}}},
                                ]
                            }
                        },
                    ]
                }
            },
            {"after": {"set": {"n": "${ .n + 2 }"}}},
        ),
        {"n": 1},
    )
    assert await handle.result() == {"n": 22}
    status = await handle.query("status", result_type=RunStatus)
    refs = [(entry.reference, entry.kind, entry.outcome) for entry in status.log]
    assert refs == [
        ("/do/0/outer", "do", "completed"),
        ("/do/0/outer/do/0/pause", "wait", "completed"),
        ("/do/0/outer/do/1/inner", "do", "completed"),
        ("/do/0/outer/do/1/inner/do/0/first", "set", "completed"),
        ("/do/0/outer/do/1/inner/do/1/second", "set", "completed"),
        ("/do/1/after", "set", "completed"),
    ]
    pause = status.log[1]
    assert pause.ended_at is not None
    assert (pause.ended_at - pause.started_at).total_seconds() >= 0.3


@pytest.mark.runs("use.functions", "call.function")
async def test_a_function_from_use_functions_runs_with_the_call_arguments(
    engine: EngineHarness,
) -> None:
    out = await engine.run(
        doc(
            {"hello": {"call": "greet", "with": {"name": "${ .who }"}}},
            use={
                "functions": {
                    "greet": {
                        "set": {"greeting": '${ "hello " + .name }'},
                        "output": {"as": ".greeting"},
                    }
                }
            },
        ),
        {"who": "ada"},
    )
    assert out == "hello ada"


@pytest.mark.runs("use.errors", "task.raise")
async def test_an_error_from_use_errors_is_raised_by_name(engine: EngineHarness) -> None:
    document = doc(
        {"reserve": {"raise": {"error": "outOfStock"}}},
        use={
            "errors": {
                "outOfStock": {
                    "type": "https://shop.example.com/errors/out-of-stock",
                    "status": 409,
                    "title": "Out of stock",
                    "detail": '${ "no " + .sku + " left" }',
                }
            }
        },
    )
    handle = await engine.start(document, {"sku": "lamp"})
    with pytest.raises(WorkflowFailureError) as caught:
        await handle.result()
    cause = caught.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.details[0] == {
        "type": "https://shop.example.com/errors/out-of-stock",
        "status": 409,
        "title": "Out of stock",
        "detail": "no lamp left",
        "instance": "/do/0/reserve",
    }


@pytest.mark.runs("use.retries", "task.retry")
async def test_a_retry_policy_from_use_retries_with_linear_backoff_and_jitter(
    engine: EngineHarness,
) -> None:
    document = doc(
        {
            "flaky": {
                "try": [{"boom": {"call": "explode"}}],
                "catch": {
                    "errors": {"with": {"type": RUNTIME}},
                    "retry": "patient",
                    "do": [{"fallback": {"set": {"gaveUp": True}}}],
                },
            }
        },
        use={
            "retries": {
                "patient": {
                    "delay": {"milliseconds": 100},
                    "backoff": {"linear": {}},
                    "limit": {"attempt": {"count": 2}},
                    "jitter": {"from": {"milliseconds": 0}, "to": {"milliseconds": 50}},
                }
            }
        },
    )
    handle = await engine.start(document)
    assert await handle.result() == {"gaveUp": True}
    status = await handle.query("status", result_type=RunStatus)
    attempts = [entry for entry in status.log if entry.name == "boom"]
    assert [entry.outcome for entry in attempts] == ["faulted"] * 3
    # Linear backoff: 100 ms before the second attempt, 200 ms before the third, plus jitter.
    gaps = [
        (later.started_at - earlier.started_at).total_seconds()
        for earlier, later in itertools.pairwise(attempts)
    ]
    assert gaps[0] >= 0.1
    assert gaps[1] >= 0.2


@pytest.mark.runs("use.timeouts", "timeouts")
async def test_a_named_task_timeout_and_the_workflow_timeout(engine: EngineHarness) -> None:
    caught = await engine.run(
        doc(
            {
                "guarded": {
                    "try": [{"slow": {"wait": "PT30S", "timeout": "quick"}}],
                    "catch": {
                        "errors": {"with": {"type": TIMEOUT}},
                        "do": [{"late": {"set": {"status": "${ $error.status }"}}}],
                    },
                }
            },
            use={"timeouts": {"quick": {"after": {"milliseconds": 200}}}},
        )
    )
    assert caught == {"status": 408}

    handle = await engine.start(doc({"slow": {"wait": "PT30S"}}, timeout={"after": "PT0.3S"}))
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.details[0]["type"] == TIMEOUT
    assert cause.details[0]["status"] == 408


@pytest.mark.runs("run.workflow.detached")
async def test_a_detached_child_outlives_its_parent(
    engine: EngineHarness, temporal_client: Client
) -> None:
    child_document = {
        "document": {"dsl": "1.0.0", "namespace": "shop", "name": "follow-up", "version": "1.0.0"},
        "do": [
            {"hold": {"listen": {"to": {"one": {"with": {"type": "release"}}}}}},
            {"done": {"set": {"released": "${ .[0].by }"}}},
        ],
    }
    (engine.definitions / "follow-up.json").write_text(json.dumps(child_document))
    parent = await engine.start(
        doc(
            {
                "spawn": {
                    "run": {
                        "await": False,
                        "workflow": {
                            "namespace": "shop",
                            "name": "follow-up",
                            "version": "1.0.0",
                            "input": {"orderId": "${ .id }"},
                        },
                    }
                }
            },
            {"after": {"set": {"parentDone": True}}},
        ),
        {"id": "o-9"},
    )
    assert await parent.result() == {"parentDone": True}
    child = temporal_client.get_workflow_handle(f"{parent.id}/do.0.spawn")
    described = await child.describe()
    assert described.status == WorkflowExecutionStatus.RUNNING
    assert described.parent_id == parent.id
    await child.signal("release", {"by": "ops"})
    assert await asyncio.wait_for(child.result(), 30) == {"released": "ops"}
