"""The task kinds live in one place (the document model); the interpreter's handler table
follows it."""

from __future__ import annotations

from typing import Any

import pytest

from tflow_workers.dsl.models import TASK_KINDS
from tflow_workers.engine.errors import WorkflowError
from tflow_workers.engine.interpreter import TASK_HANDLERS, task_kind


def test_every_kind_has_exactly_one_handler() -> None:
    assert sorted(TASK_HANDLERS) == sorted(TASK_KINDS)


@pytest.mark.parametrize(
    ("task", "kind"),
    [
        ({"set": {"a": 1}}, "set"),
        ({"for": {"in": ".items"}, "do": [{"x": {"set": {}}}]}, "for"),
        ({"try": [{"x": {"set": {}}}], "catch": {"do": [{"y": {"set": {}}}]}}, "try"),
        ({"call": "http", "with": {}, "then": "end"}, "call"),
    ],
)
def test_the_interpreter_reads_the_kind_the_model_reads(task: dict[str, Any], kind: str) -> None:
    assert task_kind(task) == kind


def test_a_task_with_no_kind_or_two_is_a_configuration_error() -> None:
    for task in ({"then": "end"}, {"set": {}, "wait": "PT1S"}):
        with pytest.raises(WorkflowError) as caught:
            task_kind(task)
        assert caught.value.problem.type.endswith("/configuration")
