"""The run operations' pure parts: the namespace rule's visibility clause, run ids from
keys, the input.schema check, the visibility query's filters, page tokens."""

from __future__ import annotations

import pytest

from tflow_workers import run_operations as ops


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
