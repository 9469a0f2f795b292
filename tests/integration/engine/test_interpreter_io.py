"""The interpreter's calls to the outside world: HTTP, child workflows, events, secrets."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml
from engine_harness import EngineHarness
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from tflow_workers.cloudevents import event_workflow_id
from tflow_workers.engine.model import RunStatus

pytestmark = pytest.mark.integration

COMM = "https://serverlessworkflow.io/spec/1.0.0/errors/communication"


def doc(*tasks: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "document": {"dsl": "1.0.0", "namespace": "test", "name": "io", "version": "1.0.0"},
        "do": list(tasks),
        **extra,
    }


@pytest.mark.runs("call.http")
async def test_http_get_with_uri_template_and_query(
    engine: EngineHarness, http_service: str
) -> None:
    out = await engine.run(
        doc(
            {
                "getPet": {
                    "call": "http",
                    "with": {
                        "method": "get",
                        "endpoint": {"uri": http_service + "/pets/{petId}"},
                        "query": {"verbose": "${ .verbose }"},
                    },
                    "output": {"as": "{id, name, q: .query.verbose}"},
                }
            }
        ),
        {"petId": 12, "verbose": "yes"},
    )
    assert out == {"id": 12, "name": "pet-12", "q": "yes"}


@pytest.mark.runs("call.http")
async def test_http_post_body_headers_and_response_output(
    engine: EngineHarness, http_service: str
) -> None:
    out = await engine.run(
        doc(
            {
                "post": {
                    "call": "http",
                    "with": {
                        "method": "post",
                        "endpoint": '${ "' + http_service + '/echo" }',
                        "headers": {"X-Order": "${ .order }"},
                        "body": {"order": "${ .order }", "items": [1, 2]},
                        "output": "response",
                    },
                }
            }
        ),
        {"order": "o-9"},
    )
    assert out["statusCode"] == 200
    assert out["content"]["body"] == {"order": "o-9", "items": [1, 2]}
    assert out["content"]["headers"]["X-Order"] == "o-9"
    assert out["request"]["method"] == "POST"


async def test_http_error_status_is_a_communication_error(
    engine: EngineHarness, http_service: str
) -> None:
    handle = await engine.start(
        doc(
            {
                "missing": {
                    "call": "http",
                    "with": {"method": "get", "endpoint": http_service + "/pets/404"},
                }
            }
        )
    )
    with pytest.raises(WorkflowFailureError) as caught:
        await handle.result()
    cause = caught.value.cause
    assert isinstance(cause, ApplicationError)
    problem = cause.details[0]
    assert problem["type"] == COMM
    assert problem["status"] == 404
    assert problem["instance"] == "/do/0/missing"
    assert problem["data"]["response"]["content"] == {"message": "no such pet"}


async def test_http_redirects_only_when_asked(engine: EngineHarness, http_service: str) -> None:
    follow = await engine.run(
        doc(
            {
                "r": {
                    "call": "http",
                    "with": {
                        "method": "get",
                        "endpoint": http_service + "/redirect",
                        "redirect": True,
                    },
                }
            }
        )
    )
    assert follow["id"] == 7
    out = await engine.run(
        doc(
            {
                "guard": {
                    "try": [
                        {
                            "r": {
                                "call": "http",
                                "with": {"method": "get", "endpoint": http_service + "/redirect"},
                            }
                        }
                    ],
                    "catch": {
                        "errors": {"with": {"type": COMM, "status": 302}},
                        "do": [{"noted": {"set": {"redirected": True}}}],
                    },
                }
            }
        )
    )
    assert out == {"redirected": True}


@pytest.mark.runs("auth.basic", "auth.bearer", "use.secrets")
async def test_http_basic_and_bearer_auth_from_secrets(
    engine: EngineHarness, http_service: str, tmp_path: Path
) -> None:
    secret_dir = tmp_path / "secrets" / "api"
    secret_dir.mkdir(parents=True)
    (secret_dir / "password").write_text("s3cret")
    (secret_dir / "token").write_text("tok-123")
    out = await engine.run(
        doc(
            {
                "basic": {
                    "call": "http",
                    "with": {
                        "method": "get",
                        "endpoint": {
                            "uri": http_service + "/auth/basic",
                            "authentication": {"use": "apiBasic"},
                        },
                    },
                    "export": {"as": "{basic: .user}"},
                }
            },
            {
                "bearer": {
                    "call": "http",
                    "with": {
                        "method": "get",
                        "endpoint": {
                            "uri": http_service + "/auth/bearer",
                            "authentication": {"bearer": {"token": "${ $secret.api.token }"}},
                        },
                    },
                    "output": {"as": "{token, basic: $context.basic}"},
                }
            },
            use={
                "secrets": ["api"],
                "authentications": {
                    "apiBasic": {
                        "basic": {"username": "admin", "password": "${ $secret.api.password }"}
                    }
                },
            },
        )
    )
    assert out == {"token": "ok", "basic": "admin"}


async def test_text_content_is_returned_as_a_string(
    engine: EngineHarness, http_service: str
) -> None:
    out = await engine.run(
        doc({"t": {"call": "http", "with": {"method": "get", "endpoint": http_service + "/text"}}})
    )
    assert out == "plain words"


@pytest.mark.runs("run.workflow")
async def test_run_workflow_as_child_on_its_own_task_queue(
    engine: EngineHarness, temporal_client: Any, task_queue: str
) -> None:
    from tflow_workers.engine.activities import DirectoryRegistry, EngineActivities
    from tflow_workers.worker import build_worker

    shipping_queue = f"{task_queue}-shipping"
    (engine.definitions / "shipping.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "temporalflow.dev/v1alpha1",
                "kind": "WorkflowDefinition",
                "metadata": {"name": "shipping", "namespace": "shop"},
                "spec": {
                    "taskQueue": shipping_queue,
                    "workflow": {
                        "document": {
                            "dsl": "1.0.0",
                            "namespace": "shop",
                            "name": "shipping",
                            "version": "1.0.0",
                        },
                        "do": [
                            {
                                "ship": {
                                    "set": {
                                        "shipped": "${ .orderId }",
                                        "queue": "${ $workflow.id }",
                                    }
                                }
                            }
                        ],
                    },
                },
            }
        )
    )
    child_worker = build_worker(
        temporal_client,
        shipping_queue,
        EngineActivities(client=temporal_client, definitions=DirectoryRegistry(engine.definitions)),
    )
    async with child_worker:
        handle = await engine.start(
            doc(
                {
                    "shipIt": {
                        "run": {
                            "workflow": {
                                "namespace": "shop",
                                "name": "shipping",
                                "version": "1.0.0",
                                "input": {"orderId": "${ .id }"},
                            }
                        }
                    }
                }
            ),
            {"id": "o-1"},
        )
        out = await handle.result()
    assert out["shipped"] == "o-1"
    assert out["queue"] == f"{handle.id}/do.0.shipIt"
    child = temporal_client.get_workflow_handle(out["queue"])
    assert (await child.describe()).task_queue == shipping_queue


async def test_run_workflow_unknown_definition_faults(engine: EngineHarness) -> None:
    handle = await engine.start(
        doc({"sub": {"run": {"workflow": {"namespace": "x", "name": "nope", "version": "1"}}}})
    )
    with pytest.raises(WorkflowFailureError) as caught:
        await handle.result()
    assert isinstance(caught.value.cause, ApplicationError)
    assert caught.value.cause.details[0]["status"] == 404
    assert "no workflow x/nope version 1" in caught.value.cause.details[0]["detail"]


@pytest.mark.runs("task.emit")
async def test_emit_hands_the_event_to_the_router(
    engine: EngineHarness, temporal_client: Any, task_queue: str
) -> None:
    await engine.run(
        doc(
            {
                "announce": {
                    "emit": {
                        "event": {
                            "with": {
                                "source": "shop/orders",
                                "type": "order.placed",
                                "id": "${ .orderId }",
                                "data": {"orderId": "${ .orderId }"},
                            }
                        }
                    }
                }
            }
        ),
        {"orderId": "o-77"},
    )
    router_run = temporal_client.get_workflow_handle(event_workflow_id("shop/orders", "o-77"))
    described = await router_run.describe()
    assert described.workflow_type == "RootOrchestratorWorkflow"
    assert described.task_queue == f"{task_queue}-router"
    await router_run.terminate("test cleanup")


@pytest.mark.runs("task.listen", "listen.read.data")
async def test_listen_all_and_any_until(engine: EngineHarness) -> None:
    all_doc = doc(
        {
            "both": {
                "listen": {
                    "to": {"all": [{"with": {"type": "a"}}, {"with": {"type": "b"}}]},
                    "read": "envelope",
                }
            }
        },
        {"types": {"set": {"types": "${ [.[].type] | sort }"}}},
    )
    handle = await engine.start(all_doc)
    await handle.signal("b", 1)
    await handle.signal("a", 2)
    assert await handle.result() == {"types": ["a", "b"]}

    until_doc = doc(
        {
            "collect": {
                "listen": {
                    "to": {"any": [{"with": {"type": "reading"}}], "until": "(. | length) >= 3"}
                }
            }
        }
    )
    handle = await engine.start(until_doc)
    for value in (5, 6, 7):
        await handle.signal("reading", value)
    # A fourth reading either reaches the run before it has taken the third (and must be
    # left out) or finds it already completed with the third.
    refused: RPCStatusCode | None = None
    try:
        await handle.signal("reading", 8)
    except RPCError as err:
        refused = err.status
    assert refused in (None, RPCStatusCode.NOT_FOUND)
    assert await handle.result() == [5, 6, 7]


async def test_listen_with_data_filter_and_event_signal(engine: EngineHarness) -> None:
    handle = await engine.start(
        doc(
            {
                "mine": {
                    "listen": {
                        "to": {
                            "one": {
                                "with": {
                                    "type": "order.approved",
                                    "data": {"orderId": "o-1"},
                                }
                            }
                        }
                    }
                }
            }
        )
    )
    await handle.signal(
        "event", {"type": "order.approved", "source": "x", "id": "1", "data": {"orderId": "o-2"}}
    )
    await handle.signal(
        "event",
        {
            "type": "order.approved",
            "source": "x",
            "id": "2",
            "data": {"orderId": "o-1", "by": "ann"},
        },
    )
    assert await handle.result() == [{"orderId": "o-1", "by": "ann"}]


async def test_status_query_while_waiting(engine: EngineHarness) -> None:
    handle = await engine.start(
        doc(
            {"prepare": {"set": {"ready": True}}},
            {"waitForGo": {"listen": {"to": {"one": {"with": {"type": "go"}}}}}},
        )
    )
    for _ in range(50):
        status = await handle.query("status", result_type=RunStatus)
        if status.current_task == "waitForGo":
            break
        await asyncio.sleep(0.1)
    assert status.phase == "waiting"
    assert [(e.name, e.outcome) for e in status.log] == [
        ("prepare", "completed"),
        ("waitForGo", "running"),
    ]
    await handle.signal("go", None)
    await handle.result()
    final = await handle.query("status", result_type=RunStatus)
    assert final.phase == "completed"
    assert [e.outcome for e in final.log] == ["completed", "completed"]
