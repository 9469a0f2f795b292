"""The task kinds live in one place (the document model); the interpreter's handler table
follows it, and every task model the interpreter walks names one of them."""

from __future__ import annotations

from typing import Any, get_args

import pytest
from pydantic import TypeAdapter

from tflow_workers.dsl.models import TASK_KINDS, Task, TaskBase
from tflow_workers.engine.interpreter import TASK_HANDLERS


def test_every_kind_has_exactly_one_handler() -> None:
    assert sorted(TASK_HANDLERS) == sorted(TASK_KINDS)


def _task_models() -> list[type[TaskBase]]:
    union = get_args(Task)[0]
    return [get_args(member)[0] for member in get_args(union)]


def test_every_task_model_has_a_kind_with_a_handler() -> None:
    models = _task_models()
    assert len(models) >= len(TASK_KINDS)
    assert {model.KIND.partition(":")[0] for model in models} == set(TASK_KINDS)


@pytest.mark.parametrize(
    ("task", "kind"),
    [
        ({"set": {"a": 1}}, "set"),
        ({"for": {"in": ".items"}, "do": [{"x": {"set": {"a": 1}}}]}, "for"),
        ({"try": [{"x": {"set": {"a": 1}}}], "catch": {"do": [{"y": {"set": {"a": 1}}}]}}, "try"),
        ({"call": "http", "with": {"method": "get", "endpoint": "https://x.test"}}, "call"),
        ({"call": "charge-payment", "then": "end"}, "call"),
    ],
)
def test_a_loaded_task_names_its_kind(task: dict[str, Any], kind: str) -> None:
    assert TypeAdapter(Task).validate_python(task).kind == kind
