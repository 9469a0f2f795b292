"""jq runtime expressions: detection, caching, variables, typed errors, interpolation."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tflow_workers.dsl import expressions
from tflow_workers.dsl.expressions import (
    EXPRESSION_ERROR_TYPE,
    RUNTIME_ARGUMENTS,
    ExpressionCompileError,
    ExpressionError,
    ExpressionRuntimeError,
    compile_expression,
    evaluate,
    evaluate_all,
    interpolate,
    is_expression,
    strip_expression,
)


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    expressions.clear_cache()
    yield
    expressions.clear_cache()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("${ .a }", True),
        ("${.a}", True),
        ("  ${ .a }\n", True),
        ("${ {a: 1} }", True),
        ("${\n  .a\n  | .b\n}", True),
        (".a", False),
        ("hello ${ .name }", False),
        ("${ .a } tail", False),
        ("$.a", False),
        (5, False),
        (None, False),
    ],
)
def test_is_expression(value: object, expected: bool) -> None:
    assert is_expression(value) is expected


def test_strip_expression() -> None:
    assert strip_expression("${ .a | .b }") == ".a | .b"
    assert strip_expression("  .a  ") == ".a"
    assert strip_expression("${ {a: 1} }") == "{a: 1}"


def test_evaluate_with_and_without_wrapper() -> None:
    data = {"order": {"items": [1, 2, 3]}}
    assert evaluate("${ .order.items | length }", data) == 3
    assert evaluate(".order.items | add", data) == 6


def test_first_output_and_no_output() -> None:
    assert evaluate("${ .[] }", [7, 8]) == 7
    assert evaluate("${ empty }", {}) is None
    assert evaluate_all("${ .[] * 2 }", [1, 2, 3]) == [2, 4, 6]


def test_runtime_arguments_are_variables() -> None:
    variables = {
        "input": {"orderId": "o-1"},
        "context": {"attempt": 2},
        "workflow": {"id": "wf-9"},
        "secret": {"token": "s3cr3t"},
    }
    result = evaluate(
        "${ {id: $input.orderId, attempt: $context.attempt, wf: $workflow.id, t: $secret.token} }",
        {},
        variables,
    )
    assert result == {"id": "o-1", "attempt": 2, "wf": "wf-9", "t": "s3cr3t"}


def test_unpassed_runtime_arguments_are_null() -> None:
    for name in RUNTIME_ARGUMENTS:
        assert evaluate(f"${{ ${name} }}", {"x": 1}) is None


def test_extra_variables_from_catch_and_for() -> None:
    assert evaluate("${ $err.status }", {}, {"err": {"status": 503}}) == 503
    assert evaluate("${ [$item, $index] }", {}, {"item": "a", "index": 0}) == ["a", 0]


def test_data_is_the_dot_and_variables_do_not_leak_into_it() -> None:
    assert evaluate("${ . }", {"a": 1}, {"input": {"b": 2}}) == {"a": 1}


def test_compiled_programs_are_cached_by_text_and_variable_names() -> None:
    first = compile_expression("${ .a + 1 }")
    assert compile_expression("${ .a + 1 }") is first
    # The wrapper and surrounding whitespace are not part of the key.
    assert compile_expression(".a + 1") is first
    # Another set of variable names is another program.
    with_item = compile_expression("${ .a + 1 }", ["item"])
    assert with_item is not first
    assert compile_expression("${ .a + 1 }", ["item"]) is with_item
    info = expressions.cache_info()
    assert (info.hits, info.misses) == (3, 2)


def test_evaluate_reuses_the_compiled_program() -> None:
    for value in range(5):
        assert evaluate("${ . * 2 }", value, {"item": value}) == value * 2
    info = expressions.cache_info()
    assert (info.hits, info.misses) == (4, 1)


def test_variable_order_does_not_matter_for_the_cache() -> None:
    assert compile_expression("${ 1 }", ["b", "a"]) is compile_expression("${ 1 }", ["a", "b"])


def test_compile_error_is_typed_and_carries_the_expression() -> None:
    with pytest.raises(ExpressionCompileError) as caught:
        compile_expression("${ .a | }")
    error = caught.value
    assert error.expression == ".a |"
    assert error.message == "syntax error, unexpected end of file at line 1, column 4"
    assert isinstance(error, ExpressionError)


def test_unknown_variable_is_a_compile_error() -> None:
    with pytest.raises(ExpressionCompileError) as caught:
        evaluate("${ $itme }", {}, {"item": 1})
    assert caught.value.message == "$itme is not defined at line 1, column 1"
    assert caught.value.expression == "$itme"


@pytest.mark.parametrize("expression", ["${ }", "${}", "   "])
def test_empty_expression_is_a_compile_error(expression: str) -> None:
    with pytest.raises(ExpressionCompileError, match="empty expression"):
        compile_expression(expression)


@pytest.mark.parametrize("name", ["my-error", "1st", "", "__tflow_data"])
def test_invalid_variable_names_are_compile_errors(name: str) -> None:
    with pytest.raises(ExpressionCompileError, match="invalid variable name"):
        evaluate("${ 1 }", {}, {name: 1})


def test_wrapper_cannot_be_escaped() -> None:
    # Balanced on its own terms only inside our wrapper: must not compile.
    with pytest.raises(ExpressionCompileError):
        compile_expression("${ .a) | (.b }")


def test_comments_and_definitions_work() -> None:
    assert evaluate("${ .a # the a field }", {"a": 1}) == 1
    assert evaluate("${ def twice: . * 2; .a | twice }", {"a": 4}) == 8


def test_runtime_error_is_typed_and_carries_the_expression() -> None:
    with pytest.raises(ExpressionRuntimeError) as caught:
        evaluate("${ .a + 1 }", {"a": "text"})
    error = caught.value
    assert error.expression == ".a + 1"
    assert error.message == 'string ("text") and number (1) cannot be added'


def test_jq_error_builtin_is_a_runtime_error() -> None:
    with pytest.raises(ExpressionRuntimeError) as caught:
        evaluate('${ error("boom") }', {})
    assert caught.value.message == "boom"


def test_runtime_error_in_later_output_is_typed() -> None:
    with pytest.raises(ExpressionRuntimeError):
        evaluate_all('${ 1, error("late") }', {})


def test_non_json_data_is_a_runtime_error() -> None:
    with pytest.raises(ExpressionRuntimeError, match="cannot pass data to jq"):
        evaluate("${ . }", {"when": object()})


def test_errors_convert_to_sw_expression_errors() -> None:
    with pytest.raises(ExpressionRuntimeError) as caught:
        evaluate("${ .a.b }", {"a": 5})
    assert caught.value.to_error() == {
        "type": EXPRESSION_ERROR_TYPE,
        "status": 400,
        "title": "Expression evaluation failed",
        "detail": 'Cannot index number with string ("b") (expression: .a.b)',
    }
    assert EXPRESSION_ERROR_TYPE == "https://serverlessworkflow.io/spec/1.0.0/errors/expression"


def test_interpolate_walks_nested_structures() -> None:
    value: dict[str, Any] = {
        "literal": "plain text",
        "number": 3,
        "flag": True,
        "nothing": None,
        "expr": "${ .name }",
        "nested": {
            "list": ["${ .items | length }", "x", {"deep": "${ $input.id }"}],
            "${ .name }": "keys are never evaluated",
        },
        "template": "Hello ${ .name }",
    }
    result = interpolate(value, {"name": "Ada", "items": [1, 2]}, {"input": {"id": 42}})
    assert result == {
        "literal": "plain text",
        "number": 3,
        "flag": True,
        "nothing": None,
        "expr": "Ada",
        "nested": {
            "list": [2, "x", {"deep": 42}],
            "${ .name }": "keys are never evaluated",
        },
        "template": "Hello ${ .name }",
    }
    # The input is not mutated.
    assert value["expr"] == "${ .name }"


def test_interpolate_results_can_be_any_json_type() -> None:
    assert interpolate("${ {a: [1, 2]} }", {}) == {"a": [1, 2]}
    assert interpolate(["${ null }", "${ 1.5 }"], {}) == [None, 1.5]


def test_interpolate_propagates_typed_errors() -> None:
    with pytest.raises(ExpressionCompileError):
        interpolate({"a": ["${ .x | }"]}, {})


def test_worker_environment_is_invisible(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "do-not-leak")
    assert evaluate("${ $ENV }", {}) == {}
    assert evaluate("${ env }", {}) == {}
    assert evaluate("${ $ENV.AWS_SECRET_ACCESS_KEY }", {}) is None


def test_now_is_the_clock_the_caller_passes() -> None:
    moment = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert evaluate("${ now }", {}, now=moment) == moment.timestamp()
    assert evaluate("${ now | todate }", {}, now=moment) == "2024-05-01T12:00:00Z"
    assert evaluate("${ now }", {}, now=1.5) == 1.5
    assert interpolate({"at": "${ now }"}, {}, now=7.0) == {"at": 7.0}


def test_now_without_a_clock_is_an_expression_error() -> None:
    with pytest.raises(ExpressionRuntimeError) as caught:
        evaluate("${ now }", {})
    assert caught.value.message == "now is not available here: the caller passed no clock"


def test_local_time_is_utc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")
    assert evaluate('${ 0 | strflocaltime("%Y-%m-%dT%H") }', {}) == "1970-01-01T00"
    assert evaluate("${ 0 | localtime | mktime }", {}) == 0
