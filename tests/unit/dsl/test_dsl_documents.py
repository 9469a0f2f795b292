"""The example documents in `documents/` are valid, load, and survive a round trip; and each
of them turns invalid when a single, typical mistake is made in it."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from tflow_workers.dsl.models import load_document
from tflow_workers.dsl.validate import validate_document
from tflow_workers.dsl.yamlio import load_yaml

DOCUMENTS = sorted((Path(__file__).parent / "documents").glob("*.yaml"))


def read(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = load_yaml(path.read_text())
    return data


def test_there_are_example_documents() -> None:
    assert len(DOCUMENTS) >= 6


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda path: path.stem)
def test_example_validates_cleanly(path: Path) -> None:
    assert [str(issue) for issue in validate_document(read(path))] == []


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda path: path.stem)
def test_example_round_trips(path: Path) -> None:
    data = read(path)
    assert load_document(data).model_dump(exclude_unset=True) == data


def _first_task(data: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = next(iter(data["do"][0].values()))
    return body


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda path: path.stem)
def test_one_mistake_makes_an_example_invalid(path: Path) -> None:
    data = read(path)
    name = next(iter(data["do"][0]))

    broken = copy.deepcopy(data)
    _first_task(broken)["then"] = "nowhere"
    assert f"do[0].{name}.then: no task named 'nowhere'" in [
        str(issue) for issue in validate_document(broken)
    ]

    broken = copy.deepcopy(data)
    _first_task(broken)["if"] = "${ .x | }"
    assert [str(issue) for issue in validate_document(broken)] == [
        f"do[0].{name}.if: invalid jq expression: "
        "syntax error, unexpected end of file at line 1, column 4"
    ]

    broken = copy.deepcopy(data)
    _first_task(broken)["thne"] = "end"
    assert [str(issue) for issue in validate_document(broken)] == [
        f"do[0].{name}: unknown field 'thne' (did you mean 'then'?)"
    ]
