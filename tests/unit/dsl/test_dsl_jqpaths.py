"""Plain paths answered in Python give what jq gives, or defer to jq."""

from __future__ import annotations

from typing import Any

import pytest

from tflow_workers.dsl.expressions import compile_expression
from tflow_workers.dsl.jqpaths import NotPlain, as_jq, follow, plain_path

VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -7,
    2**53,
    2**53 + 1,
    -(2**53) - 1,
    2**63,
    10**30,
    0.1,
    1.0,
    -5.0,
    -0.0,
    2.5,
    1e-7,
    3e-320,
    1 / 3,
    1e17,
    1.5e20,
    1e308,
    1.7976931348623157e308,
    "",
    "plain",
    "é ü \u2028 \x00 emoji \U0001f600",
    [],
    [1, 2.0, "x", None],
    (1, (2.0, 3)),
    {},
    {"b": 1, "a": 2.0, "nested": {"z": [1.0, {"y": 10**20}]}},
]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_identity_matches_jq(value: Any) -> None:
    expected = compile_expression(".").first(value)
    got = follow((), value)
    assert got == expected
    assert repr(got) == repr(expected)  # same types too: 1.0 comes back as 1


@pytest.mark.parametrize(
    ("text", "data"),
    [
        (".a", {"a": 1.0}),
        (".a", {"b": 1}),
        (".a", None),
        (".a.b", {"a": None}),
        (".a.b", {"a": {"b": [1, {"c": 2.0}]}}),
        (".a.b.c", {"a": {}}),
        (".if", {"if": 3}),
        ("._x1", {"_x1": "y"}),
    ],
)
def test_paths_match_jq(text: str, data: Any) -> None:
    path = plain_path(text)
    assert path is not None
    expected = compile_expression(text).first(data)
    got = follow(path, data)
    assert repr(got) == repr(expected)


def test_result_is_a_fresh_value() -> None:
    data = {"a": {"b": [1]}}
    got = follow(("a",), data)
    assert got == {"b": [1]}
    assert got is not data["a"]
    assert got["b"] is not data["a"]["b"]


@pytest.mark.parametrize(
    "text", [".a | .b", ".[0]", '."a"', ".a?", "..", ".a[]", "$x", ".a + 1", ". ", "", ".1"]
)
def test_other_expressions_are_not_plain(text: str) -> None:
    if text == ". ":
        assert plain_path(text) == ()
    else:
        assert plain_path(text) is None


@pytest.mark.parametrize(
    ("path", "data"),
    [
        (("a",), 3),
        (("a",), [1]),
        (("a",), "text"),
        (("a", "b"), {"a": True}),
    ],
)
def test_indexing_a_non_object_is_left_to_jq(path: tuple[str, ...], data: Any) -> None:
    with pytest.raises(NotPlain):
        follow(path, data)


@pytest.mark.parametrize(
    "value",
    [float("nan"), float("inf"), {1: "a"}, "\ud800", {"a": {1, 2}}, 10**400, b"bytes"],
    ids=repr,
)
def test_odd_values_are_left_to_jq(value: Any) -> None:
    with pytest.raises(NotPlain):
        as_jq(value)
