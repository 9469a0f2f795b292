"""Flov7 node graphs converted and run as drawn on the engine: parallel ranks as forks,
data along edges, condition nodes as switches, database nodes through the SQL functions
on the real PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from engine_harness import EngineHarness

from tflow_devstack.postgres import PostgresServer
from tflow_workers.convert import convert
from tflow_workers.dsl.validate import validate_document

pytestmark = pytest.mark.integration


def _node(node_id: str, node_type: str, **data: Any) -> dict[str, Any]:
    return {"id": node_id, "type": node_type, "data": data}


def _edge(source: str, target: str, handle: str | None = None) -> dict[str, Any]:
    edge: dict[str, Any] = {"source": source, "target": target}
    if handle is not None:
        edge["sourceHandle"] = handle
    return edge


@pytest.mark.runs("task.fork", "call.sql", "task.set", "use.secrets")
async def test_diamond_runs_b_and_c_in_parallel_and_d_receives_both(
    engine: EngineHarness, tmp_path: Path, postgres: PostgresServer
) -> None:
    secret = tmp_path / "secrets" / "orders-db"
    secret.mkdir(parents=True)
    (secret / "uri").write_text(postgres.dsn)
    graph = {
        "name": "Diamond",
        "nodes": [
            _node("A", "transform", expression="{orderId: .id, items: .lines}"),
            _node("B", "transform", expression="{count: (.items | length)}"),
            _node(
                "C",
                "database",
                secret="orders-db",
                query="SELECT upper(%(id)s) AS code, %(n)s::int * 2 AS doubled",
                parameters={"id": "${ .orderId }", "n": "${ .items | length }"},
            ),
            _node(
                "D",
                "transform",
                mapping={"count": "inputs.B.count", "code": "inputs.C.0.code", "all": "inputs"},
            ),
        ],
        "edges": [_edge("A", "B"), _edge("A", "C"), _edge("B", "D"), _edge("C", "D")],
    }
    document = convert(graph)
    assert [next(iter(t)) for t in document["do"]] == ["A", "parallel_1", "D"]
    assert validate_document(document) == []
    result = await engine.run(document, {"id": "o-7", "lines": ["x", "y", "z"]})
    # D's input is its own sources' outputs keyed by id, not the fork's list.
    assert result == {
        "count": 3,
        "code": "O-7",
        "all": {"B": {"count": 3}, "C": [{"code": "O-7", "doubled": 6}]},
    }


@pytest.mark.runs("task.switch", "task.do")
async def test_condition_node_takes_one_branch_and_the_merge_runs(engine: EngineHarness) -> None:
    graph = {
        "nodes": [
            _node("start", "transform", expression="{amount: .amount}"),
            _node("check", "condition", condition="inputs.amount > 100"),
            _node("big", "transform", expression='{route: "manual", amount}'),
            _node("small", "transform", expression='{route: "auto", amount}'),
            _node("done", "transform", expression="[.big, .small]"),
        ],
        "edges": [
            _edge("start", "check"),
            _edge("check", "big", "true"),
            _edge("check", "small", "false"),
            _edge("big", "done"),
            _edge("small", "done"),
        ],
    }
    document = convert(graph)
    assert validate_document(document) == []
    assert await engine.run(document, {"amount": 250}) == [
        {"route": "manual", "amount": 250},
        None,
    ]
    assert await engine.run(document, {"amount": 5}) == [None, {"route": "auto", "amount": 5}]
