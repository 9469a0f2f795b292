"""Loading documents into typed models; structural errors come back all at once, with paths."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tflow_workers.dsl.issues import DocumentError, Issue
from tflow_workers.dsl.models import (
    AnyEventConsumptionStrategy,
    AuthenticationPolicy,
    AuthenticationPolicyReference,
    CallFunction,
    CallGRPC,
    CallHTTP,
    DoTask,
    DurationInline,
    EmitTask,
    EndpointConfiguration,
    ForkTask,
    ForTask,
    ListenTask,
    OneEventConsumptionStrategy,
    RaiseTask,
    RunContainer,
    RunTask,
    RunWorkflow,
    SecretReference,
    SetTask,
    SwitchTask,
    Timeout,
    TryTask,
    WaitTask,
    WorkflowDocument,
    load_document,
    named_tasks,
    to_timedelta,
)
from tflow_workers.dsl.yamlio import load_yaml

DOCUMENTS = Path(__file__).parent / "documents"
HEADER = {"dsl": "1.0.0", "namespace": "test", "name": "flow", "version": "1.0.0"}


def read(name: str) -> dict[str, Any]:
    data: dict[str, Any] = load_yaml((DOCUMENTS / name).read_text())
    return data


def workflow(*tasks: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"document": dict(HEADER), "do": list(tasks), **extra}


def load_issues(data: dict[str, Any]) -> list[str]:
    with pytest.raises(DocumentError) as caught:
        load_document(data)
    return [str(issue) for issue in caught.value.issues]


def test_order_flow_loads_into_typed_tasks() -> None:
    doc = load_document(read("order-fulfilment.yaml"))
    assert doc.document.name == "order-fulfilment"
    assert doc.document.tags == {"team": "checkout"}
    assert isinstance(doc.timeout, Timeout)
    assert to_timedelta(doc.timeout.after) == timedelta(days=7)
    assert doc.input is not None
    assert doc.input.schema_ is not None
    assert doc.input.schema_.document == {"type": "object", "required": ["orderId", "items"]}

    tasks = dict(named_tasks(doc.do))
    assert list(tasks) == ["awaitPayment", "checkStock", "route", "reject", "fulfil", "confirm"]

    listen = tasks["awaitPayment"]
    assert isinstance(listen, ListenTask)
    assert listen.listen.read == "data"
    strategy = listen.listen.to
    assert isinstance(strategy, OneEventConsumptionStrategy)
    assert strategy.one.with_.type == "com.shop.payment.received"
    assert strategy.one.correlate is not None
    assert strategy.one.correlate["orderId"].from_ == "${ .data.orderId }"
    assert isinstance(listen.timeout, Timeout)
    assert to_timedelta(listen.timeout.after) == timedelta(minutes=30)
    assert listen.export is not None
    assert listen.export.as_ == "${ $context + { payment: .data } }"

    call = tasks["checkStock"]
    assert isinstance(call, CallHTTP)
    assert call.with_.method == "get"
    assert call.with_.output == "content"
    assert call.output is not None
    assert call.output.as_ == ".available"

    switch = tasks["route"]
    assert isinstance(switch, SwitchTask)
    assert [(case.name, case.when, case.then, case.is_default) for case in switch.switch] == [
        ("inStock", "${ . == true }", "fulfil", False),
        ("otherwise", None, "reject", True),
    ]

    reject = tasks["reject"]
    assert isinstance(reject, RaiseTask)
    assert reject.raise_.error == "outOfStock"

    fork = tasks["fulfil"]
    assert isinstance(fork, ForkTask)
    assert fork.fork.compete is False
    branches = dict(named_tasks(fork.fork.branches))
    charge = branches["charge"]
    assert isinstance(charge, TryTask)
    assert charge.catch.retry == "transient"
    assert charge.catch.errors is not None
    assert charge.catch.errors.with_ is not None
    assert charge.catch.errors.with_.status == 503
    capture = dict(named_tasks(charge.try_))["capture"]
    assert isinstance(capture, CallHTTP)
    assert capture.with_.method == "post"
    endpoint = capture.with_.endpoint
    assert isinstance(endpoint, EndpointConfiguration)
    assert isinstance(endpoint.authentication, AuthenticationPolicyReference)
    assert endpoint.authentication.use == "payments"
    assert capture.with_.headers == {"Idempotency-Key": '${ $workflow.id + "-capture" }'}

    ship = branches["ship"]
    assert isinstance(ship, RunTask)
    assert isinstance(ship.run, RunWorkflow)
    assert ship.run.await_ is True
    assert (ship.run.workflow.namespace, ship.run.workflow.name) == ("shop", "shipping")
    assert ship.run.workflow.version == "1.0.0"
    assert ship.run.workflow.input == {
        "orderId": "${ $input.orderId }",
        "items": "${ $input.items }",
    }

    emit = tasks["confirm"]
    assert isinstance(emit, EmitTask)
    assert emit.emit.event.with_.type == "com.shop.order.fulfilled"
    assert emit.emit.event.with_.data == {"orderId": "${ $input.orderId }"}

    assert doc.use is not None
    assert doc.use.secrets == ["paymentsApiToken"]
    assert doc.use.errors is not None
    assert doc.use.errors["outOfStock"].status == 409
    policy = doc.use.authentications["payments"] if doc.use.authentications else None
    assert isinstance(policy, AuthenticationPolicy)
    assert policy.scheme == "bearer"
    assert isinstance(policy.bearer, SecretReference)
    retry = doc.use.retries["transient"] if doc.use.retries else None
    assert retry is not None
    assert retry.backoff is not None
    assert retry.backoff.kind == "exponential"
    assert retry.limit is not None
    assert retry.limit.attempt is not None
    assert retry.limit.attempt.count == 5
    assert retry.limit.duration is not None
    assert to_timedelta(retry.limit.duration) == timedelta(minutes=5)
    assert retry.delay is not None
    assert to_timedelta(retry.delay) == timedelta(seconds=2)
    assert retry.jitter is not None
    assert to_timedelta(retry.jitter.from_) == timedelta(milliseconds=100)
    assert to_timedelta(retry.jitter.to) == timedelta(seconds=1)


def test_incident_flow_loads_http_calls_and_functions() -> None:
    doc = load_document(read("incident-response.yaml"))
    tasks = dict(named_tasks(doc.do))

    classify = tasks["classify"]
    assert isinstance(classify, SetTask)
    assert isinstance(classify.set, dict)
    assert set(classify.set) == {"id", "title", "severity"}

    page = tasks["openPage"]
    assert isinstance(page, CallHTTP)
    args = page.with_
    assert args.output == "response"
    assert args.query == {"urgency": "${ .severity }"}
    assert args.body == {"title": "${ .title }", "dedupKey": "${ .id }"}
    assert isinstance(args.endpoint, EndpointConfiguration)
    assert args.endpoint.uri == "https://pager.example.com/api/v2/incidents"
    inline = args.endpoint.authentication
    assert isinstance(inline, AuthenticationPolicy)
    assert inline.scheme == "bearer"
    assert isinstance(inline.bearer, SecretReference)
    assert inline.bearer.use == "pagerToken"

    notify = tasks["notify"]
    assert isinstance(notify, CallFunction)
    assert notify.call == "notifyChat"
    assert notify.if_ == '${ $context.severity == "high" }'
    assert notify.with_ == {
        "id": "${ $input.id }",
        "title": "${ $input.title }",
        "severity": "high",
    }
    assert doc.use is not None
    assert doc.use.functions is not None
    assert isinstance(doc.use.functions["notifyChat"], CallHTTP)

    ack = tasks["awaitAck"]
    assert isinstance(ack, ListenTask)
    assert ack.listen.read == "envelope"
    assert isinstance(ack.listen.to, AnyEventConsumptionStrategy)
    assert [f.with_.type for f in ack.listen.to.any] == [
        "com.pager.incident.acknowledged",
        "com.pager.incident.resolved",
    ]
    assert ack.listen.to.until == '${ .type == "com.pager.incident.resolved" }'
    assert isinstance(ack.timeout, Timeout)
    assert isinstance(ack.timeout.after, DurationInline)
    assert to_timedelta(ack.timeout.after) == timedelta(hours=1)


def test_loop_wait_and_nested_do() -> None:
    doc = load_document(read("batch-for.yaml"))
    loop = named_tasks(doc.do)[0][1]
    assert isinstance(loop, ForTask)
    assert (loop.for_.each, loop.for_.in_, loop.for_.at) == ("invoice", ".invoices", "position")
    assert loop.while_ == "$position < 100 and $context.failed < 5"
    send = named_tasks(loop.do)[0][1]
    assert isinstance(send, TryTask)
    assert (send.catch.as_, send.catch.when, send.catch.except_when) == (
        "failure",
        "$failure.status >= 500",
        "$failure.status == 507",
    )

    race = dict(named_tasks(load_document(read("approval-race.yaml")).do))["race"]
    assert isinstance(race, ForkTask)
    assert race.fork.compete is True
    expired = dict(named_tasks(race.fork.branches))["expired"]
    assert isinstance(expired, DoTask)
    sleep = named_tasks(expired.do)[0][1]
    assert isinstance(sleep, WaitTask)
    assert to_timedelta(sleep.wait) == timedelta(days=2)


def test_for_defaults() -> None:
    doc = load_document(workflow({"loop": {"for": {"in": ".xs"}, "do": [{"a": {"wait": "PT1S"}}]}}))
    loop = named_tasks(doc.do)[0][1]
    assert isinstance(loop, ForTask)
    assert (loop.for_.each, loop.for_.at) == ("item", "index")


def test_unsupported_features_still_load() -> None:
    # Rejecting these is validate_document's job, with a message naming the feature.
    doc = load_document(
        workflow(
            {"g": {"call": "grpc", "with": {"proto": {}, "service": {}, "method": "Hi"}}},
            {"c": {"run": {"container": {"image": "busybox", "command": "true"}}}},
        )
    )
    kinds = [type(task) for _, task in named_tasks(doc.do)]
    assert kinds == [CallGRPC, RunTask]
    run = named_tasks(doc.do)[1][1]
    assert isinstance(run, RunTask)
    assert isinstance(run.run, RunContainer)


def test_round_trip_keeps_the_document() -> None:
    data = read("order-fulfilment.yaml")
    assert load_document(data).model_dump(exclude_unset=True) == data


def test_model_validate_accepts_model_instances() -> None:
    doc = load_document(read("inventory-poll.yaml"))
    again = WorkflowDocument.model_validate(doc.model_dump(exclude_unset=True))
    assert again == doc


def test_a_typo_in_a_task_kind_is_an_error() -> None:
    assert load_issues(workflow({"check": {"swich": [], "then": "end"}})) == [
        "do[0].check: unknown task kind 'swich' (did you mean 'switch'?)"
    ]


def test_a_typo_in_a_field_is_an_error() -> None:
    assert load_issues(workflow({"a": {"set": {"x": 1}, "thn": "end"}})) == [
        "do[0].a: unknown field 'thn' (did you mean 'then'?)"
    ]


def test_structural_errors_are_reported_together() -> None:
    data = {
        "document": {"dsl": "1.0", "namespace": "Bad_Namespace", "name": "ok", "version": "1"},
        "do": [
            {"a": {"wait": "PT5X"}},
            {"b": {"wait": {"secs": 5}}},
            {"c": {"call": "http", "with": {"method": "gett", "endpoint": "/relative"}}},
            {"d": {"set": {"a": 1}, "call": "x"}},
            {"e": {"switch": [{"x": {"when": ".a"}}]}},
            {"f": {"raise": {"error": {"type": "https://x.example/e"}}}},
            {"g": {"listen": {"to": {"any": [], "one": {"with": {}}}}}},
            {"h": {"run": {"shell": {"command": "ls"}, "workflow": {}}}},
            {"i": {"set": "not an expression"}},
            {"j": {"try": [], "catch": {"retry": {"backoff": {}}}}},
            "not a task",
            {"k": 5, "l": 6},
        ],
        "schedule": {},
    }
    assert load_issues(data) == [
        "document.dsl: '1.0' is not a semantic version (e.g. '1.0.0')",
        "document.namespace: 'Bad_Namespace' must be 1-63 letters, digits or '-', "
        "starting and ending with a letter or digit",
        "document.version: '1' is not a semantic version (e.g. '1.0.0')",
        "do[0].a.wait: invalid ISO 8601 duration 'PT5X': "
        "expected a form like 'PT30S', 'PT5M' or 'P1DT2H'",
        "do[1].b.wait: unknown field 'secs' (did you mean 'seconds'?)",
        "do[2].c.with.method: unknown HTTP method 'gett' "
        "(expected one of DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT)",
        "do[2].c.with.endpoint: '/relative' is neither an absolute URI nor a runtime expression",
        "do[3].d: a task has exactly one kind, but this one sets 'call' and 'set'",
        "do[4].e.switch[0]: missing required field 'then'",
        "do[5].f.raise.error: missing required field 'status'",
        "do[6].g.listen.to: an event consumption strategy must set exactly one of all, any, one "
        "(found 'any' and 'one')",
        "do[7].h.run: run must set exactly one of container, script, shell, workflow "
        "(found 'shell' and 'workflow')",
        "do[8].i.set: 'not an expression' must be a mapping or a runtime expression '${ ... }'",
        "do[9].j.catch.retry.backoff: a backoff sets exactly one of constant, linear, exponential",
        "do[10]: a task list entry must be a single-key map taskName: task",
        "do[11]: a task list entry must be a single-key map taskName: task; got 2 keys",
        "schedule: a schedule sets at least one of every, cron, after, on",
    ]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({}, ["(root): missing required field 'document'", "(root): missing required field 'do'"]),
        (
            {"document": HEADER, "do": [{"a": {"wait": 5}}]},
            [
                "do[0].a.wait: expected an ISO 8601 duration (e.g. 'PT30S') "
                "or an inline duration mapping"
            ],
        ),
        (
            {"document": HEADER, "do": [{"a": {"call": "http", "with": {"method": 1}}}]},
            [
                "do[0].a.with.method: expected a string, got a number",
                "do[0].a.with: missing required field 'endpoint'",
            ],
        ),
        (
            {
                "document": HEADER,
                "do": [
                    {
                        "a": {
                            "call": "http",
                            "with": {
                                "method": "get",
                                "endpoint": "https://x.example",
                                "output": "json",
                            },
                        }
                    }
                ],
            },
            ["do[0].a.with.output: expected 'raw', 'content' or 'response', got 'json'"],
        ),
        (
            {"document": HEADER, "do": [{"a": {"switch": []}}]},
            ["do[0].a.switch: expected at least 1 item(s)"],
        ),
        (
            {"document": HEADER, "do": [{"a": {"wait": {}}}]},
            [
                "do[0].a.wait: an inline duration sets at least one of days, hours, minutes, "
                "seconds, milliseconds"
            ],
        ),
        (
            {"document": HEADER, "do": [{"a": {"fork": {"branches": [], "compete": "yes"}}}]},
            ["do[0].a.fork.compete: expected a boolean, got a string"],
        ),
        (
            {"document": HEADER, "do": "not a list"},
            ["do: expected a list, got a string"],
        ),
    ],
)
def test_structural_error_messages(data: dict[str, Any], expected: list[str]) -> None:
    assert load_issues(data) == expected


def test_non_mapping_document() -> None:
    bad: Any = ["not", "a", "mapping"]
    with pytest.raises(DocumentError) as caught:
        load_document(bad)
    assert caught.value.issues == (Issue("(root)", "a workflow document must be a mapping"),)


def test_document_error_message_lists_every_issue() -> None:
    error = DocumentError([Issue("do[0].a", "one"), Issue("do[1].b", "two")])
    assert str(error) == "invalid workflow document (2 problem(s)):\n  do[0].a: one\n  do[1].b: two"


def test_task_names_with_dots_are_quoted_in_paths() -> None:
    assert load_issues(workflow({"send.mail": {"wait": "bad"}})) == [
        "do[0].\"send.mail\".wait: invalid ISO 8601 duration 'bad': "
        "expected a form like 'PT30S', 'PT5M' or 'P1DT2H'"
    ]
