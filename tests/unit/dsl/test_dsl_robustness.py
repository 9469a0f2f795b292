"""`validate_document` never raises, whatever JSON-like value it is given.

hypothesis is not a dependency of this project, so this is a small seeded fuzzer: hand-written
nasty inputs, plus random mutations of the example documents (replace, delete or duplicate a
node; swap in a value of another type).
"""

from __future__ import annotations

import copy
import random
from pathlib import Path
from typing import Any

import pytest

from tflow_workers.dsl.issues import DocumentError, Issue
from tflow_workers.dsl.models import MAX_DEPTH, load_document
from tflow_workers.dsl.validate import validate_document
from tflow_workers.dsl.yamlio import load_yaml

HEADER = {"dsl": "1.0.0", "namespace": "test", "name": "flow", "version": "1.0.0"}
EXAMPLES = [
    load_yaml(path.read_text())
    for path in sorted((Path(__file__).parent / "documents").glob("*.yaml"))
]
SCALARS: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    2**70,
    1.5,
    float("nan"),
    "",
    "x",
    "${",
    "${ }",
    "${ .a | }",
    "${ $nope }",
    "end",
    "continue",
    "PT1S",
    "P1Y",
    [],
    {},
]


def _deep(levels: int) -> dict[str, Any]:
    tasks: list[Any] = [{"leaf": {"set": {"x": 1}}}]
    for level in range(levels):
        tasks = [{f"t{level}": {"do": tasks}}]
    return {"document": HEADER, "do": tasks}


NASTY: list[Any] = [
    None,
    [],
    "document",
    42,
    {},
    {"document": None, "do": None},
    {"document": [], "do": {}},
    {"document": HEADER, "do": [None, 1, "x", [], {}, {"a": None}, {"a": []}, {1: {"set": {}}}]},
    {"document": HEADER, "do": [{"a": {"switch": None}}, {"b": {"switch": [None, 1, {"c": 1}]}}]},
    {
        "document": HEADER,
        "do": [{"a": {"for": None, "do": None}}, {"b": {"try": None, "catch": None}}],
    },
    {
        "document": HEADER,
        "do": [{"a": {"listen": {"to": {"any": None, "until": {"any": [None]}}}}}],
    },
    {"document": HEADER, "do": [{"a": {"listen": {"to": {"one": {"correlate": {"k": None}}}}}}]},
    {"document": HEADER, "do": [{"a": {"call": None}}, {"b": {"call": "http", "with": None}}]},
    {
        "document": HEADER,
        "do": [{"a": {"call": "http", "with": {"endpoint": {"authentication": 5}}}}],
    },
    {"document": HEADER, "do": [{"a": {"run": None}}, {"b": {"run": {"workflow": None}}}]},
    {"document": HEADER, "do": [{"a": {"raise": None}}, {"b": {"emit": {"event": None}}}]},
    {"document": HEADER, "do": [{"a": {"set": {"x": 1}, "then": 5, "if": 3, "input": "x"}}]},
    {
        "document": HEADER,
        "do": [],
        "use": {"functions": {"f": None}, "retries": [], "secrets": "s"},
    },
    {"document": HEADER, "do": [], "use": {"authentications": {"a": {"basic": None, "bearer": 1}}}},
    {"document": HEADER, "do": [], "schedule": {"on": None, "every": {}}, "timeout": 7},
    {"document": {**HEADER, "dsl": 1.0}, "do": [{"a": {"wait": {"seconds": 2**70}}}]},
    {"document": HEADER, "do": [{"a": {"wait": "P99999999999999999999D"}}]},
    {"document": HEADER, "do": [{"": {"set": {"": ""}}}, {"a.b": {"set": {"$": "${ . }"}}}]},
    {"document": HEADER, "do": [{"a": {"for": {"in": ".x", "each": 5, "at": None}, "do": []}}]},
    {"document": HEADER, "do": [{"a": {"try": [], "catch": {"as": [], "retry": 5, "do": 5}}}]},
    {"document": HEADER, "do": [{"a": {"fork": {"branches": [None, {"b": {"wait": 5}}]}}}]},
    _deep(MAX_DEPTH),
]


def _assert_never_raises(data: Any) -> list[Issue]:
    issues = validate_document(data)
    assert isinstance(issues, list)
    assert all(isinstance(issue, Issue) and issue.path and issue.message for issue in issues)
    if isinstance(data, dict):
        # A clean bill of health means the interpreter can load it.
        try:
            load_document(data)
        except DocumentError:
            assert issues, "load_document failed on a document validate_document accepted"
    return issues


@pytest.mark.parametrize("data", NASTY, ids=range(len(NASTY)))
def test_nasty_inputs(data: Any) -> None:
    assert _assert_never_raises(data)


def test_reasonable_nesting_is_fine() -> None:
    assert validate_document(_deep(40)) == []


def test_too_deep_is_one_issue() -> None:
    assert [str(issue) for issue in validate_document(_deep(MAX_DEPTH))] == [
        f"(root): document is nested more than {MAX_DEPTH} levels deep"
    ]


def test_cyclic_input_does_not_hang() -> None:
    data: dict[str, Any] = {"document": HEADER, "do": []}
    data["do"].append({"loop": data})
    assert validate_document(data)


def _nodes(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _nodes(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _nodes(child, (*path, index))
    return found


def _mutate(document: Any, rng: random.Random) -> Any:
    document = copy.deepcopy(document)
    nodes = _nodes(document)[1:]
    if not nodes:
        return copy.deepcopy(rng.choice(EXAMPLES))
    path = rng.choice(nodes)
    parent = document
    for part in path[:-1]:
        parent = parent[part]
    key = path[-1]
    action = rng.randrange(4)
    if action == 0:
        parent[key] = copy.deepcopy(rng.choice(SCALARS))
    elif action == 1:
        del parent[key]
    elif action == 2 and isinstance(parent, list):
        parent.insert(key, copy.deepcopy(parent[key]))
    else:
        parent[key] = {"set": {"x": 1}} if rng.random() < 0.5 else [parent[key]]
    return document


def test_random_mutations_of_the_examples() -> None:
    rng = random.Random(20240601)
    for _ in range(600):
        document = rng.choice(EXAMPLES)
        for _ in range(rng.randint(1, 4)):
            document = _mutate(document, rng)
        _assert_never_raises(document)
