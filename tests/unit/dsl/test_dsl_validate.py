"""Whole-document validation: exact paths and messages, every problem at once."""

from __future__ import annotations

from typing import Any

import pytest

from tflow_workers.dsl.issues import DocumentError, Issue
from tflow_workers.dsl.models import WorkflowDocument
from tflow_workers.dsl.validate import load_validated_document, validate_document

HEADER = {"dsl": "1.0.0", "namespace": "test", "name": "flow", "version": "1.0.0"}


def workflow(*tasks: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"document": dict(HEADER), "do": list(tasks), **extra}


def problems(data: Any) -> list[str]:
    return [str(issue) for issue in validate_document(data)]


def test_issue_reads_path_then_message() -> None:
    issue = Issue("do[2].checkStock.switch[1].then", "no task named 'shipp'")
    assert str(issue) == "do[2].checkStock.switch[1].then: no task named 'shipp'"
    with pytest.raises(AttributeError):
        issue.path = "elsewhere"  # type: ignore[misc]


def test_valid_document_has_no_issues() -> None:
    assert problems(workflow({"a": {"set": {"x": 1}}}, {"b": {"wait": "PT1S"}})) == []


# --- then targets -----------------------------------------------------------------------


def test_unknown_then_target_in_a_switch_case() -> None:
    data = workflow(
        {"receive": {"set": {"stock": 3}}},
        {"reserve": {"set": {"reserved": True}}},
        {
            "checkStock": {
                "switch": [
                    {"none": {"when": ".stock == 0", "then": "end"}},
                    {"some": {"when": ".stock > 0", "then": "shipp"}},
                ]
            }
        },
        {"ship": {"set": {"shipped": True}}},
    )
    assert problems(data) == ["do[2].checkStock.switch[1].then: no task named 'shipp'"]


def test_unknown_then_target_on_a_task() -> None:
    assert problems(
        workflow({"a": {"set": {"x": 1}, "then": "nowhere"}}, {"b": {"wait": "PT1S"}})
    ) == [
        "do[0].a.then: no task named 'nowhere'",
        "do[1].b: unreachable task: no transition leads here",
    ]


@pytest.mark.parametrize("directive", ["continue", "exit", "end"])
def test_flow_directives_are_not_task_names(directive: str) -> None:
    assert problems(workflow({"a": {"set": {"x": 1}, "then": directive}})) == []


def test_then_targets_resolve_in_the_same_list_only() -> None:
    data = workflow(
        {"outer": {"do": [{"inner": {"set": {"x": 1}, "then": "after"}}]}},
        {"after": {"set": {"y": 2}}},
    )
    assert problems(data) == ["do[0].outer.do[0].inner.then: no task named 'after'"]


def test_fork_branches_cannot_jump() -> None:
    data = workflow(
        {
            "race": {
                "fork": {
                    "compete": True,
                    "branches": [
                        {"a": {"wait": "PT1S", "then": "b"}},
                        {"b": {"wait": "PT2S", "then": "end"}},
                    ],
                }
            }
        }
    )
    assert problems(data) == [
        "do[0].race.fork.branches[0].a.then: "
        "fork branches run concurrently: 'then' can only be continue, exit or end"
    ]


def test_duplicate_and_reserved_task_names() -> None:
    data = workflow({"a": {"set": {"x": 1}}}, {"a": {"set": {"x": 2}}}, {"end": {"set": {"x": 3}}})
    assert problems(data) == [
        "do[1].a: duplicate task name 'a' (first used at do[0])",
        "do[2].end: 'end' is a flow directive and cannot name a task",
    ]


# --- reachability -----------------------------------------------------------------------


def test_task_after_an_unconditional_jump_is_unreachable() -> None:
    data = workflow(
        {"start": {"set": {"x": 1}, "then": "finish"}},
        {"orphan": {"set": {"x": 2}}},
        {"finish": {"set": {"x": 3}}},
    )
    assert problems(data) == ["do[1].orphan: unreachable task: no transition leads here"]


def test_a_task_named_by_a_then_is_reachable() -> None:
    data = workflow(
        {"start": {"set": {"x": 1}, "then": "finish"}},
        {"retry": {"set": {"x": 2}}},
        {"finish": {"set": {"x": 3}, "then": "end"}},
        {"late": {"set": {"x": 4}}},
    )
    # `retry` leads to `finish`, but nothing leads to `retry`; `late` follows an `end`.
    assert problems(data) == [
        "do[1].retry: unreachable task: no transition leads here",
        "do[3].late: unreachable task: no transition leads here",
    ]


def test_an_if_keeps_the_next_task_reachable() -> None:
    data = workflow(
        {"maybe": {"if": ".skip | not", "set": {"x": 1}, "then": "end"}},
        {"next": {"set": {"x": 2}}},
    )
    assert problems(data) == []


def test_a_switch_with_a_default_case_never_falls_through() -> None:
    data = workflow(
        {
            "route": {
                "switch": [
                    {"big": {"when": ".n > 10", "then": "large"}},
                    {"otherwise": {"then": "small"}},
                ]
            }
        },
        {"between": {"set": {"x": 0}}},
        {"large": {"set": {"size": "L"}, "then": "end"}},
        {"small": {"set": {"size": "S"}}},
    )
    assert problems(data) == ["do[1].between: unreachable task: no transition leads here"]


def test_a_switch_without_default_falls_through_to_its_then() -> None:
    data = workflow(
        {"route": {"switch": [{"big": {"when": ".n > 10", "then": "large"}}], "then": "end"}},
        {"between": {"set": {"x": 0}}},
        {"large": {"set": {"size": "L"}}},
    )
    assert problems(data) == ["do[1].between: unreachable task: no transition leads here"]
    data["do"][0]["route"].pop("then")
    assert problems(data) == []


def test_a_case_continue_reaches_the_next_task() -> None:
    data = workflow(
        {"route": {"switch": [{"always": {"then": "continue"}}]}},
        {"next": {"set": {"x": 0}}},
    )
    assert problems(data) == []


def test_raise_never_completes() -> None:
    data = workflow(
        {"fail": {"raise": {"error": {"type": "https://x.example/e", "status": 400}}}},
        {"after": {"set": {"x": 1}}},
    )
    assert problems(data) == ["do[1].after: unreachable task: no transition leads here"]


def test_loops_back_are_fine() -> None:
    data = workflow(
        {"poll": {"set": {"n": "${ .n + 1 }"}}},
        {"check": {"switch": [{"again": {"when": ".n < 3", "then": "poll"}}]}},
        {"done": {"set": {"ok": True}}},
    )
    assert problems(data) == []


def test_cases_after_the_default_are_never_evaluated() -> None:
    data = workflow(
        {
            "route": {
                "switch": [
                    {"otherwise": {"then": "continue"}},
                    {"late": {"when": ".x", "then": "end"}},
                ]
            }
        },
        {"next": {"set": {"x": 0}}},
    )
    assert problems(data) == [
        "do[0].route.switch[1]: case 'late' is never evaluated: "
        "it follows the default case 'otherwise'"
    ]


# --- expressions ------------------------------------------------------------------------

BAD = "${ .a | }"
BAD_MESSAGE = "invalid jq expression: syntax error, unexpected end of file at line 1, column 4"


@pytest.mark.parametrize(
    ("task", "path"),
    [
        ({"if": BAD, "set": {"x": 1}}, "do[0].t.if"),
        ({"set": {"x": {"deep": [1, BAD]}}}, "do[0].t.set.x.deep[1]"),
        ({"set": BAD}, "do[0].t.set"),
        ({"set": {"x": 1}, "input": {"from": BAD}}, "do[0].t.input.from"),
        ({"set": {"x": 1}, "input": {"from": {"a": BAD}}}, "do[0].t.input.from.a"),
        ({"set": {"x": 1}, "output": {"as": BAD}}, "do[0].t.output.as"),
        ({"set": {"x": 1}, "export": {"as": BAD}}, "do[0].t.export.as"),
        ({"switch": [{"c": {"when": BAD, "then": "end"}}]}, "do[0].t.switch[0].when"),
        ({"for": {"in": BAD}, "do": [{"a": {"wait": "PT1S"}}]}, "do[0].t.for.in"),
        (
            {"for": {"in": ".xs"}, "while": BAD, "do": [{"a": {"wait": "PT1S"}}]},
            "do[0].t.while",
        ),
        (
            {"try": [{"a": {"wait": "PT1S"}}], "catch": {"when": BAD}},
            "do[0].t.catch.when",
        ),
        (
            {"try": [{"a": {"wait": "PT1S"}}], "catch": {"exceptWhen": BAD}},
            "do[0].t.catch.exceptWhen",
        ),
        (
            {"try": [{"a": {"wait": "PT1S"}}], "catch": {"retry": {"when": BAD}}},
            "do[0].t.catch.retry.when",
        ),
        (
            {"listen": {"to": {"any": [{"with": {"type": "x"}}], "until": BAD}}},
            "do[0].t.listen.to.until",
        ),
        (
            {"listen": {"to": {"one": {"with": {"type": "x"}, "correlate": {"k": {"from": BAD}}}}}},
            "do[0].t.listen.to.one.correlate.k.from",
        ),
        (
            {"call": "http", "with": {"method": "get", "endpoint": BAD}},
            "do[0].t.with.endpoint",
        ),
        (
            {"call": "http", "with": {"method": "get", "endpoint": {"uri": BAD}}},
            "do[0].t.with.endpoint.uri",
        ),
        (
            {
                "call": "http",
                "with": {"method": "get", "endpoint": "https://x.example", "query": {"q": BAD}},
            },
            "do[0].t.with.query.q",
        ),
        (
            {
                "call": "http",
                "with": {"method": "get", "endpoint": "https://x.example", "headers": {"h": BAD}},
            },
            "do[0].t.with.headers.h",
        ),
        (
            {
                "call": "http",
                "with": {"method": "post", "endpoint": "https://x.example", "body": {"b": [BAD]}},
            },
            "do[0].t.with.body.b[0]",
        ),
        (
            {
                "emit": {
                    "event": {"with": {"source": "https://x.example", "type": "t", "data": BAD}}
                }
            },
            "do[0].t.emit.event.with.data",
        ),
        (
            {"run": {"workflow": {"namespace": "a", "name": "b", "input": {"x": BAD}}}},
            "do[0].t.run.workflow.input.x",
        ),
        (
            {"raise": {"error": {"type": "https://x.example/e", "status": 400, "detail": BAD}}},
            "do[0].t.raise.error.detail",
        ),
    ],
)
def test_bad_jq_is_reported_where_it_appears(task: dict[str, Any], path: str) -> None:
    assert problems(workflow({"t": task})) == [f"{path}: {BAD_MESSAGE}"]


def test_plain_strings_in_value_fields_are_not_expressions() -> None:
    # Strict mode: only `${ }` strings are expressions in free-form values.
    data = workflow({"t": {"set": {"greeting": "hello .name | (", "n": ".a |"}}})
    assert problems(data) == []


def test_condition_fields_are_jq_with_or_without_wrapper() -> None:
    data = workflow({"t": {"if": ".a |", "set": {"x": 1}}})
    assert problems(data) == ["do[0].t.if: " + BAD_MESSAGE]


def test_loop_variables_are_in_scope_inside_the_loop_only() -> None:
    data = workflow(
        {
            "loop": {
                "for": {"each": "order", "at": "i", "in": ".orders"},
                "while": "$i < 10",
                "do": [{"use": {"set": {"id": "${ $order.id }", "n": "${ $i }"}}}],
            }
        },
        {"after": {"set": {"last": "${ $order.id }"}}},
    )
    assert problems(data) == [
        "do[1].after.set.last: invalid jq expression: $order is not defined at line 1, column 1"
    ]


def test_default_loop_variables() -> None:
    data = workflow(
        {"loop": {"for": {"in": ".xs"}, "do": [{"a": {"set": {"v": "${ [$item, $index] }"}}}]}}
    )
    assert problems(data) == []


def test_catch_variable_is_in_scope_in_catch_only() -> None:
    data = workflow(
        {
            "guarded": {
                "try": [{"call": {"set": {"x": "${ $failure }"}}}],
                "catch": {
                    "as": "failure",
                    "when": "$failure.status == 503",
                    "retry": {"when": "$failure.status >= 500"},
                    "do": [{"note": {"set": {"why": "${ $failure.title }"}}}],
                },
            }
        }
    )
    assert problems(data) == [
        "do[0].guarded.try[0].call.set.x: invalid jq expression: "
        "$failure is not defined at line 1, column 1"
    ]


def test_default_catch_variable_is_error() -> None:
    data = workflow(
        {"g": {"try": [{"a": {"wait": "PT1S"}}], "catch": {"when": "$error.status == 404"}}}
    )
    assert problems(data) == []


@pytest.mark.parametrize(
    ("task", "expected"),
    [
        (
            {"for": {"each": "my-item", "in": ".xs"}, "do": [{"a": {"wait": "PT1S"}}]},
            "do[0].t.for.each: 'my-item' is not a valid variable name "
            "(letters, digits and '_', not starting with a digit or '__')",
        ),
        (
            {"try": [{"a": {"wait": "PT1S"}}], "catch": {"as": "1err"}},
            "do[0].t.catch.as: '1err' is not a valid variable name "
            "(letters, digits and '_', not starting with a digit or '__')",
        ),
    ],
)
def test_variable_names_must_be_jq_identifiers(task: dict[str, Any], expected: str) -> None:
    assert problems(workflow({"t": task})) == [expected]


# --- durations --------------------------------------------------------------------------


def test_bad_durations_everywhere() -> None:
    data = workflow(
        {"pause": {"wait": "5 minutes"}},
        {"later": {"set": {"x": 1}, "timeout": {"after": {"minutes": -1}}}},
        {
            "g": {
                "try": [{"a": {"wait": "PT1S"}}],
                "catch": {"retry": {"delay": "P1M", "limit": {"attempt": {"duration": "PTX"}}}},
            }
        },
        timeout={"after": "P"},
        schedule={"every": "daily"},
    )
    assert problems(data) == [
        "do[0].pause.wait: invalid ISO 8601 duration '5 minutes': "
        "expected a form like 'PT30S', 'PT5M' or 'P1DT2H'",
        "do[1].later.timeout.after.minutes: input should be greater than or equal to 0",
        "do[2].g.catch.retry.delay: invalid duration 'P1M': "
        "years and months have no fixed length; use days or weeks",
        "do[2].g.catch.retry.limit.attempt.duration: invalid ISO 8601 duration 'PTX': "
        "expected a form like 'PT30S', 'PT5M' or 'P1DT2H'",
        "timeout.after: invalid ISO 8601 duration 'P': "
        "expected a form like 'PT30S', 'PT5M' or 'P1DT2H'",
        "schedule.every: invalid ISO 8601 duration 'daily': "
        "expected a form like 'PT30S', 'PT5M' or 'P1DT2H'",
        "schedule.every: 'schedule.every' in the document is not run: schedule the "
        "WorkflowDefinition with spec.schedule (cron) instead",
    ]


# --- unsupported features ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("task", "expected"),
    [
        (
            {"call": "grpc", "with": {"proto": {}, "service": {}, "method": "m"}},
            "do[0].x.call: 'grpc' calls are not supported yet",
        ),
        (
            {"call": "asyncapi", "with": {"document": {}}},
            "do[0].x.call: 'asyncapi' calls are not supported yet",
        ),
        ({"call": "a2a", "with": {}}, "do[0].x.call: 'a2a' calls are not supported yet"),
        ({"call": "mcp", "with": {}}, "do[0].x.call: 'mcp' calls are not supported yet"),
        (
            {"call": "send:1.0.0@myCatalog"},
            "do[0].x.call: cataloged functions (name:version@catalog, or a function "
            "definition's URI) are not supported yet; define the function in use.functions",
        ),
        (
            {"run": {"container": {"image": "busybox"}}},
            "do[0].x.run.container: 'run: container' is not supported yet",
        ),
        (
            {"run": {"script": {"language": "js", "code": "1"}}},
            "do[0].x.run.script: 'run: script' is not supported yet",
        ),
        (
            {"run": {"shell": {"command": "ls"}}},
            "do[0].x.run.shell: 'run: shell' is not supported yet",
        ),
        (
            {"run": {"workflow": {"namespace": "a", "name": "b"}, "return": "stdout"}},
            "do[0].x.run.return: 'return' only applies to container, script and shell processes",
        ),
        (
            {"listen": {"to": {"one": {"with": {"type": "t"}}}, "read": "raw"}},
            "do[0].x.listen.read: 'read: raw' is not supported yet; use 'data' or 'envelope'",
        ),
        (
            {"listen": {"to": {"one": {"with": {"type": "t"}}}}, "foreach": {"do": []}},
            "do[0].x.foreach: "
            "'listen.foreach' is not supported yet; follow the listen with a 'for' task",
        ),
        (
            {"set": {"x": 1}, "input": {"schema": {"format": "avro", "document": {}}}},
            "do[0].x.input.schema.format: only 'json' schemas are supported",
        ),
        (
            {
                "set": {"x": 1},
                "output": {"schema": {"resource": {"endpoint": "https://x.example/s.json"}}},
            },
            "do[0].x.output.schema.resource: "
            "external schema resources are not supported yet; inline the schema as 'document'",
        ),
        (
            {
                "call": "http",
                "with": {
                    "method": "get",
                    "endpoint": {
                        "uri": "https://x.example",
                        "authentication": {"oauth2": {"authority": "https://a"}},
                    },
                },
            },
            "do[0].x.with.endpoint.authentication.oauth2: "
            "'oauth2' authentication is not supported yet",
        ),
    ],
)
def test_unsupported_task_features_are_named(task: dict[str, Any], expected: str) -> None:
    assert problems(workflow({"x": task})) == [expected]


def test_unsupported_document_features_are_named() -> None:
    data = workflow(
        {"x": {"set": {"a": 1}}},
        schedule={"on": {"one": {"with": {"type": "order.placed"}}}},
        use={
            "extensions": [{"log": {"extend": "all"}}],
            "catalogs": {"shared": {"endpoint": "https://catalog.example.com"}},
            "authentications": {
                "d": {"digest": {"username": "u", "password": "p"}},
                "o": {"oidc": {"authority": "https://id.example.com"}},
                "c": {"certificate": {}},
            },
        },
    )
    data["document"]["dsl"] = "0.8.0"
    assert problems(data) == [
        "document.dsl: this engine runs Serverless Workflow 1.0.x documents only",
        "schedule.on: event-triggered schedules are not supported: "
        "start this workflow from an EventRoute",
        "use.extensions: extensions are not supported yet",
        "use.catalogs: catalogs are not supported yet",
        "use.authentications.d.digest: 'digest' authentication is not supported yet",
        "use.authentications.o.oidc: 'oidc' authentication is not supported yet",
        "use.authentications.c.certificate: 'certificate' authentication is not supported yet",
    ]


def test_document_schedules_are_refused_with_where_to_schedule_instead() -> None:
    # Runs are scheduled by the WorkflowDefinition's spec.schedule; a document-level
    # schedule would otherwise be accepted and silently never fire.
    assert problems(
        workflow({"x": {"set": {"a": 1}}}, schedule={"cron": "0 * * * *", "every": "PT15M"})
    ) == [
        "schedule.every: 'schedule.every' in the document is not run: schedule the "
        "WorkflowDefinition with spec.schedule (cron) instead",
        "schedule.cron: 'schedule.cron' in the document is not run: move it to the "
        "WorkflowDefinition's spec.schedule.cron",
    ]


# --- references -------------------------------------------------------------------------


def test_undefined_references() -> None:
    data = workflow(
        {"fail": {"if": ".bad", "raise": {"error": "notDefined"}}},
        {"fn": {"call": "missingFunction", "with": {"a": 1}}},
        {"wait": {"wait": "PT1S", "timeout": "slow"}},
        {
            "g": {
                "try": [{"a": {"wait": "PT1S"}}],
                "catch": {"retry": "stubborn"},
            }
        },
        {
            "h": {
                "call": "http",
                "with": {
                    "method": "get",
                    "endpoint": {"uri": "https://x.example", "authentication": {"use": "vault"}},
                    "headers": {"Authorization": '${ "Bearer " + $secret.tokn }'},
                },
            }
        },
        {
            "b": {
                "call": "http",
                "with": {
                    "method": "get",
                    "endpoint": {
                        "uri": "https://x.example",
                        "authentication": {"basic": {"use": "creds"}},
                    },
                },
            }
        },
        timeout="forever",
        use={"secrets": ["token"]},
    )
    assert [str(i) for i in validate_document(data, catalog=["charge-payment"])] == [
        "timeout: no timeout named 'forever' in use.timeouts",
        "do[0].fail.raise.error: no error named 'notDefined' in use.errors",
        "do[1].fn.call: no function named 'missingFunction' in use.functions or the worker's "
        "catalog (registered: charge-payment)",
        "do[2].wait.timeout: no timeout named 'slow' in use.timeouts",
        "do[3].g.catch.retry: no retry policy named 'stubborn' in use.retries",
        "do[4].h.with.endpoint.authentication.use: "
        "no authentication named 'vault' in use.authentications",
        "do[4].h.with.headers.Authorization: no secret named 'tokn' in use.secrets",
        "do[5].b.with.endpoint.authentication.basic.use: no secret named 'creds' in use.secrets",
    ]


def test_defined_references_resolve() -> None:
    data = workflow(
        {"fail": {"if": ".bad", "raise": {"error": "broken"}}},
        {"fn": {"call": "greet", "with": {"name": "${ .name }"}}},
        {"w": {"wait": "PT1S", "timeout": "quick"}},
        {"g": {"try": [{"a": {"wait": "PT1S"}}], "catch": {"retry": "twice"}}},
        {
            "h": {
                "call": "http",
                "with": {
                    "method": "get",
                    "endpoint": {"uri": "https://x.example", "authentication": {"use": "api"}},
                    "headers": {"X-Token": "${ $secret.token }"},
                },
            }
        },
        use={
            "errors": {"broken": {"type": "https://x.example/broken", "status": 500}},
            "functions": {"greet": {"set": {"greeting": '${ "hi " + .name }'}}},
            "timeouts": {"quick": {"after": "PT5S"}},
            "retries": {
                "twice": {"limit": {"attempt": {"count": 2}}, "when": "$error.status >= 500"}
            },
            "authentications": {"api": {"bearer": {"use": "token"}}},
            "secrets": ["token"],
        },
    )
    assert problems(data) == []


def test_reusable_functions_are_validated_too() -> None:
    data = workflow(
        {"fn": {"call": "broken"}},
        use={
            "functions": {
                "broken": {"call": "grpc", "with": {"proto": {}, "service": {}, "method": "m"}}
            }
        },
    )
    assert problems(data) == ["use.functions.broken.call: 'grpc' calls are not supported yet"]


# --- everything at once -----------------------------------------------------------------


def test_multiple_errors_are_reported_together() -> None:
    data = {
        "document": {"dsl": "1.0.0", "namespace": "shop", "name": "order", "version": "1.0.0"},
        "use": {"errors": {"outOfStock": {"type": "https://shop.example.com/oos", "status": 409}}},
        "do": [
            {"receive": {"listen": {"to": {"one": {"with": {"type": "order.placed"}}}}}},
            {"check": {"swich": []}},
            {
                "checkStock": {
                    "switch": [
                        {"inStock": {"when": "${ .stock > 0 }", "then": "ship"}},
                        {"empty": {"when": ".stock == 0", "then": "shipp"}},
                    ],
                    "then": "end",
                }
            },
            {"orphan": {"set": {"note": "${ .a | }"}}},
            {"ship": {"call": "grpc", "with": {"proto": {}, "service": {}, "method": "Ship"}}},
            {"pause": {"wait": "PT5X"}},
            {"fail": {"raise": {"error": "outOfStok"}}},
        ],
    }
    assert problems(data) == [
        "do[1].check: unknown task kind 'swich' (did you mean 'switch'?)",
        "do[5].pause.wait: invalid ISO 8601 duration 'PT5X': "
        "expected a form like 'PT30S', 'PT5M' or 'P1DT2H'",
        "do[2].checkStock.switch[1].then: no task named 'shipp'",
        "do[3].orphan: unreachable task: no transition leads here",
        "do[3].orphan.set.note: " + BAD_MESSAGE,
        "do[4].ship.call: 'grpc' calls are not supported yet",
        "do[6].fail.raise.error: no error named 'outOfStok' in use.errors",
    ]


def test_load_validated_document() -> None:
    doc = load_validated_document(workflow({"a": {"set": {"x": 1}}}))
    assert isinstance(doc, WorkflowDocument)
    with pytest.raises(DocumentError) as caught:
        load_validated_document(workflow({"a": {"call": "mcp", "with": {}}}))
    assert [str(issue) for issue in caught.value.issues] == [
        "do[0].a.call: 'mcp' calls are not supported yet"
    ]


def test_typos_in_nested_models_get_hints_from_that_model() -> None:
    data = workflow(
        {"l": {"listen": {"to": {"one": {"wth": {"type": "t"}}}}}},
        {
            "g": {
                "try": [{"a": {"wait": "PT1S"}}],
                "catch": {"exceptwhen": ".x", "retry": {"limit": {"atempt": {"count": 1}}}},
            }
        },
    )
    assert problems(data) == [
        "do[0].l.listen.to.one: missing required field 'with'",
        "do[0].l.listen.to.one: unknown field 'wth' (did you mean 'with'?)",
        "do[1].g.catch.retry.limit: unknown field 'atempt' (did you mean 'attempt'?)",
        "do[1].g.catch: unknown field 'exceptwhen' (did you mean 'exceptWhen'?)",
    ]


def test_custom_functions_are_checked_only_against_a_known_catalog() -> None:
    data = workflow({"pay": {"call": "charge-payment", "with": {"amount": 1}}})
    # Offline, the catalog the workers register is not known: any name may be called.
    assert problems(data) == []
    assert [str(i) for i in validate_document(data, catalog=["charge-payment"])] == []
    assert [str(i) for i in validate_document(data, catalog=[])] == [
        "do[0].pay.call: no function named 'charge-payment' in use.functions or the "
        "worker's catalog (registered: none)"
    ]
