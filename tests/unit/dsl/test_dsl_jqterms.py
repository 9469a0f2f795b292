"""Sums, comparisons, objects, string tests and `tostring` answered in Python
(dsl.jqterms) give what jq gives for the same data, or defer to jq: never a different
value, never a value where jq reports an error. Expressions are generated from the
module's grammar and checked against the jq program the interpreter runs."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jq_answers import python_answer

from tflow_workers.dsl.expressions import ExpressionError, compile_expression
from tflow_workers.dsl.jqterms import term_program
from tflow_workers.engine.dataflow import DataFlow

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**60), max_value=2**60),
    st.sampled_from([0, 1, -1, 2**53, -(2**53), 2**53 - 1, 7]),
    st.floats(allow_nan=False, allow_infinity=True),
    st.sampled_from([0.5, 1.0, -0.0, 0.1, 1e300, 1.5e308]),
    st.text(max_size=4),
    st.sampled_from(["", "a", "é", "\U0001f600", "\x7f"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["a", "b", "n", "s"]), inner, max_size=3)
    ),
    max_leaves=6,
)
LEAVES = st.sampled_from(
    [".", ".a", ".b", ".n", ".s", ".a.b", ".missing", "null", "true", "false", "0", "1", "-3",
     "9007199254740992", '""', '"x"', '"\\u00e9"', "{}", "[]", "tostring", "not", "- 2",
     'endswith("a")', 'startswith("")', 'index("a")', 'index("é")']
)  # fmt: skip
OPERATORS = st.sampled_from(["==", "!=", "<", "<=", ">", ">="])


def expressions() -> st.SearchStrategy[str]:
    def grow(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.builds(lambda a, b: f"{a} + {b}", inner, inner),
            st.builds(lambda a, b: f"({a} - {b})", inner, inner),
            st.builds(lambda a, b: f"({a} and {b})", inner, inner),
            st.builds(lambda a, b: f"({a} or {b})", inner, inner),
            st.builds(lambda a, b: f"({a} // {b})", inner, inner),
            st.builds(lambda a, b: f"({a} | {b})", inner, inner),
            st.builds(lambda a, op, b: f"({a} {op} {b})", inner, OPERATORS, inner),
            st.builds(lambda a: f"({a} | tostring)", inner),
            st.builds(
                lambda pairs: "{" + ", ".join(f"{k}: ({v})" for k, v in pairs) + "}",
                st.lists(st.tuples(st.sampled_from(["a", "n", '"s"', "z"]), inner), max_size=3),
            ),
        )

    return st.recursive(LEAVES, grow, max_leaves=5)


def jq(text: str, data: Any) -> tuple[str, Any]:
    """What the interpreter's jq program gives: the first output, or its error."""
    try:
        return "value", compile_expression(text).first(data)
    except ExpressionError:
        return "error", None


@settings(max_examples=1500, deadline=None)
@given(text=expressions(), data=VALUES)
def test_generated_expressions_match_jq(text: str, data: Any) -> None:
    got = python_answer(text, data)
    if got is not None:
        assert repr(got) == repr(jq(text, data)), (text, data)


@pytest.mark.parametrize(
    ("text", "data", "expected"),
    [
        (".checkpoints + 1", {"checkpoints": 2}, 3),
        (". + {total: (.total + .count), n: 1}", {"total": 1, "count": 2, "x": 0},
         {"total": 3, "count": 2, "x": 0, "n": 1}),
        ('"checkpoint-" + (.checkpoints + 1 | tostring)', {"checkpoints": 4}, "checkpoint-5"),
        (".count > 1000000", {"count": 3}, False),
        (".a + .b", {"a": [1], "b": [2]}, [1, 2]),
        (".a + .b", {"a": None, "b": "x"}, "x"),
        (".a + .b", {"a": 0.5, "b": 0.5}, 1),
        ("1 == .a", {"a": 1.0}, True),
        ("{}", None, {}),
        ("{a: .x} | .a", {"x": "y"}, "y"),
        ("{a: .x} + {b: 1}", {"x": 0}, {"a": 0, "b": 1}),
        ('{"a b": .x, c: {d: 1}}', {"x": True}, {"a b": True, "c": {"d": 1}}),
        (".x | not", {"x": 0}, False),
        (".a - 1 > 0 and .b == \"x\"", {"a": 2, "b": "x"}, True),
        (".a or .b", {"a": None, "b": 0}, True),
        (".a // .b // 3", {"a": False, "b": None}, 3),
        (".a - -1", {"a": 1}, 2),
    ],
)  # fmt: skip
def test_the_shapes_workflows_use(text: str, data: Any, expected: Any) -> None:
    assert python_answer(text, data) == ("value", expected)
    assert jq(text, data) == ("value", expected)


@pytest.mark.parametrize(
    ("text", "data"),
    [
        (".a + .b", {"a": 1, "b": "x"}),  # jq's error, in jq's words
        (".a + 1", {"a": 2**53}),  # beyond doubles
        (".a | tostring", {"a": 0.5}),  # jq's number formatting
        (".a | tostring", {"a": 1.0}),  # jq keeps the number's text: "1.0"
        (".a | tostring", {"a": [1]}),  # jq's JSON text
        (".a < .b", {"a": [1], "b": [2]}),  # containers compare member by member
        (".a.b", {"a": 3}),  # indexing a number
        (".a.b // 1", {"a": 3}),  # jq's `//` hides that error: jq says what comes out
        (".a - .b", {"a": [1, 2], "b": [2]}),  # arrays: a set difference
        (".a - 1", {"a": None}),  # jq's error
    ],
)
def test_what_only_jq_can_say_is_left_to_jq(text: str, data: Any) -> None:
    assert python_answer(text, data) is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        ".a * 2",
        ".[0]",
        ".a?",
        "$input",
        "$input + 1",
        "now",
        "-.a",
        ".a - [1]",
        "{a: .x | tostring}",
        "{if: 1}",
        "{a}",
        "1.5",
        ".a + 0.5",
        "1 < 2 < 3",
        "(.a",
        ".a)",
        '"\\(.a)"',
        "length",
        ".a + ",
        "..",
    ],
)
def test_texts_outside_the_grammar_are_refused(text: str) -> None:
    assert term_program(text) is None


def test_the_interpreter_answers_the_same_with_or_without_python() -> None:
    """The data flow takes these texts in Python; its answers are jq's."""
    flow = DataFlow()
    data = {"count": 3, "total": 4, "checkpoints": 1, "label": "start", "last": None}
    for text in (
        "${ . + {total: (.total + .count), checkpoints: (.checkpoints + 1)} }",
        '${ "checkpoint-" + (.checkpoints + 1 | tostring) }',
        "${ .count > 1000000 }",
        "${ .label + .last }",
    ):
        assert flow.expr(text, data, {}, "/test") == jq(text[2:-1], data)[1], text
