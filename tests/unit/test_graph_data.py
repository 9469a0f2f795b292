"""The graph as data (what the web UI lays out): every task node names the JSON pointer of
its task, which resolves in the document to a task of that name, and nested bodies sit in
their clusters; checked on every sample and converted seed document."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tflow_cli.ui.runs import task_at
from tflow_devstack.tools import REPO_ROOT
from tflow_workers.convert import convert
from tflow_workers.dsl.yamlio import load_yaml, load_yaml_all
from tflow_workers.graph import to_data

SAMPLES = REPO_ROOT / "manifests" / "samples"
INPUTS = Path(__file__).parent / "convert" / "inputs"


def _documents() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(SAMPLES.glob("*-workflow.yaml")):
        for doc in load_yaml_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "WorkflowDefinition":
                found.append((path.name, doc["spec"]["workflow"]))
    for name in ("abandoned-cart.steps.json", "diamond.graph.json", "flov7-graph.json"):
        found.append((name, convert(load_yaml((INPUTS / name).read_text()), "auto")))
    return found


@pytest.mark.parametrize(("name", "document"), _documents(), ids=lambda v: str(v)[:40])
def test_every_task_node_points_at_its_task(name: str, document: dict[str, Any]) -> None:
    data = to_data(document)
    clusters = {c["id"] for c in data["clusters"]}
    tasks = [n for n in data["nodes"] if n["shape"] in ("task", "switch")]
    assert tasks, name
    for node in tasks:
        *_, task_name = node["reference"].split("/")
        assert task_name == node["name"], node
        assert task_at(document, node["reference"]) is not None, node
        assert node["parent"] is None or node["parent"] in clusters, node
    for node in data["nodes"]:
        if node["shape"] == "catch":
            assert node["reference"].endswith("/catch")
            assert isinstance(task_at(document, node["reference"]), dict)
    ids = {n["id"] for n in data["nodes"]}
    assert all(e["source"] in ids and e["target"] in ids for e in data["edges"])


def test_nested_references_follow_the_interpreter() -> None:
    document = {
        "document": {"dsl": "1.0.0", "namespace": "t", "name": "n", "version": "1.0.0"},
        "do": [
            {"loop": {"for": {"in": "${ . }"}, "do": [{"inner": {"set": {}}}]}},
            {"split": {"fork": {"branches": [{"a": {"set": {}}}, {"b": {"set": {}}}]}}},
            {"guard": {"try": [{"risky": {"set": {}}}], "catch": {"do": [{"fix": {"set": {}}}]}}},
        ],
    }
    references = {n["name"]: n["reference"] for n in to_data(document)["nodes"]}
    assert references["inner"] == "/do/0/loop/do/0/inner"
    assert references["b"] == "/do/1/split/fork/branches/1/b"
    assert references["risky"] == "/do/2/guard/try/0/risky"
    assert references["fix"] == "/do/2/guard/catch/do/0/fix"
    assert references["Start"] == ""
    assert references["End"] == ""
