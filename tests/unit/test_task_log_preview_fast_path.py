"""A small value's preview, encoded at once, reads exactly as the piecewise encoding that
a large one gets: same text, same cut, same `truncated`."""

from __future__ import annotations

from typing import Any

import pytest

from tflow_workers.engine import tasklog
from tflow_workers.engine.tasklog import preview


def piecewise(value: Any, limit: int) -> tuple[str, bool]:
    parts: list[str] = []
    size = 0
    for chunk in tasklog._ENCODER.iterencode(value):
        parts.append(chunk)
        size += len(chunk)
        if size > limit:
            return "".join(parts)[:limit], True
    return "".join(parts), False


@pytest.mark.parametrize(
    "value",
    [
        None,
        {"count": 3, "label": 'é "quoted" \\ \n', "last": None, "ratio": 1.5},
        [1, -(2**70), float("nan"), True, (1, 2)],
        {1: "int key", "nested": {"a": [[], {}]}},
        "x" * 30,  # over a limit of 16 but counted as small: cut as the piecewise one is
        '"' * 12,  # escapes make the text longer than counted
    ],
    ids=repr,
)
def test_fast_path_reads_as_the_piecewise_encoding(value: Any) -> None:
    assert tasklog._surely_small(value, 64)
    shown = preview(value, limit=16)
    assert (shown.text, shown.truncated) == piecewise(value, 16)


@pytest.mark.parametrize(
    "value",
    [list(range(5000)), {"k": "x" * 5000}, [object()], {"a": {"b": bytes(3)}}],
    ids=lambda v: type(v).__name__,
)
def test_large_or_foreign_values_take_the_piecewise_path(value: Any) -> None:
    assert not tasklog._surely_small(value, 4096)
    shown = preview(value, limit=100)
    assert (shown.text, shown.truncated) == piecewise(value, 100)


def test_a_cycle_is_not_json_either_way() -> None:
    looped: list[Any] = []
    looped.append(looped)
    assert not tasklog._surely_small(looped, 4096)
    assert preview(looped).text == "<not JSON>"
