"""The interpreter on the real Temporal dev server: data flow, flow directives, and the
task kinds that need no outside world."""

from __future__ import annotations

from typing import Any

import pytest
from engine_harness import EngineHarness
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError

from tflow_workers.engine.model import RunStatus

pytestmark = pytest.mark.integration


def doc(*tasks: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "document": {"dsl": "1.0.0", "namespace": "test", "name": "t", "version": "1.0.0"},
        "do": list(tasks),
        **extra,
    }


@pytest.mark.runs("dsl.1.0", "task.set", "data.input_output_export")
async def test_input_filter_and_set(engine: EngineHarness) -> None:
    out = await engine.run(
        doc(
            {
                "setPlayerId": {
                    "input": {"from": ".user.claims.subject"},
                    "set": {"playerId": "${ . }"},
                }
            }
        ),
        {"user": {"claims": {"subject": "6AsnRg"}}},
    )
    assert out == {"playerId": "6AsnRg"}


@pytest.mark.runs("data.input_output_export")
async def test_output_as_and_export_context(engine: EngineHarness) -> None:
    out = await engine.run(
        doc(
            {"first": {"set": {"n": 1}, "export": {"as": "{seen: .n}"}}},
            {"second": {"set": {"n": "${ .n + 1 }", "ctx": "${ $context.seen }"}}},
            {"third": {"set": {"total": "${ .n }"}, "output": {"as": ".total"}}},
        )
    )
    assert out == 2


@pytest.mark.runs("task.switch")
async def test_switch_then_and_end(engine: EngineHarness) -> None:
    document = doc(
        {
            "check": {
                "switch": [
                    {"big": {"when": ".n > 10", "then": "bigOne"}},
                    {"other": {"then": "smallOne"}},
                ]
            }
        },
        {"smallOne": {"set": {"size": "small"}, "then": "end"}},
        {"bigOne": {"set": {"size": "big"}}},
    )
    assert await engine.run(document, {"n": 50}) == {"size": "big"}
    assert await engine.run(document, {"n": 1}) == {"size": "small"}


@pytest.mark.runs("task.for")
async def test_for_loop_collects(engine: EngineHarness) -> None:
    out = await engine.run(
        doc(
            {
                "loopColors": {
                    "for": {"each": "color", "in": ".colors"},
                    "do": [
                        {
                            "mark": {
                                "set": {
                                    "colors": "${ .colors }",
                                    "processed": "${ {colors: (.processed.colors + [$color]), "
                                    "indexes: (.processed.indexes + [$index])} }",
                                }
                            }
                        }
                    ],
                }
            }
        ),
        {"colors": ["red", "green", "blue"]},
    )
    assert out["processed"] == {"colors": ["red", "green", "blue"], "indexes": [0, 1, 2]}


@pytest.mark.runs("task.raise")
async def test_raise_uncaught_faults_with_problem(engine: EngineHarness) -> None:
    document = doc(
        {
            "fail": {
                "raise": {
                    "error": {
                        "type": "https://example.com/errors/out-of-stock",
                        "status": 409,
                        "title": "Out of stock",
                        "detail": '${ "sku " + .sku + " is gone" }',
                    }
                }
            }
        }
    )
    handle = await engine.start(document, {"sku": "A-1"})
    with pytest.raises(WorkflowFailureError) as caught:
        await handle.result()
    cause = caught.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.details[0] == {
        "type": "https://example.com/errors/out-of-stock",
        "status": 409,
        "title": "Out of stock",
        "detail": "sku A-1 is gone",
        "instance": "/do/0/fail",
    }
    status = await handle.query("status", result_type=RunStatus)
    assert status.phase == "faulted"
    assert [(e.name, e.outcome) for e in status.log] == [("fail", "faulted")]


@pytest.mark.runs("task.try")
async def test_try_catch_with_filter_and_as(engine: EngineHarness) -> None:
    out = await engine.run(
        doc(
            {
                "guarded": {
                    "try": [
                        {
                            "boom": {
                                "raise": {
                                    "error": {"type": "https://example.com/e/x", "status": 400}
                                }
                            }
                        }
                    ],
                    "catch": {
                        "errors": {"with": {"type": "https://example.com/e/x"}},
                        "as": "err",
                        "do": [{"handled": {"set": {"caught": "${ $err.status }"}}}],
                    },
                }
            }
        )
    )
    assert out == {"caught": 400}


@pytest.mark.runs("task.retry")
async def test_retry_then_give_up(engine: EngineHarness) -> None:
    document = doc(
        {
            "flaky": {
                "try": [{"call": {"call": "explode"}}],
                "catch": {
                    "errors": {
                        "with": {"type": "https://serverlessworkflow.io/spec/1.0.0/errors/runtime"}
                    },
                    "retry": {
                        "delay": {"milliseconds": 10},
                        "backoff": {"exponential": {}},
                        "limit": {"attempt": {"count": 2}},
                    },
                    "do": [{"fallback": {"set": {"gaveUp": True}}}],
                },
            }
        }
    )
    handle = await engine.start(document)
    assert await handle.result() == {"gaveUp": True}
    status = await handle.query("status", result_type=RunStatus)
    calls = [e for e in status.log if e.name == "call"]
    assert len(calls) == 3  # the first attempt and two retries
    assert all(e.outcome == "faulted" for e in calls)
    assert calls[0].error is not None
    assert calls[0].error.detail == "RuntimeError: boom"


@pytest.mark.runs("task.fork", "task.wait")
async def test_fork_gathers_and_competes(engine: EngineHarness) -> None:
    gathered = await engine.run(
        doc(
            {
                "both": {
                    "fork": {
                        "branches": [
                            {"a": {"set": {"v": "a"}}},
                            {"b": {"set": {"v": "b"}}},
                        ]
                    }
                }
            }
        )
    )
    assert gathered == [{"v": "a"}, {"v": "b"}]
    winner = await engine.run(
        doc(
            {
                "race": {
                    "fork": {
                        "compete": True,
                        "branches": [
                            {"slow": {"wait": "PT5S"}},
                            {"fast": {"set": {"winner": "fast"}}},
                        ],
                    }
                }
            }
        )
    )
    assert winner == {"winner": "fast"}


@pytest.mark.runs("call.function")
async def test_custom_functions(engine: EngineHarness) -> None:
    out = await engine.run(
        doc(
            {"sum": {"call": "add", "with": {"a": "${ .x }", "b": 2}}},
            {"loud": {"call": "shout", "with": {"text": '${ "total " + (.sum | tostring) }'}}},
        ),
        {"x": 40},
    )
    assert out == "TOTAL 42"


async def test_custom_function_error_is_catchable(engine: EngineHarness) -> None:
    out = await engine.run(
        doc(
            {
                "pay": {
                    "try": [{"charge": {"call": "refuse"}}],
                    "catch": {
                        "errors": {"with": {"status": 402}},
                        "do": [{"declined": {"set": {"declined": "${ $error.detail }"}}}],
                    },
                }
            }
        )
    )
    assert out == {"declined": "card declined"}


async def test_expression_error_is_typed_and_catchable(engine: EngineHarness) -> None:
    out = await engine.run(
        doc(
            {
                "guard": {
                    "try": [{"bad": {"set": {"x": "${ .a.b.c + 1 }"}}}],
                    "catch": {
                        "errors": {
                            "with": {
                                "type": "https://serverlessworkflow.io/spec/1.0.0/errors/expression"
                            }
                        },
                        "do": [{"recover": {"set": {"recovered": True}}}],
                    },
                }
            }
        ),
        {"a": "text"},
    )
    assert out == {"recovered": True}


@pytest.mark.runs("timeouts")
async def test_task_timeout_raises_timeout_error(engine: EngineHarness) -> None:
    out = await engine.run(
        doc(
            {
                "guard": {
                    "try": [{"slow": {"wait": "PT30S", "timeout": {"after": "PT0.2S"}}}],
                    "catch": {
                        "errors": {
                            "with": {
                                "type": "https://serverlessworkflow.io/spec/1.0.0/errors/timeout"
                            }
                        },
                        "as": "e",
                        "do": [{"late": {"set": {"status": "${ $e.status }"}}}],
                    },
                }
            }
        )
    )
    assert out == {"status": 408}


@pytest.mark.runs("task.listen", "listen.read.data")
async def test_listen_one_event_from_a_signal(engine: EngineHarness) -> None:
    document = doc(
        {"awaitApproval": {"listen": {"to": {"one": {"with": {"type": "approve"}}}}}},
        {"done": {"set": {"approvedBy": "${ .[0].by }"}}},
    )
    handle = await engine.start(document)
    await handle.signal("unrelated", {"by": "nobody"})
    await handle.signal("approve", {"by": "ops"})
    assert await handle.result() == {"approvedBy": "ops"}


async def test_invalid_document_fails_at_once_with_every_problem(engine: EngineHarness) -> None:
    handle = await engine.start(
        doc(
            {"a": {"set": {"x": "${ .x | nosuchfn }"}}},
            {"b": {"switch": [{"go": {"when": ".x", "then": "nowhere"}}]}},
        )
    )
    with pytest.raises(WorkflowFailureError) as caught:
        await handle.result()
    cause = caught.value.cause
    assert isinstance(cause, ApplicationError)
    problem = cause.details[0]
    assert problem["type"] == "https://serverlessworkflow.io/spec/1.0.0/errors/validation"
    assert problem["title"] == "Invalid workflow document"
    assert "do[1].b.switch[0].then: no task named 'nowhere'" in problem["detail"]
    assert "do[0].a.set.x" in problem["detail"]
    status = await handle.query("status", result_type=RunStatus)
    assert status.log == []


async def test_oversized_task_output_names_the_limit(engine: EngineHarness) -> None:
    handle = await engine.start(doc({"big": {"call": "huge"}}))
    with pytest.raises(WorkflowFailureError) as caught:
        await handle.result()
    cause = caught.value.cause
    assert isinstance(cause, ApplicationError)
    problem = cause.details[0]
    assert problem["status"] == 413
    assert problem["detail"].startswith("the result of 'huge' is 3.0 MiB, over Temporal's payload")
    assert "limit of 2 MiB" in problem["detail"]
    assert problem["instance"] == "/do/0/big"


async def test_oversized_run_input_is_refused_before_start(engine: EngineHarness) -> None:
    from tflow_workers.engine.errors import WorkflowError
    from tflow_workers.engine.model import RunInput
    from tflow_workers.engine.starter import start_run

    with pytest.raises(WorkflowError, match=r"the run's input is 2\.5 MiB, over .* limit of 2 MiB"):
        await start_run(
            engine.client,
            RunInput(document=doc({"a": {"set": {}}}), input={"x": "y" * (5 * 1024 * 512)}),
            engine.task_queue,
        )
