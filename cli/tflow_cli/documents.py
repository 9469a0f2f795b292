"""Reading documents from files: raw Serverless Workflow documents, WorkflowDefinition
manifests, multi-document YAML with other kinds in it, or JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class DocumentFileError(ValueError):
    """A file that cannot be read as documents; the message names the file."""


@dataclass(frozen=True)
class Found:
    """One workflow document found in a file."""

    source: str  # file and position, for messages: `flows.yaml#2`
    document: dict[str, Any]
    manifest: dict[str, Any] | None  # the WorkflowDefinition it came from, if any


def load_all(path: Path) -> list[Any]:
    # Imported when a file is read: the DSL package (its document models above all) is
    # most of `tflow`'s start-up, and the commands that read no document should not pay it.
    from tflow_workers.dsl.yamlio import YamlError, load_yaml_all

    try:
        text = path.read_text()
    except OSError as err:
        raise DocumentFileError(f"{path}: {err.strerror or err}") from None
    try:
        if path.suffix == ".json":
            return [json.loads(text)]
        return load_yaml_all(text)
    except (YamlError, json.JSONDecodeError) as err:
        raise DocumentFileError(f"{path}: not valid YAML/JSON: {err}") from None


def workflows_in(path: Path) -> tuple[list[Found], list[str]]:
    """The workflow documents in a file, and a note for every other object skipped."""
    found: list[Found] = []
    skipped: list[str] = []
    docs = load_all(path)
    for i, doc in enumerate(docs):
        where = f"{path}#{i + 1}" if len(docs) > 1 else str(path)
        if not isinstance(doc, dict):
            skipped.append(f"{where}: not a mapping")
        elif doc.get("kind") == "WorkflowDefinition":
            workflow = (doc.get("spec") or {}).get("workflow")
            if not isinstance(workflow, dict):
                raise DocumentFileError(f"{where}: spec.workflow is missing or not a mapping")
            found.append(Found(where, workflow, doc))
        elif "kind" in doc:
            skipped.append(f"{where}: {doc['kind']} (not a workflow)")
        elif "document" in doc or "do" in doc:
            found.append(Found(where, doc, None))
        else:
            skipped.append(f"{where}: not a Serverless Workflow document")
    return found, skipped


def single_workflow(path: Path) -> Found:
    found, _ = workflows_in(path)
    if not found:
        raise DocumentFileError(f"{path}: no workflow document (or WorkflowDefinition) in it")
    if len(found) > 1:
        raise DocumentFileError(
            f"{path}: {len(found)} workflow documents in it; this command takes one"
        )
    return found[0]
