"""The routing table's jq compiled when the table loads: compile errors named per route at
load, matching unchanged (same matches, order and errors), and the grouped compilation it
relies on agreeing with compiling each expression alone."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import pytest

from tflow_workers.dsl.expressions import (
    GROUP_SIZE,
    ExpressionCompileError,
    ExpressionError,
    _keeps_to_itself,
    compile_expression,
    compile_expressions,
)
from tflow_workers.orchestrator.activities import RoutingTableSource
from tflow_workers.routing import CompiledRoute, RouteError, Router, RoutingTable


def route(name: str, **kw: object) -> CompiledRoute:
    base: dict[str, object] = {
        "namespace": "ops",
        "name": name,
        "workflow": name,
        "task_queue": "incidents",
    }
    return CompiledRoute.model_validate({**base, **kw})


def event(**kw: Any) -> dict[str, Any]:
    return {"specversion": "1.0", "id": "1", "source": "s3", "type": "t", **kw}


def test_a_filter_that_does_not_compile_is_named_at_load() -> None:
    router = Router(
        RoutingTable(
            routes=[
                route("good", type="t", filter="${ .data.n > 1 }"),
                route("bad", type="t", priority=5, filter="${ .data.n | nosuch }"),
                route("bad-input", type="u", input="${ {a: }"),
            ]
        )
    )
    assert len(router.problems) == 2
    assert router.problems[0].startswith("route ops/bad: nosuch/0 is not defined")
    assert router.problems[1].startswith("route ops/bad-input: syntax error")
    # Matching fails on that route as before: raised, or reported and skipped.
    with pytest.raises(RouteError, match=r"^route ops/bad: nosuch/0 is not defined"):
        router.match(event(data={"n": 2}))
    tolerant = router.match(event(data={"n": 2}), tolerant=True)
    assert [(m.route.name, m.error.split(":")[0]) for m in tolerant] == [
        ("bad", "route ops/bad"),
        ("good", ""),
    ]


def test_a_table_whose_jq_does_not_compile_is_logged_when_it_loads(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    table = RoutingTable(routes=[route("bad", type="t", filter="${ .a | nosuch }")])
    (tmp_path / "routes.json").write_text(table.to_json())
    with caplog.at_level(logging.ERROR, logger="tflow.orchestrator"):
        router, _ = RoutingTableSource(tmp_path).current()
    assert router.problems
    assert any("route ops/bad: nosuch/0 is not defined" in r.getMessage() for r in caplog.records)


def test_typed_and_type_less_routes_merge_in_priority_order() -> None:
    routes = [
        route("a", type="t", priority=1),
        route("any-s3", source="s3", priority=3),
        route("any-other", source="gcs", priority=9),
        route("any", priority=2),
        route("b", type="t", priority=3),
        route("c", type="t", priority=2),
    ]
    router = Router(RoutingTable(routes=routes))
    assert [m.route.name for m in router.match(event())] == ["any-s3", "b", "any", "c", "a"]
    assert [m.route.name for m in router.match(event(type="x"))] == ["any-s3", "any"]
    assert [m.route.name for m in router.match(event(source="gcs"))] == [
        "any-other",
        "b",
        "any",
        "c",
        "a",
    ]
    # The same again, from the merged lists kept after the first event.
    assert [m.route.name for m in router.match(event())] == ["any-s3", "b", "any", "c", "a"]


def test_an_event_json_cannot_hold_fails_on_the_route_as_before() -> None:
    router = Router(RoutingTable(routes=[route("r", type="t", filter="${ .data != null }")]))
    with pytest.raises(RouteError, match="route ops/r: cannot pass data to jq"):
        router.match(event(data={1, 2}))


@pytest.mark.parametrize(
    "value",
    [math.nan, math.inf, 2**70, "é \u2028 \ud7ff", {"a": [1.5, None, True]}, -0.0],
)
def test_first_json_reads_what_first_reads(value: Any) -> None:
    program = compile_expressions(["${ .v }"])["${ .v }"]
    assert not isinstance(program, ExpressionError)
    first = program.first({"v": value})
    assert json.dumps(program.first_json(json.dumps({"v": value}))) == json.dumps(first)


EXPRESSIONS = [
    "${ .data.size > 3 }",
    '${ "a\\(.x)b" | ascii_upcase }',
    '${ "\\(")")" }',
    "${ .x # a comment\n }",
    "${ $input }",
    "${ $ENV }",
    "${ env }",
    "${ now }",
    "${ empty }",
    '${ error("boom") }',
    "${ def f: .x; f }",
    "${ 1) | (2 }",  # would close the group's function: compiled alone, refused
    "${ .x | nosuch }",
    "${ $nosuch }",
    "${ $__tflow_data }",
    "${ __tflow_expression_0 }",
    "",
    "${ }",
]


def outcome(program: object, data: Any) -> str:
    if isinstance(program, ExpressionError):
        return f"{type(program).__name__}: {program}"
    try:
        return repr(program.first(data))  # type: ignore[attr-defined]
    except ExpressionError as err:
        return f"{type(err).__name__}: {err}"


@pytest.mark.parametrize("copies", [1, GROUP_SIZE + 3])
def test_grouped_compilation_agrees_with_compiling_alone(copies: int) -> None:
    # Many distinct expressions, the odd ones spread over several groups.
    expressions = [f"${{ .x + {i} }}" for i in range(copies)] + EXPRESSIONS
    grouped = compile_expressions(expressions)
    data = {"x": 1, "data": {"size": 4}}
    for expression in expressions:
        try:
            alone: object = compile_expression(expression)
        except ExpressionCompileError as err:
            alone = err
        assert outcome(grouped[expression], data) == outcome(alone, data), expression


@pytest.mark.parametrize(
    ("text", "keeps"),
    [
        (".a", True),
        ('"\\(")")"', True),
        ("[1, {a: (2)}]", True),
        (".a # comment", True),
        ("1) | (2", False),
        ("(1", False),
        ('"open', False),
        ("[1)", False),
        (".a # comment \\", False),
        ("$__loc__", False),
    ],
)
def test_what_may_share_a_program(text: str, keeps: bool) -> None:
    assert _keeps_to_itself(text) is keeps
