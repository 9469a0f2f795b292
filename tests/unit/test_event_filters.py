"""Event filter matching: literals, regular expressions and expressions on the attribute."""

from __future__ import annotations

from typing import Any

import pytest

from tflow_workers.engine.events import matches_filter

EVENT = {
    "type": "order.paid",
    "source": "shop/eu",
    "id": "e-1",
    "data": {"sku": "lamp-42", "total": 30},
}


def no_expressions(expression: str, attribute: Any) -> Any:
    raise AssertionError(f"no expression expected, got {expression}")


@pytest.mark.parametrize(
    ("attributes", "matched"),
    [
        ({"type": "order.paid"}, True),
        ({"type": r"order\.(placed|paid)"}, True),
        ({"type": r"order\.(placed|shipped)"}, False),
        # The pattern must match the whole attribute, not a part of it.
        ({"type": "order"}, False),
        ({"source": "shop/.*", "type": "order\\..*"}, True),
        ({"data": {"sku": "lamp-[0-9]+"}}, True),
        ({"data": {"sku": "chair-[0-9]+"}}, False),
        # Only strings are patterns: a number compares equal.
        ({"data": {"total": 30}}, True),
        ({"data": {"total": "3."}}, False),
    ],
)
def test_literal_strings_are_also_regular_expressions(
    attributes: dict[str, Any], matched: bool
) -> None:
    assert matches_filter(EVENT, attributes, no_expressions) is matched


def test_a_string_that_is_no_valid_pattern_matches_itself() -> None:
    event = {**EVENT, "type": "order(paid"}
    assert matches_filter(event, {"type": "order(paid"}, no_expressions)
    assert not matches_filter(event, {"type": "order(pai"}, no_expressions)


def test_a_literal_with_pattern_characters_still_matches_itself() -> None:
    event = {**EVENT, "type": "a+b"}
    assert matches_filter(event, {"type": "a+b"}, no_expressions)


def test_runs_from_before_patterns_compare_for_equality_only() -> None:
    assert not matches_filter(EVENT, {"type": r"order\.(placed|paid)"}, no_expressions, False)
    assert matches_filter(EVENT, {"type": "order.paid"}, no_expressions, False)


def test_expressions_are_not_read_as_patterns() -> None:
    seen: list[tuple[str, Any]] = []

    def evaluate(expression: str, attribute: Any) -> Any:
        seen.append((expression, attribute))
        return attribute["total"] > 20

    assert matches_filter(EVENT, {"data": "${ .total > 20 }"}, evaluate)
    assert seen == [("${ .total > 20 }", EVENT["data"])]
