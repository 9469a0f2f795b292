"""The interpreter walks the typed document model, so the model must keep everything the
engine reads: every sample, every conformance-kit document and every document a recorded
history ran loads and dumps back to exactly what was written (`$task.definition` is such
a dump), and `plan.prepare` validates and loads a document once."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from gherkin.parser import Parser
from gherkin.token_scanner import TokenScanner
from histories import HISTORY_DIR

from tflow_devstack.tools import REPO_ROOT
from tflow_workers.dsl.models import named_tasks
from tflow_workers.dsl.yamlio import load_yaml, load_yaml_all
from tflow_workers.engine import plan
from tflow_workers.engine.model import WORKFLOW_TYPE


def _samples() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted((REPO_ROOT / "manifests" / "samples").glob("*.yaml")):
        for item in load_yaml_all(path.read_text()):
            if isinstance(item, dict) and item.get("kind") == "WorkflowDefinition":
                found.append((path.stem, item["spec"]["workflow"]))
    return found


def _ctk() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted((REPO_ROOT / "tests" / "data" / "ctk").glob("*.feature")):
        feature: Any = Parser().parse(TokenScanner(path.read_text(encoding="utf-8")))
        for child in feature["feature"]["children"]:
            for step in (child.get("scenario") or {}).get("steps", []):
                doc = step.get("docString", {}).get("content")
                value = load_yaml(doc) if doc else None
                if isinstance(value, dict) and "document" in value:
                    found.append((f"{path.stem}: {child['scenario']['name']}", value))
    return found


def _histories() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(HISTORY_DIR.glob("*.json")):
        started = json.loads(path.read_text())["events"][0][
            "workflowExecutionStartedEventAttributes"
        ]
        if started["workflowType"]["name"] != WORKFLOW_TYPE:
            continue  # the root orchestrator's runs carry events, not documents
        payload = started["input"]["payloads"][0]
        found.append((path.stem, json.loads(base64.b64decode(payload["data"]))["document"]))
    return found


DOCUMENTS = _samples() + _ctk() + _histories()


def test_every_source_of_documents_is_read() -> None:
    assert len(_samples()) >= 4
    assert len(_ctk()) >= 20
    assert len(_histories()) >= 5


@pytest.mark.parametrize(("name", "document"), DOCUMENTS, ids=[n for n, _ in DOCUMENTS])
def test_the_model_round_trips_the_document(name: str, document: dict[str, Any]) -> None:
    prepared = plan.prepare(document)
    assert prepared.problems == (), prepared.problems
    assert prepared.model is not None
    dumped = prepared.model.model_dump(mode="json", by_alias=True, exclude_unset=True)
    assert dumped == document
    for index, (task_name, task) in enumerate(named_tasks(prepared.model.do)):
        assert prepared.definition(task) == document["do"][index][task_name]


def test_a_document_is_prepared_once() -> None:
    document = {
        "document": {"dsl": "1.0.0", "namespace": "t", "name": "once", "version": "1.0.0"},
        "do": [{"greet": {"set": {"hello": "${ .name }"}, "then": "end"}}],
    }
    first = plan.prepare(document)
    assert plan.prepare(json.loads(json.dumps(document))) is first
    assert first.model is not None
    ((_, task),) = named_tasks(first.model.do)
    assert first.definition(task) is first.definition(task)


def test_an_invalid_document_keeps_its_problems() -> None:
    document = {
        "document": {"dsl": "1.0.0", "namespace": "t", "name": "bad", "version": "1.0.0"},
        "do": [{"go": {"set": {"a": 1}, "then": "nowhere"}}],
    }
    prepared = plan.prepare(document)
    assert prepared.model is not None  # structurally sound: a resumed run could go on
    assert any("nowhere" in problem for problem in prepared.problems)
    assert plan.prepare({"do": "nothing"}).model is None
