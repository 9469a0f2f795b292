"""Custom resources as the apiserver hands them to the operator, for the operator's unit
tests (no apiserver there)."""

from __future__ import annotations

import copy
from typing import Any

WORKFLOW: dict[str, Any] = {
    "document": {"dsl": "1.0.0", "namespace": "t", "name": "w", "version": "3.1.0"},
    "do": [{"a": {"set": {"x": 1}}}],
}


def definition_body(
    name: str,
    queue: str = "q",
    namespace: str = "ns",
    created: str = "2026-01-01T00:00:00Z",
    workflow: dict[str, Any] | None = None,
    workers: dict[str, Any] | None = None,
    generation: int = 1,
    **extra: Any,
) -> dict[str, Any]:
    """A WorkflowDefinition with `extra` in its metadata (a copy of WORKFLOW by default)."""
    return {
        "apiVersion": "temporalflow.dev/v1alpha1",
        "kind": "WorkflowDefinition",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"uid-{namespace}-{name}",
            "generation": generation,
            "creationTimestamp": created,
            **extra,
        },
        "spec": {
            "taskQueue": queue,
            "workers": workers or {},
            "workflow": copy.deepcopy(workflow or WORKFLOW),
        },
    }
