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


def _node(node_id: str, node_type: str = "my_step", **data: Any) -> dict[str, Any]:
    return {"id": node_id, "type": node_type, "data": data}


_WIRING = ("input", "export", "if")


def _bodies(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The tasks without their data-flow wiring (tested on its own below)."""
    result = []
    for entry in tasks:
        name, body = next(iter(entry.items()))
        body = {k: v for k, v in body.items() if k not in _WIRING}
        if "fork" in body:
            body = {"fork": {**body["fork"], "branches": _bodies(body["fork"]["branches"])}}
        result.append({name: body})
    return result


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
                    "input": {"from": "${ $workflow.input }"},
                    "export": {
                        "as": '${ $context + {outputs: ($context.outputs + {"node-1": .})} }'
                    },
                }
            },
            {
                "node-2": {
                    "set": {"result": "${ .data }"},
                    "input": {"from": '${ $context.outputs["node-1"] }'},
                    "export": {
                        "as": '${ $context + {outputs: ($context.outputs + {"node-2": .})} }'
                    },
                }
            },
        ],
        "output": {"as": '${ $context.outputs["node-2"] }'},
    }


def test_diamond_forks_the_middle_nodes_between_first_and_last() -> None:
    document = convert_node_graph(_load("diamond.graph.json"))
    assert [next(iter(entry)) for entry in document["do"]] == ["A", "parallel_1", "D"]
    fork = document["do"][1]["parallel_1"]["fork"]
    assert "compete" not in fork
    assert _bodies(fork["branches"]) == [
        {"B": {"set": "${ {total: (.items | length)} }"}},
        {
            "C": {
                "call": "sql.query",
                "with": {
                    "secret": "orders-db",
                    "query": "select * from orders where id = %s",
                    "parameters": ["${ .id }"],
                },
            }
        },
    ]
    # Each node reads its own sources' outputs; D gets B's and C's, keyed by id.
    assert fork["branches"][0]["B"]["input"] == {"from": '${ $context.outputs["A"] }'}
    assert document["do"][2]["D"]["input"] == {
        "from": '${ {"B": $context.outputs["B"], "C": $context.outputs["C"]} }'
    }
    assert document["use"] == {"secrets": ["orders-db"]}
    assert document["output"] == {"as": '${ $context.outputs["D"] }'}
    tasks = _bodies(document["do"])
    assert tasks[0]["A"] == {
        "call": "http",
        "with": {
            "method": "get",
            "endpoint": "https://api.example.com/orders/{id}",
            "headers": {"Accept": "application/json"},
        },
    }
    # A webhook is an HTTP POST of its payload.
    assert tasks[2]["D"] == {
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
    assert _bodies(one["do"]) == [{"a": {"call": "my_step"}}]
    twice = _graph([_node("a"), _node("b")], [("a", "b"), ("a", "b")])
    assert [next(iter(entry)) for entry in convert_node_graph(twice)["do"]] == ["a", "b"]


def test_other_node_types_are_custom_calls_with_their_settings() -> None:
    data = _graph(
        [_node("first", "my_step", x=1, label="First"), _node("plain", "my_step")],
        [("first", "plain")],
    )
    assert _bodies(convert_node_graph(data)["do"]) == [
        {"first": {"call": "my_step", "with": {"x": 1}}},
        {"plain": {"call": "my_step"}},
    ]


def test_ai_agent_is_refused_by_name_with_the_reason() -> None:
    data = _graph([_node("a"), _node("agent", "ai_agent", prompt="Hi")], [("a", "agent")])
    with pytest.raises(ConversionError) as caught:
        convert_node_graph(data)
    assert caught.value.path == "$.nodes[1].type"
    assert "ai_agent nodes are not converted" in str(caught.value)
    assert "no model endpoint" in str(caught.value)


def test_condition_becomes_a_switch_and_gates_its_true_and_false_edges() -> None:
    data = {
        "nodes": [
            _node("check", "condition", condition="inputs.amount > 100"),
            _node("big", "my_step"),
            _node("small", "my_step"),
            _node("after", "my_step"),
        ],
        "edges": [
            {"source": "check", "target": "big", "sourceHandle": "true"},
            {"source": "check", "target": "small", "sourceHandle": "false"},
            {"source": "big", "target": "after"},
            {"source": "small", "target": "after"},
        ],
    }
    document = convert_node_graph(data)
    check = document["do"][0]["check"]
    assert check["do"][0]["decide"]["switch"][0]["true"] == {
        "when": "${ .amount > 100 }",
        "then": "isTrue",
    }
    branches = {
        next(iter(b)): next(iter(b.values()))
        for b in document["do"][1]["parallel_1"]["fork"]["branches"]
    }
    assert branches["big"]["if"] == '${ ($context.decisions["check"] == true) }'
    assert branches["small"]["if"] == '${ ($context.decisions["check"] == false) }'
    # A node after a gated one runs when any of its sources ran.
    assert document["do"][2]["after"]["if"] == (
        '${ (($context.outputs // {}) | has("big")) or (($context.outputs // {}) | has("small")) }'
    )


@pytest.mark.parametrize(
    ("query", "operation", "function"),
    [
        ("SELECT * FROM t", None, "sql.query"),
        ("insert into t values (1) returning id", None, "sql.query"),
        ("UPDATE t SET x = 1", None, "sql.execute"),
        ("DELETE FROM t", "delete", "sql.execute"),
        ("call refresh()", "select", "sql.query"),
    ],
)
def test_database_nodes_call_the_sql_functions(
    query: str, operation: str | None, function: str
) -> None:
    settings: dict[str, Any] = {"secret": "db", "query": query, "table": "t", "timeout": 5}
    if operation:
        settings["operation"] = operation
    document = convert_node_graph({"nodes": [_node("q", "database", **settings)]})
    field = "query" if function == "sql.query" else "statement"
    assert _bodies(document["do"]) == [
        {"q": {"call": function, "with": {"secret": "db", field: query, "timeout": "PT5S"}}}
    ]
    assert document["use"] == {"secrets": ["db"]}


def test_delay_becomes_a_wait() -> None:
    data = {"nodes": [_node("pause", "delay", delay_seconds=90)]}
    assert _bodies(convert_node_graph(data)["do"]) == [{"pause": {"wait": "PT1M30S"}}]


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
    assert _bodies(convert_node_graph({"nodes": [node]})["do"]) == [
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
    assert _bodies(convert_node_graph(data)["do"]) == [{"t": {"set": {"out": expected}}}]


def test_transform_with_a_jq_expression() -> None:
    data = {"nodes": [_node("t", "transform", expression="{total: (.items | length)}")]}
    assert _bodies(convert_node_graph(data)["do"]) == [
        {"t": {"set": "${ {total: (.items | length)} }"}}
    ]


def test_input_is_not_modified_or_shared() -> None:
    data = _load("diamond.graph.json")
    before = copy.deepcopy(data)
    document = convert_node_graph(data)
    assert data == before
    document["do"][0]["A"]["with"]["headers"]["Accept"] = "text/plain"
    document["do"][2]["D"]["with"]["body"]["status"] = "changed"
    document["do"][1]["parallel_1"]["fork"]["branches"][1]["C"]["with"]["parameters"].append(1)
    assert data == before


def test_dangling_edge_is_refused_naming_the_nodes() -> None:
    with pytest.raises(ConversionError) as caught:
        convert_node_graph(_graph([_node("a")], [("a", "ghost")]))
    assert str(caught.value) == (
        "$.edges[0].target: dangling edge 'a' -> 'ghost': unknown node 'ghost'"
    )


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
        ({"nodes": [_node("a", "database", query="SELECT 1")]}, "$.nodes[0].data.secret"),
        ({"nodes": [_node("a", "database", secret="s")]}, "$.nodes[0].data.query"),
        (
            {"nodes": [_node("a", "database", secret="s", query="${ .sql }")]},
            "$.nodes[0].data.query",
        ),
        (
            {"nodes": [_node("a", "database", secret="s", query="x", host="h")]},
            "$.nodes[0].data.host",
        ),
        ({"nodes": [_node("a", "condition", condition="x = = 1")]}, "$.nodes[0].data.condition"),
        (
            {
                "nodes": [_node("a", "condition", condition="true"), _node("b")],
                "edges": [{"source": "a", "target": "b", "sourceHandle": "maybe"}],
            },
            "$.edges[0].sourceHandle",
        ),
    ],
)
def test_malformed_graphs_are_rejected_at_their_path(data: dict[str, Any], path: str) -> None:
    with pytest.raises(ConversionError) as caught:
        convert_node_graph(data)
    assert caught.value.path == path
    assert str(caught.value).startswith(path + ": ")
