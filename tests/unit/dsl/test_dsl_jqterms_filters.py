"""Route filters and mappings (comparisons, string tests, `(PATH // [])`, objects of paths)
answered in Python (dsl.jqterms) give what jq gives, or defer to jq."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jq_answers import python_answer

from tflow_workers.dsl.expressions import ExpressionError, compile_expression
from tflow_workers.dsl.jqpaths import NotPlain
from tflow_workers.dsl.jqterms import term_program
from tflow_workers.routing import CompiledRoute, RouteError, Router, RoutingTable

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**60), max_value=2**60),
    st.sampled_from([0, 1, -1, 2**53, -(2**53), 2**53 + 1, 5, 100]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.5, 1.0, -0.0, 99.99999999999999, 100.00000000000001, 1e300]),
    st.text(max_size=6),
    st.sampled_from(["", "a", "b", "high", "é", "\U0001f600", "A", "ab"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=6,
)
LITERALS = st.sampled_from(
    [
        "null",
        "true",
        "false",
        "0",
        "1",
        "-1",
        "5",
        "100",
        "-5",
        "9007199254740992",
        '""',
        '"a"',
        '"high"',
        '"\\u00e9"',
        '"b\\n"',
        '"\\ud83d\\ude00"',
    ]
)
OPERATORS = st.sampled_from(["==", "!=", "<", "<=", ">", ">="])
PATHS = st.sampled_from([".", ".data", ".data.x", ".data.x.y", ".missing"])


def jq_answer(text: str, data: Any) -> tuple[str, Any]:
    """What the router's jq path gives: the first output for the event's JSON text."""
    try:
        return "value", compile_expression(text).first_json(json.dumps(data))
    except ExpressionError as err:
        return "error", str(err)


@settings(max_examples=400, deadline=None)
@given(path=PATHS, op=OPERATORS, literal=LITERALS, value=VALUES)
def test_comparisons_match_jq(path: str, op: str, literal: str, value: Any) -> None:
    text = f"{path} {op} {literal}"
    for data in ({"data": {"x": value}}, {"data": value}, value):
        got = python_answer(text, data)
        if got is not None:
            assert repr(got) == repr(jq_answer(text, data)), (text, data)


@settings(max_examples=300, deadline=None)
@given(
    members=st.lists(
        st.tuples(
            st.sampled_from(["uri", "n", "_k", '"a b"', '"é"', "x1"]),
            st.one_of(PATHS, LITERALS),
        ),
        min_size=1,
        max_size=4,
    ),
    value=VALUES,
)
def test_objects_match_jq(members: list[tuple[str, str]], value: Any) -> None:
    text = "{" + ", ".join(f"{key}: {item}" for key, item in members) + "}"
    for data in ({"data": {"x": value}}, {"data": value}, value):
        got = python_answer(text, data)
        if got is not None:
            assert repr(got) == repr(jq_answer(text, data)), (text, data)


HEADS = st.one_of(
    PATHS,
    st.builds(
        lambda path, alternative: f"({path} // {alternative})",
        PATHS,
        st.sampled_from(["[]", "[ ]", '""', "0", "false", "null", '"x"']),
    ),
)
STEPS = st.sampled_from(
    [
        "not",
        'endswith(".pdf")',
        'endswith("")',
        'startswith("a")',
        'startswith("\u00e9")',
        'index("a")',
        'index("t1")',
        'index("")',
        'index("\u00e9")',
    ]
)
STRINGS = st.sampled_from(["a", "t1", "x.pdf", "é", "\udc00", "ab.pdf", ""])


@settings(max_examples=500, deadline=None)
@given(
    head=HEADS,
    steps=st.lists(STEPS, max_size=3),
    comparison=st.one_of(st.none(), st.tuples(OPERATORS, LITERALS)),
    value=st.one_of(VALUES, STRINGS, st.lists(STRINGS, max_size=4)),
)
def test_pipelines_match_jq(
    head: str, steps: list[str], comparison: tuple[str, str] | None, value: Any
) -> None:
    text = " | ".join([head, *steps])
    if comparison is not None:
        text += f" {comparison[0]} {comparison[1]}"
    for data in ({"data": {"x": value}}, {"data": value}, value):
        got = python_answer(text, data)
        if got is not None:
            assert repr(got) == repr(jq_answer(text, data)), (text, data)


@pytest.mark.parametrize(
    ("text", "data", "expected"),
    [
        ('.data.severity == "high"', {"data": {"severity": "high"}}, True),
        (".data.size > 100", {"data": {"size": 150}}, True),
        (".data.size > 100", {"data": {"size": 100.0}}, False),
        (".data.flag == 1", {"data": {"flag": True}}, False),  # true is not 1 in jq
        (".data.n < 5", {"data": {"n": None}}, True),  # null sorts first
        (".data.n < 5", {"data": {"n": "4"}}, False),  # strings after numbers
        (".data.n > 5", {"data": {"n": [1]}}, True),  # arrays after numbers
        (
            '{uri: .data.documentUri, n: 5, "k k": "v"}',
            {"data": {"documentUri": "s3://x"}},
            {"uri": "s3://x", "n": 5, "k k": "v"},
        ),
        ("{a: .x, a: .y}", {"x": 1, "y": 2}, {"a": 2}),
        ("{whole: .}", {"n": 1.0}, {"whole": {"n": 1}}),
        ('.data.key | endswith(".3.pdf") | not', {"data": {"key": "a.3.pdf"}}, False),
        ('.data.key | endswith(".3.pdf") | not', {"data": {"key": "a.4.pdf"}}, True),
        ('(.data.tags // []) | index("t1") == null', {"data": {}}, True),
        ('(.data.tags // []) | index("t1") == null', {"data": {"tags": ["t0", "t1"]}}, False),
        ('.data.name | startswith("inv-")', {"data": {"name": "inv-7"}}, True),
        ('.data.name | index("-")', {"data": {"name": "inv-7"}}, 3),
        ("(.data.n // 0) > 5", {"data": {"n": None}}, False),
        (".data.tags // []", {"data": {"tags": None}}, []),
        ('.data.key | endswith(".pdf") and .data.ok', {"data": {"key": "a.txt"}}, False),
        ('.data | (.key | endswith(".pdf")) and .ok', {"data": {"key": "a.pdf", "ok": 1}}, True),
        (
            '{tags: (.data.tags // []), first: (.data.tags // [] | index("a"))}',
            {"data": {}},
            {"tags": [], "first": None},
        ),
    ],
)
def test_examples(text: str, data: Any, expected: Any) -> None:
    assert python_answer(text, data) == ("value", expected)
    assert jq_answer(text, data) == ("value", expected)


@pytest.mark.parametrize(
    "text",
    [
        ".a * 2 == 1",
        ".a == 1.5",
        ".a == 1e3",
        '.a == "\\(.b)"',
        ".a == 90071992547409930",
        ".a | length > 1",
        ".a | not | length",
        ".a | endswith(.b)",
        '.a | test("x")',
        ".a // [1]",
        ".a | [.b]",
        ".a[]",
        ". []",
        'endswith("x"; "y")',
        ".a | not,",
        ".a[0] == 1",
        ".a == [1]",
        "{a: .x,}",
        "{a: .x | length}",
        "{if: 1}",
        "{(.k): 1}",
        "{a}",
        '.a == "\\ud800"',
    ],
)
def test_other_shapes_are_left_to_jq(text: str) -> None:
    assert term_program(text) is None


@pytest.mark.parametrize(
    "data",
    [{"data": "text"}, {"data": [1]}, {"data": {"size": float("nan")}}, {"data": {"size": 2**60}}],
    ids=repr,
)
def test_what_python_cannot_answer_goes_to_jq(data: Any) -> None:
    evaluate = term_program(".data.size > 5")
    assert evaluate is not None
    with pytest.raises(NotPlain):
        evaluate(data)


def test_router_answers_and_fails_the_same_either_way() -> None:
    """Routes whose jq Python answers match, map and fail exactly as jq makes them."""
    routes = [
        CompiledRoute(
            namespace="ns",
            name="big",
            type="upload",
            filter="${ .data.size > 100 }",
            input='${ {uri: .data.uri, kind: "pdf"} }',
            workflow="big",
            task_queue="q",
        ),
        CompiledRoute(
            namespace="ns",
            name="any",
            type="upload",
            filter="${ .data.size >= 0 or .data.size == null }",  # only jq answers this
            workflow="any",
            task_queue="q",
        ),
    ]
    router = Router(RoutingTable(routes=routes))
    big = {"type": "upload", "source": "s", "data": {"size": 150, "uri": "s3://b"}}
    # Same priority: by route id.
    assert [(m.route.name, m.input) for m in router.match(big)] == [
        ("any", big["data"]),
        ("big", {"uri": "s3://b", "kind": "pdf"}),
    ]
    small = {"type": "upload", "source": "s", "data": {"size": 1}}
    assert [m.route.name for m in router.match(small)] == ["any"]
    # Indexing a string: jq's own error, through the same RouteError as before.
    odd = {"type": "upload", "source": "s", "data": "text"}
    expected = jq_answer(".data.size > 100", odd)
    assert expected[0] == "error"
    with pytest.raises(RouteError) as raised:
        router.match(odd)
    failed = {str(raised.value)}
    tolerant = {m.error for m in router.match(odd, tolerant=True) if m.error}
    assert failed <= tolerant
    assert any(expected[1] in error for error in tolerant), (expected, tolerant)


def test_router_compiles_jq_for_python_answered_routes_only_when_an_event_needs_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A table's load compiles only the jq Python cannot answer; an odd event still gets
    jq's own answer for the others, compiled then."""
    import tflow_workers.routing as routing
    from tflow_workers.dsl.expressions import compile_expressions as original

    compiled: list[str] = []

    def recording(expressions: Any) -> Any:
        expressions = list(expressions)
        compiled.extend(expressions)
        return original(expressions)

    monkeypatch.setattr(routing, "compile_expressions", recording)
    plain_filter = '${ .data.key | endswith(".pdf") | not }'
    jq_filter = "${ .data.size * 2 >= 0 }"
    routes = [
        CompiledRoute(
            namespace="ns",
            name=name,
            type="upload",
            filter=expression,
            workflow=name,
            task_queue="q",
        )
        for name, expression in (("plain", plain_filter), ("jq", jq_filter))
    ]
    router = Router(RoutingTable(routes=routes))
    assert compiled == [jq_filter]
    event = {"type": "upload", "source": "s", "data": {"key": "a.txt", "size": 1}}
    assert sorted(m.route.name for m in router.match(event)) == ["jq", "plain"]
    odd = {"type": "upload", "source": "s", "data": {"key": 7}}
    expected = jq_answer(plain_filter[3:-2], odd)
    assert expected[0] == "error"
    errors = {m.error for m in router.match(odd, tolerant=True) if m.error}
    assert any(expected[1] in error for error in errors), (expected, errors)
