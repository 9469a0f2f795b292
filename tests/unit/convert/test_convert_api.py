"""`convert()`: format detection, names, errors, the seed-format samples and the command
line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tflow_workers.convert import ConversionError, convert, detect_format
from tflow_workers.convert.__main__ import main
from tflow_workers.dsl.yamlio import load_yaml
from tflow_workers.graph import to_mermaid

INPUTS = Path(__file__).parent / "inputs"
SEED_SAMPLES = Path(__file__).resolve().parents[3] / "manifests" / "samples" / "seed-formats"

STEPS: dict[str, Any] = {"steps": {"only": {"node": "send_message"}}}
GRAPH: dict[str, Any] = {"nodes": [{"id": "only", "type": "delay", "data": {"delay_seconds": 1}}]}


def test_conversion_error_is_a_value_error_with_a_path() -> None:
    error = ConversionError("$.steps.a.go_to", "bad")
    assert isinstance(error, ValueError)
    assert error.path == "$.steps.a.go_to"
    assert error.reason == "bad"
    assert str(error) == "$.steps.a.go_to: bad"


def test_format_is_detected() -> None:
    assert detect_format(STEPS) == "poc-steps"
    assert detect_format(GRAPH) == "node-graph"
    assert detect_format({"nodes": [], "edges": []}) == "node-graph"
    assert convert(STEPS)["document"]["tags"] == {"converted-from": "poc-steps"}
    assert convert(GRAPH)["document"]["tags"] == {"converted-from": "node-graph"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({**STEPS, **GRAPH}, "ambiguous input"),
        ({"tasks": []}, "unrecognised input"),
        ([], "expected an object"),
    ],
)
def test_undetectable_input_is_rejected(data: Any, message: str) -> None:
    with pytest.raises(ConversionError, match=rf"^\$: {message}"):
        convert(data)


def test_explicit_format_is_used_as_given() -> None:
    assert convert({**STEPS, **GRAPH}, "node-graph")["do"][0]["only"]["wait"] == "PT1S"
    with pytest.raises(ConversionError, match=r"^\$\.nodes: unknown step map field 'nodes'"):
        convert(GRAPH, "poc-steps")
    with pytest.raises(ConversionError, match=r"^\$\.nodes: expected a non-empty list"):
        convert(STEPS, "node-graph")
    with pytest.raises(ConversionError, match=r"^fmt: unknown format 'bpmn'"):
        convert(STEPS, "bpmn")  # type: ignore[arg-type]


def test_name_and_namespace() -> None:
    named = convert(STEPS, name="Abandoned-Cart", namespace="shop")["document"]
    assert (named["name"], named["namespace"]) == ("Abandoned-Cart", "shop")
    assert convert(STEPS)["document"]["name"] == "steps-workflow"
    assert convert(GRAPH)["document"]["name"] == "graph-workflow"
    derived = convert({**GRAPH, "id": "wf_001", "name": "  Test  Workflow! "})["document"]
    assert derived["name"] == "test-workflow"
    assert derived["title"] == "  Test  Workflow! "
    assert convert({**GRAPH, "id": "WF_001"})["document"]["name"] == "wf-001"
    assert convert({**STEPS, "version": "2.1.0"})["document"]["version"] == "2.1.0"


@pytest.mark.parametrize(
    ("kwargs", "path"),
    [({"name": "not valid"}, "name"), ({"namespace": "-bad-"}, "namespace")],
)
def test_invalid_names_are_rejected(kwargs: dict[str, str], path: str) -> None:
    with pytest.raises(ConversionError) as caught:
        convert(STEPS, **kwargs)  # type: ignore[arg-type]
    assert caught.value.path == path


def _task_names(tasks: list[dict[str, Any]]) -> list[str]:
    names: list[str] = []
    for entry in tasks:
        ((name, task),) = entry.items()
        names.append(name)
        for nested in (task.get("do"), task.get("try"), task.get("fork", {}).get("branches")):
            if isinstance(nested, list):
                names.extend(_task_names(nested))
        if isinstance(task.get("catch"), dict):
            names.extend(_task_names(task["catch"].get("do", [])))
    return names


@pytest.mark.parametrize("path", sorted(SEED_SAMPLES.iterdir()), ids=lambda p: p.name)
def test_seed_format_samples_convert(path: Path) -> None:
    data = load_yaml(path.read_text(encoding="utf-8"))
    document = convert(data, name=path.name.split(".")[0])
    assert document["document"]["dsl"] == "1.0.0"
    picture = to_mermaid(document)
    for name in _task_names(document["do"]):
        assert f'"{name}<br/>' in picture


def test_cli_prints_the_document_as_yaml(capsys: pytest.CaptureFixture[str]) -> None:
    source = str(INPUTS / "abandoned-cart.steps.json")
    assert main([source, "--name", "abandoned-cart", "--namespace", "samples"]) == 0
    printed = load_yaml(capsys.readouterr().out)
    expected = load_yaml((INPUTS / "abandoned-cart.sw.yaml").read_text(encoding="utf-8"))
    assert printed == expected


def test_cli_draws_pictures(capsys: pytest.CaptureFixture[str]) -> None:
    source = str(INPUTS / "diamond.graph.json")
    assert main([source, "--mermaid"]) == 0
    assert capsys.readouterr().out.startswith("flowchart TD\n")
    assert main([source, "--svg"]) == 0
    assert capsys.readouterr().out.startswith("<svg ")


def test_cli_reports_conversion_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    source = tmp_path / "bad.json"
    source.write_text(json.dumps({"steps": {"a": {"node": "x", "go_to": "b"}}}), "utf-8")
    assert main([str(source)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "error: $.steps.a.go_to: step 'a' goes to unknown step 'b'\n"
