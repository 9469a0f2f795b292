"""Runtime semantics the Serverless Workflow spec defines precisely, each run on the dev
server: emit output, URI templates, error types, event filters and `until`, data schemas,
authentication from secrets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from engine_harness import EngineHarness
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError

from tflow_workers.cloudevents import event_workflow_id

pytestmark = pytest.mark.integration

SPEC_ERRORS = "https://serverlessworkflow.io/spec/1.0.0/errors/"
DSL_ERRORS = "https://serverlessworkflow.io/dsl/errors/types/"


def doc(*tasks: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "document": {"dsl": "1.0.0", "namespace": "test", "name": "spec", "version": "1.0.0"},
        "do": list(tasks),
        **extra,
    }


async def problem_of(engine: EngineHarness, document: dict[str, Any], data: Any = None) -> Any:
    handle = await engine.start(document, data)
    with pytest.raises(WorkflowFailureError) as caught:
        await handle.result()
    cause = caught.value.cause
    assert isinstance(cause, ApplicationError)
    return cause.details[0]


# ---- emit -------------------------------------------------------------------------------


@pytest.mark.runs("task.emit")
async def test_emit_outputs_the_emitted_event_and_still_routes_it(
    engine: EngineHarness, temporal_client: Any, task_queue: str
) -> None:
    out = await engine.run(
        doc(
            {
                "greet": {
                    "emit": {
                        "event": {
                            "with": {
                                "source": "https://fake-source.com",
                                "type": "user.greeted",
                                "data": {"greeting": '${ "Hello " + .name }'},
                            }
                        }
                    }
                }
            }
        ),
        {"name": "Ann"},
    )
    assert set(out) == {"id", "specversion", "time", "source", "type", "data"}
    assert out["source"] == "https://fake-source.com"
    assert out["type"] == "user.greeted"
    assert out["specversion"] == "1.0"
    assert out["data"] == {"greeting": "Hello Ann"}
    # The same event went to the router.
    router_run = temporal_client.get_workflow_handle(event_workflow_id(out["source"], out["id"]))
    described = await router_run.describe()
    assert described.task_queue == f"{task_queue}-router"
    await router_run.terminate("test cleanup")


# ---- URI templates ----------------------------------------------------------------------


def get(uri: str) -> dict[str, Any]:
    return {"fetch": {"call": "http", "with": {"method": "get", "endpoint": {"uri": uri}}}}


async def test_uri_template_values(engine: EngineHarness, http_service: str) -> None:
    out = await engine.run(
        doc(get(http_service + "/anything/{name}/{missing}/{flag}/{none}/{n}?q={pet.id}")),
        {"name": "a b/c", "flag": True, "none": None, "n": 1.5, "pet.id": 7, "pet": {"id": 9}},
    )
    # Reserved characters are encoded, an absent variable is empty, scalars are written as
    # JSON writes them, and `{pet.id}` is the property named "pet.id".
    assert out == {"path": "/anything/a%20b%2Fc//true/null/1.5?q=7"}


async def test_uri_template_with_an_object_is_an_expression_error_try_can_catch(
    engine: EngineHarness, http_service: str
) -> None:
    problem = await problem_of(
        engine, doc(get(http_service + "/anything/{pet}")), {"pet": {"id": 1}}
    )
    assert problem["type"] == SPEC_ERRORS + "expression"
    assert problem["status"] == 400
    assert problem["instance"] == "/do/0/fetch/with/endpoint"

    out = await engine.run(
        doc(
            {
                "guarded": {
                    "try": [get(http_service + "/anything/{pet}")],
                    "catch": {
                        "errors": {"with": {"type": DSL_ERRORS + "expression"}},
                        "as": "failure",
                        "do": [{"note": {"set": {"caught": "${ $failure.type }"}}}],
                    },
                }
            }
        ),
        {"pet": [1]},
    )
    assert out == {"caught": SPEC_ERRORS + "expression"}


# ---- error types ------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", [SPEC_ERRORS, DSL_ERRORS])
async def test_catch_matches_both_spellings_of_standard_types(
    engine: EngineHarness, http_service: str, spelling: str
) -> None:
    out = await engine.run(
        doc(
            {
                "guarded": {
                    "try": [get(http_service + "/pets/404")],
                    "catch": {
                        "errors": {"with": {"type": spelling + "communication", "status": 404}},
                        "as": "err",
                        "do": [{"note": {"set": {"type": "${ $err.type }"}}}],
                    },
                }
            }
        )
    )
    assert out == {"type": SPEC_ERRORS + "communication"}


async def test_catch_of_another_kind_does_not_match(
    engine: EngineHarness, http_service: str
) -> None:
    problem = await problem_of(
        engine,
        doc(
            {
                "guarded": {
                    "try": [get(http_service + "/pets/404")],
                    "catch": {"errors": {"with": {"type": DSL_ERRORS + "timeout"}}},
                }
            }
        ),
    )
    assert problem["type"] == SPEC_ERRORS + "communication"


async def test_a_failing_expression_faults_with_the_expression_type_and_is_catchable(
    engine: EngineHarness,
) -> None:
    failing = {"bad": {"set": {"x": '${ error("boom") }'}}}
    problem = await problem_of(engine, doc(failing))
    assert problem["type"] == SPEC_ERRORS + "expression"
    assert problem["status"] == 400
    out = await engine.run(
        doc(
            {
                "guarded": {
                    "try": [failing],
                    "catch": {
                        "errors": {"with": {"type": DSL_ERRORS + "expression"}},
                        "do": [{"note": {"set": {"recovered": True}}}],
                    },
                }
            }
        )
    )
    assert out == {"recovered": True}


# ---- events -----------------------------------------------------------------------------


def event(type_: str, id_: str, data: Any, source: str = "sensors") -> dict[str, Any]:
    return {"type": type_, "source": source, "id": id_, "data": data}


async def test_filter_expression_sees_the_attribute_it_sits_on(engine: EngineHarness) -> None:
    handle = await engine.start(
        doc(
            {
                "fever": {
                    "listen": {
                        "to": {
                            "one": {
                                "with": {
                                    "type": "reading",
                                    "data": "${ .temperature > 38 }",
                                    "source": '${ startswith("sens") }',
                                }
                            }
                        }
                    }
                }
            }
        )
    )
    await handle.signal("event", event("reading", "1", {"temperature": 37}))
    # An event without data: `null > 38` is false, so it must not match either.
    await handle.signal("event", event("reading", "2", None))
    await handle.signal("event", event("reading", "3", {"temperature": 39}, source="other"))
    await handle.signal("event", event("reading", "4", {"temperature": 40}))
    assert await handle.result() == [{"temperature": 40}]


@pytest.mark.runs("task.listen")
async def test_filter_strings_are_regular_expressions_over_the_whole_attribute(
    engine: EngineHarness,
) -> None:
    handle = await engine.start(
        doc(
            {
                "payment": {
                    "listen": {
                        "to": {
                            "one": {
                                "with": {
                                    "type": r"order\.(placed|paid)",
                                    "source": "shop/.*",
                                    "data": {"sku": "lamp-[0-9]+"},
                                }
                            }
                        },
                        "read": "envelope",
                    }
                }
            },
            {"seen": {"set": {"id": "${ .[0].id }", "type": "${ .[0].type }"}}},
        )
    )
    await handle.signal("event", event("order.shipped", "1", {"sku": "lamp-1"}, "shop/eu"))
    await handle.signal("event", event("order.paid", "2", {"sku": "chair-1"}, "shop/eu"))
    await handle.signal("event", event("order.paid", "3", {"sku": "lamp-1"}, "warehouse"))
    # A prefix is not enough: the pattern has to match all of the attribute.
    await handle.signal("event", event("order.paid.late", "4", {"sku": "lamp-1"}, "shop/eu"))
    await handle.signal("event", event("order.paid", "5", {"sku": "lamp-7"}, "shop/eu"))
    assert await handle.result() == {"id": "5", "type": "order.paid"}


async def test_until_given_as_events_listens_until_they_arrive_and_leaves_them_out(
    engine: EngineHarness,
) -> None:
    handle = await engine.start(
        doc(
            {
                "collect": {
                    "listen": {
                        "to": {
                            "any": [{"with": {"type": "reading"}}],
                            "until": {"one": {"with": {"type": "done"}}},
                        }
                    },
                    "export": {"as": "${ {readings: .} }"},
                }
            },
            # Keeps the run open so the late reading reaches it (a completed run would
            # refuse the signal), and proves the reading is not taken by `collect`.
            {
                "finish": {
                    "listen": {"to": {"one": {"with": {"type": "finish"}}}},
                    "output": {"as": "${ $context.readings }"},
                }
            },
        )
    )
    for i, value in enumerate((5, 6, 7)):
        await handle.signal("event", event("reading", f"r{i}", value))
    await handle.signal("event", event("done", "d", "stop"))
    await handle.signal("event", event("reading", "late", 8))
    await handle.signal("event", event("finish", "f", None))
    assert await handle.result() == [5, 6, 7]


@pytest.mark.runs("task.listen")
async def test_correlate_with_and_without_expect(engine: EngineHarness) -> None:
    handle = await engine.start(
        doc(
            {
                "paired": {
                    "listen": {
                        "to": {
                            "all": [
                                {
                                    "with": {"type": "paid"},
                                    "correlate": {
                                        "order": {"from": ".data.order", "expect": "${ .order }"}
                                    },
                                },
                                {
                                    "with": {"type": "shipped"},
                                    "correlate": {"order": {"from": ".data.order"}},
                                },
                                {
                                    "with": {"type": "delivered"},
                                    "correlate": {"order": {"from": ".data.order"}},
                                },
                            ]
                        },
                        "read": "envelope",
                    }
                }
            },
            {"ids": {"set": "${ [.[].id] }"}},
        ),
        {"order": "o-1"},
    )
    await handle.signal("event", event("paid", "p2", {"order": "o-2"}))
    await handle.signal("event", event("paid", "p1", {"order": "o-1"}))
    # No `expect`: the first of these consumed fixes the value the other must have.
    await handle.signal("event", event("shipped", "s1", {"order": "o-1"}))
    await handle.signal("event", event("delivered", "d2", {"order": "o-2"}))
    await handle.signal("event", event("delivered", "d1", {"order": "o-1"}))
    assert await handle.result() == ["p1", "s1", "d1"]


# ---- data schemas -----------------------------------------------------------------------

ORDER_SCHEMA = {
    "format": "json",
    "document": {
        "type": "object",
        "required": ["orderId"],
        "properties": {"orderId": {"type": "string"}},
    },
}


@pytest.mark.runs("data.schema.json")
async def test_workflow_input_and_output_schemas(engine: EngineHarness) -> None:
    document = doc(
        {"shape": {"set": {"orderId": "${ .orderId }", "total": "${ .total }"}}},
        input={"schema": ORDER_SCHEMA},
        output={
            "schema": {"document": {"type": "object", "properties": {"total": {"type": "number"}}}}
        },
    )
    assert await engine.run(document, {"orderId": "o-1", "total": 3}) == {
        "orderId": "o-1",
        "total": 3,
    }
    problem = await problem_of(engine, document, {"orderId": 42, "total": 3})
    assert problem["type"] == SPEC_ERRORS + "validation"
    assert problem["status"] == 400
    assert problem["instance"] == "/input/schema"
    assert "/orderId: 42 is not of type 'string'" in problem["detail"]
    problem = await problem_of(engine, document, {"orderId": "o-1"})
    assert problem["instance"] == "/output/schema"
    assert "/total: None is not of type 'number'" in problem["detail"]


@pytest.mark.runs("data.schema.json")
async def test_task_input_output_and_export_schemas(engine: EngineHarness) -> None:
    def task(**extra: Any) -> dict[str, Any]:
        return {"step": {"set": {"orderId": "${ .id }"}, **extra}}

    problem = await problem_of(engine, doc(task(input={"schema": ORDER_SCHEMA})), {"id": "o-1"})
    assert (problem["type"], problem["status"]) == (SPEC_ERRORS + "validation", 400)
    assert problem["instance"] == "/do/0/step/input/schema"

    problem = await problem_of(engine, doc(task(output={"schema": ORDER_SCHEMA})), {"id": 7})
    assert problem["instance"] == "/do/0/step/output/schema"

    exported = task(export={"as": "{seen: .orderId}", "schema": ORDER_SCHEMA})
    problem = await problem_of(engine, doc(exported), {"id": "o-1"})
    assert problem["instance"] == "/do/0/step/export/schema"

    out = await engine.run(
        doc(
            {
                "guarded": {
                    "try": [task(output={"schema": ORDER_SCHEMA})],
                    "catch": {
                        "errors": {"with": {"type": DSL_ERRORS + "validation"}},
                        "do": [{"note": {"set": {"rejected": True}}}],
                    },
                }
            }
        ),
        {"id": 7},
    )
    assert out == {"rejected": True}


# ---- authentication from secrets --------------------------------------------------------


def write_secret(root: Path, name: str, **keys: str) -> None:
    folder = root / "secrets" / name
    folder.mkdir(parents=True)
    for key, value in keys.items():
        (folder / key).write_text(value)


def authenticated(uri: str, scheme: str, secret: str) -> dict[str, Any]:
    return {
        "login": {
            "call": "http",
            "with": {
                "method": "get",
                "endpoint": {"uri": uri, "authentication": {scheme: {"use": secret}}},
            },
        }
    }


@pytest.mark.runs("auth.basic", "auth.bearer", "use.secrets")
async def test_basic_and_bearer_credentials_from_secrets(
    engine: EngineHarness, http_service: str, tmp_path: Path
) -> None:
    write_secret(tmp_path, "admin", username="admin", password="s3cret")
    write_secret(tmp_path, "api", token="tok-123")
    out = await engine.run(
        doc(
            authenticated(http_service + "/auth/basic", "basic", "admin"),
            use={"secrets": ["admin"]},
        )
    )
    assert out == {"user": "admin"}
    out = await engine.run(
        doc(
            authenticated(http_service + "/auth/bearer", "bearer", "api"),
            use={"secrets": ["api"]},
        )
    )
    assert out == {"token": "ok"}


async def test_a_secret_without_the_credential_fields_is_a_configuration_error(
    engine: EngineHarness, http_service: str, tmp_path: Path
) -> None:
    write_secret(tmp_path, "partial", username="admin")
    problem = await problem_of(
        engine,
        doc(
            authenticated(http_service + "/auth/basic", "basic", "partial"),
            use={"secrets": ["partial"]},
        ),
    )
    assert problem["type"] == SPEC_ERRORS + "configuration"
    assert problem["detail"] == "secret 'partial' has no 'password'"
    assert problem["instance"] == "/do/0/login/with/endpoint/authentication/basic"


# ---- OpenAPI ----------------------------------------------------------------------------


def openapi(base: str, operation: str, **extra: Any) -> dict[str, Any]:
    return {
        "op": {
            "call": "openapi",
            "with": {
                "document": {"endpoint": base + "/openapi.yaml"},
                "operationId": operation,
                **extra,
            },
        }
    }


@pytest.mark.runs("call.openapi")
async def test_openapi_3_call_places_path_query_header_and_body(
    engine: EngineHarness, http_service: str
) -> None:
    pet = await engine.run(
        doc(openapi(http_service, "getPet", parameters={"id": "${ .id }", "verbose": "yes"})),
        {"id": 5},
    )
    assert pet == {"id": 5, "name": "pet-5", "query": {"verbose": "yes"}}
    echoed = await engine.run(
        doc(
            openapi(
                http_service,
                "echo",
                parameters={"X-Order": "o-1", "body": {"items": [1, 2]}},
                output="response",
            )
        )
    )
    assert echoed["statusCode"] == 200
    assert echoed["request"]["method"] == "POST"
    assert echoed["content"]["body"] == {"items": [1, 2]}
    assert echoed["content"]["headers"]["X-Order"] == "o-1"


async def test_openapi_parameters_are_checked_against_the_operation(
    engine: EngineHarness, http_service: str
) -> None:
    problem = await problem_of(engine, doc(openapi(http_service, "echo", parameters={})))
    assert (problem["type"], problem["status"]) == (SPEC_ERRORS + "validation", 400)
    assert problem["detail"] == "operation 'echo' needs the header parameter 'X-Order'"
    problem = await problem_of(
        engine, doc(openapi(http_service, "getPet", parameters={"id": 1, "verbos": "y"}))
    )
    assert problem["detail"] == "operation 'getPet' has no parameter 'verbos'"
    problem = await problem_of(engine, doc(openapi(http_service, "nope")))
    assert problem["type"] == SPEC_ERRORS + "configuration"
    assert problem["instance"] == "/do/0/op"
