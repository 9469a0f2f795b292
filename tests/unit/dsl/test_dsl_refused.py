"""Features the engine does not run are refused by name at validation, before any run
starts; data schemas are checked as JSON Schemas there too."""

from __future__ import annotations

from typing import Any

from tflow_workers.dsl.validate import validate_document

HEADER = {"dsl": "1.0.0", "namespace": "test", "name": "flow", "version": "1.0.0"}


def problems(*tasks: dict[str, Any], **extra: Any) -> list[str]:
    data = {"document": dict(HEADER), "do": list(tasks), **extra}
    return [str(issue) for issue in validate_document(data)]


def test_a_function_definition_called_by_uri_is_refused() -> None:
    assert problems(
        {"f": {"call": "https://example.com/functions/greet.yaml", "with": {"a": 1}}}
    ) == [
        "do[0].f.call: cataloged functions (name:version@catalog, or a function "
        "definition's URI) are not supported yet; define the function in use.functions"
    ]


def test_schedule_after_is_refused() -> None:
    assert problems({"a": {"set": {"x": 1}}}, schedule={"after": "PT1H"}) == [
        "schedule.after: 'schedule.after' is not supported: schedule runs with the "
        "WorkflowDefinition's spec.schedule (cron)"
    ]


def test_an_invalid_schema_document_is_refused_with_its_path() -> None:
    assert problems(
        {"a": {"set": {"x": 1}, "output": {"schema": {"document": {"type": "nope"}}}}}
    ) == [
        "do[0].a.output.schema.document: not a valid JSON Schema at type: "
        "'nope' is not valid under any of the given schemas"
    ]


def test_a_schema_with_an_external_reference_is_refused() -> None:
    found = problems(
        {"a": {"set": {"x": 1}}},
        input={"schema": {"document": {"$ref": "https://example.com/order.json"}}},
    )
    assert found == [
        "input.schema.document: external schema resources are not supported yet; inline "
        "the schema as 'document' ($ref 'https://example.com/order.json')"
    ]


def test_a_valid_schema_with_local_references_passes() -> None:
    schema = {"$defs": {"id": {"type": "string"}}, "properties": {"id": {"$ref": "#/$defs/id"}}}
    assert problems({"a": {"set": {"x": 1}}}, input={"schema": {"document": schema}}) == []
