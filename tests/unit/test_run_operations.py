"""The run operations' pure parts: the namespace rule's visibility clause, run ids from
keys, the input.schema check, the visibility query's filters, page tokens, and the one
summary and status spelling every front end shows."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import cast

import pytest
from temporalio.client import WorkflowExecution, WorkflowExecutionStatus
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from tflow_workers import run_operations as ops
from tflow_workers.engine.model import SA_CURRENT_TASK, SA_DEFINITION, SA_EVENT_TYPE, SA_NAMESPACE


def test_the_namespace_rule_keeps_listings_inside_it() -> None:
    assert ops.NamespaceRule.only("shop").clause() == 'TflowNamespace IN ("shop")'
    assert ops.NamespaceRule(["b", "a"]).clause() == 'TflowNamespace IN ("a", "b")'
    assert ops.NamespaceRule.everywhere().clause() is None
    assert ops.NamespaceRule(()).clause() == 'TflowNamespace = ""'
    assert ops.allowed(["*"]).reaches("anything")
    rule = ops.allowed(["shop"])
    assert rule.reaches("shop")
    assert not rule.reaches("ops")
    assert not rule.reaches(None)  # an ad-hoc run belongs to no namespace


def test_run_ids_carry_namespace_and_definition() -> None:
    assert ops.run_id_for("shop", "order", "A-1") == "shop:order:A-1"
    fresh = ops.run_id_for("shop", "order")
    assert fresh.startswith("shop:order:")
    assert fresh != ops.run_id_for("shop", "order")
    for bad in ("", "with space", "a:b", "-leading", "x" * 129, 'quote"'):
        with pytest.raises(ops.RunRefused) as refused:
            ops.run_id_for("shop", "order", bad)
        assert (refused.value.status, refused.value.reason) == (400, "invalid-workflow-id")


def test_input_schema_names_the_pointer() -> None:
    document = {
        "input": {
            "schema": {
                "format": "json",
                "document": {
                    "type": "object",
                    "required": ["id"],
                    "properties": {"id": {"type": "string"}, "n": {"type": "integer"}},
                },
            }
        }
    }
    ops.check_input(document, {"id": "a", "n": 1})
    ops.check_input({"do": []}, 42)  # no schema: anything goes
    with pytest.raises(ops.RunRefused) as refused:
        ops.check_input(document, {"id": 1, "n": "x"})
    assert refused.value.status == 400
    assert "/id: 1 is not of type 'string'" in refused.value.detail
    assert "/n: 'x' is not of type 'integer'" in refused.value.detail


def test_list_query_filters_and_refuses_what_could_change_it() -> None:
    query = ops.list_query(ops.NamespaceRule.only("shop"), "shop/order", "cancelled")
    assert query == (
        'WorkflowType = "ServerlessWorkflow" AND TflowNamespace IN ("shop") AND '
        'TflowDefinition = "shop/order" AND ExecutionStatus = "Canceled"'
    )
    with pytest.raises(ops.RunRefused, match="quotes"):
        ops.list_query(ops.NamespaceRule.everywhere(), 'x" OR "1"="1', None)
    with pytest.raises(ops.RunRefused, match="status 'sleeping'"):
        ops.list_query(ops.NamespaceRule.everywhere(), None, "sleeping")


def test_one_status_spelling_for_every_front_end() -> None:
    names = {status: ops.status_name(status) for status in WorkflowExecutionStatus}
    assert names[WorkflowExecutionStatus.CANCELED] == "cancelled"
    assert names[WorkflowExecutionStatus.TIMED_OUT] == "timedout"
    assert names[WorkflowExecutionStatus.CONTINUED_AS_NEW] == "continuedasnew"
    # Every name a run shows is one a listing filters on (PAUSED aside: no flow run pauses).
    shown = set(names.values()) - {"paused"}
    assert shown == set(ops.STATUSES)
    assert ops.status_name(None) == "unknown"


def test_a_listed_run_is_summarised_from_its_search_attributes() -> None:
    started = datetime(2025, 1, 1, tzinfo=UTC)
    listed = SimpleNamespace(
        id="shop:order:A-1",
        run_id="r1",
        status=WorkflowExecutionStatus.CANCELED,
        start_time=started,
        close_time=None,
        typed_search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(SA_DEFINITION, "shop/order"),
                SearchAttributePair(SA_NAMESPACE, "shop"),
                SearchAttributePair(SA_CURRENT_TASK, "review"),
                SearchAttributePair(SA_EVENT_TYPE, "order.created"),
            ]
        ),
    )
    summary = ops.run_summary(cast(WorkflowExecution, listed))
    assert summary.model_dump(by_alias=True, exclude_none=True) == {
        "workflowId": "shop:order:A-1",
        "runId": "r1",
        "definition": "shop/order",
        "namespace": "shop",
        "status": "cancelled",
        "currentTask": "review",
        "eventType": "order.created",
        "started": started,
    }
