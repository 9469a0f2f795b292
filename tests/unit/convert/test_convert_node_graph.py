"""The Flov7 node/edge graph converter: node types, parallel ranks as forks, cycles and
malformed graphs."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from tflow_workers.convert import ConversionError, convert_node_graph
from tflow_workers.dsl.yamlio import load_yaml

INPUTS = Path(__file__).parent / "inputs"


def _load(name: str) -> dict[str, Any]:
    data = load_yaml((INPUTS / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _graph(nodes: list[dict[str, Any]], edges: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "nodes": nodes,
        "edges": [{"source": source, "target": target} for source, target in edges],
    }


def _node(node_id: str, node_type: str = "database", **data: Any) -> dict[str, Any]:
    return {"id": node_id, "type": node_type, "data": data}


def test_seed_graph_becomes_an_http_call_then_a_set() -> None:
    document = convert_node_graph(_load("flov7-graph.json"))
    assert document == {
        "document": {
            "dsl": "1.0.0",
            "namespace": "default",
            "name": "test-workflow",
            "version": "1.0.0",
            "title": "Test Workflow",
            "tags": {"converted-from": "node-graph"},
        },
        "do": [
            {
                "node-1": {
                    "call": "http",
                    "with": {"method": "get", "endpoint": "https://api.example.com/data"},
                }
            },
            {"node-2": {"set": {"result": "${ .data }"}}},
        ],
    }


def test_diamond_forks_the_middle_nodes_between_first_and_last() -> None:
    document = convert_node_graph(_load("diamond.graph.json"))
    assert [next(iter(entry)) for entry in document["do"]] == ["A", "parallel_1", "D"]
    fork = document["do"][1]["parallel_1"]["fork"]
    assert "compete" not in fork
    assert fork["branches"] == [
        {"B": {"call": "ai_agent", "with": {"agent_type": "summarizer", "prompt": "Summarise"}}},
        {
            "C": {
                "call": "database",
                "with": {
                    "operation": "select",
                    "table": "orders",
                    "query": "select * from orders",
                },
            }
        },
    ]
    assert document["do"][0]["A"] == {
        "call": "http",
        "with": {
            "method": "get",
            "endpoint": "https://api.example.com/orders/{id}",
            "headers": {"Accept": "application/json"},
        },
    }
    # A webhook is an HTTP POST of its payload.
    assert document["do"][2]["D"] == {
        "call": "http",
        "with": {
            "method": "post",
            "endpoint": "https://hooks.example.com/done",
            "body": {"status": "done"},
        },
    }


def test_nodes_rank_by_their_longest_dependency_chain() -> None:
    # a -> b -> d, c -> d, e alone: rank 0 {a, c, e}, rank 1 {b}, rank 2 {d}.
    data = _graph(
        [_node(n) for n in "abcde"],
        [("a", "b"), ("b", "d"), ("c", "d")],
    )
    document = convert_node_graph(data, name="ranks")
    assert [next(iter(entry)) for entry in document["do"]] == ["parallel_1", "b", "d"]
    branches = document["do"][0]["parallel_1"]["fork"]["branches"]
    assert [next(iter(branch)) for branch in branches] == ["a", "c", "e"]


def test_fork_names_avoid_node_ids() -> None:
    data = _graph([_node("parallel_1"), _node("x"), _node("y")], [("parallel_1", "x")])
    document = convert_node_graph(data)
    assert [next(iter(entry)) for entry in document["do"]] == ["parallel_1_2", "x"]


def test_edges_may_be_missing_or_repeated() -> None:
    one = convert_node_graph({"nodes": [_node("a")]})
    assert one["do"] == [{"a": {"call": "database"}}]
    twice = _graph([_node("a"), _node("b")], [("a", "b"), ("a", "b")])
    assert [next(iter(entry)) for entry in convert_node_graph(twice)["do"]] == ["a", "b"]


def test_other_node_types_are_custom_calls_with_their_settings() -> None:
    data = _graph(
        [
            _node("check", "condition", condition="x > 1", label="Is big?"),
            _node("agent", "ai_agent", agent_type="gpt", prompt="Hi"),
            _node("plain", "my_step"),
        ],
        [("check", "agent"), ("agent", "plain")],
    )
    assert convert_node_graph(data)["do"] == [
        {"check": {"call": "condition", "with": {"condition": "x > 1"}}},
        {"agent": {"call": "ai_agent", "with": {"agent_type": "gpt", "prompt": "Hi"}}},
        {"plain": {"call": "my_step"}},
    ]


def test_delay_becomes_a_wait() -> None:
    data = {"nodes": [_node("pause", "delay", delay_seconds=90)]}
    assert convert_node_graph(data)["do"] == [{"pause": {"wait": "PT1M30S"}}]


def test_api_call_options() -> None:
    node = {
        "id": "post",
        "type": "api_call",
        "config": {
            "endpoint": "https://api.example.com/items",
            "method": "PUT",
            "headers": {"X-Key": "k"},
            "query": {"page": 2},
            "body": {"name": "${ .name }"},
            "timeout": 30,
        },
        "position": {"x": 10, "y": 20},
    }
    assert convert_node_graph({"nodes": [node]})["do"] == [
        {
            "post": {
                "call": "http",
                "with": {
                    "method": "put",
                    "endpoint": "https://api.example.com/items",
                    "headers": {"X-Key": "k"},
                    "query": {"page": 2},
                    "body": {"name": "${ .name }"},
                },
                "timeout": {"after": "PT30S"},
            }
        }
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("inputs.data", "${ .data }"),
        ("inputs", "${ . }"),
        ("inputs.items.0.name", "${ .items[0].name }"),
        ("inputs.a b.c", '${ .["a b"].c }'),
        ("user.id", "${ .user.id }"),
        ("0.id", "${ .[0].id }"),
        ("${ .x + 1 }", "${ .x + 1 }"),
        (42, 42),
        ({"nested": True}, {"nested": True}),
    ],
)
def test_transform_mapping_values(value: object, expected: object) -> None:
    data = {"nodes": [_node("t", "transform", transform_type="mapping", mapping={"out": value})]}
    assert convert_node_graph(data)["do"] == [{"t": {"set": {"out": expected}}}]


def test_transform_with_a_jq_expression() -> None:
    data = {"nodes": [_node("t", "transform", expression="{total: (.items | length)}")]}
    assert convert_node_graph(data)["do"] == [{"t": {"set": "${ {total: (.items | length)} }"}}]


def test_input_is_not_modified_or_shared() -> None:
    data = _load("diamond.graph.json")
    before = copy.deepcopy(data)
    document = convert_node_graph(data)
    assert data == before
    document["do"][0]["A"]["with"]["headers"]["Accept"] = "text/plain"
    document["do"][2]["D"]["with"]["body"]["status"] = "changed"
    assert data == before


# ---------------------------------------------------------------------------- rejections


def test_cycle_is_rejected_naming_its_nodes() -> None:
    with pytest.raises(ConversionError) as caught:
        convert_node_graph(_load("cycle.graph.json"))
    assert caught.value.path == "$.edges"
    assert str(caught.value) == "$.edges: the graph has a cycle: fetch -> shape -> check -> fetch"


def test_self_loop_is_a_cycle() -> None:
    with pytest.raises(ConversionError, match=r"cycle: a -> a$"):
        convert_node_graph(_graph([_node("a")], [("a", "a")]))


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({}, "$.nodes"),
        ({"nodes": []}, "$.nodes"),
        ({"nodes": [{"type": "delay"}]}, "$.nodes[0].id"),
        ({"nodes": [{"id": "a"}]}, "$.nodes[0].type"),
        ({"nodes": [_node("a"), _node("a")]}, "$.nodes[1].id"),
        ({"nodes": [{**_node("a"), "retries": 3}]}, "$.nodes[0].retries"),
        ({"nodes": [{**_node("a"), "config": {}}]}, "$.nodes[0]"),
        ({"nodes": [_node("a")], "edges": {}}, "$.edges"),
        ({"nodes": [_node("a")], "edges": [{"source": "a"}]}, "$.edges[0].target"),
        (_graph([_node("a")], [("a", "ghost")]), "$.edges[0].target"),
        (_graph([_node("a")], [("ghost", "a")]), "$.edges[0].source"),
        (
            {"nodes": [_node("a")], "edges": [{"source": "a", "target": "a", "when": "x"}]},
            "$.edges[0].when",
        ),
        (
            {
                "nodes": [_node("a"), _node("b")],
                "edges": [{"source": "a", "target": "b", "sourceHandle": "true"}],
            },
            "$.edges[0].sourceHandle",
        ),
        ({"nodes": [_node("a", "api_call")]}, "$.nodes[0].data.url"),
        ({"nodes": [_node("a", "api_call", url="u", retries=2)]}, "$.nodes[0].data.retries"),
        ({"nodes": [_node("a", "api_call", url="u", endpoint="e")]}, "$.nodes[0].data"),
        ({"nodes": [_node("a", "webhook", url="u", headers=[])]}, "$.nodes[0].data.headers"),
        ({"nodes": [_node("a", "delay")]}, "$.nodes[0].data.delay_seconds"),
        ({"nodes": [_node("a", "delay", delay_seconds="5")]}, "$.nodes[0].data.delay_seconds"),
        ({"nodes": [_node("a", "delay", delay_seconds=-1)]}, "$.nodes[0].data.delay_seconds"),
        ({"nodes": [_node("a", "transform")]}, "$.nodes[0].data.mapping"),
        ({"nodes": [_node("a", "transform", mapping={})]}, "$.nodes[0].data.mapping"),
        (
            {"nodes": [_node("a", "transform", transform_type="filter", mapping={"x": "y"})]},
            "$.nodes[0].data.transform_type",
        ),
        (
            {"nodes": [_node("a", "transform", mapping={"x": "y"}, expression=".")]},
            "$.nodes[0].data",
        ),
        ({"nodes": [_node("a", "transform", mapping={"x": "a..b"})]}, "$.nodes[0].data.mapping.x"),
        ({"nodes": [_node("a")], "version": "latest"}, "$.version"),
    ],
)
def test_malformed_graphs_are_rejected_at_their_path(data: dict[str, Any], path: str) -> None:
    with pytest.raises(ConversionError) as caught:
        convert_node_graph(data)
    assert caught.value.path == path
    assert str(caught.value).startswith(path + ": ")
