"""JSON Schema checks of workflow and task data (`input.schema`, `output.schema`,
`export.schema`, inline `document` form).

Pure and deterministic, so the interpreter runs them inside the workflow: `$ref`s resolve
only within the schema itself, never over the network (an empty registry is passed, as
jsonschema would otherwise fetch remote references).
Validators are compiled once per distinct schema.
"""

from __future__ import annotations

import functools
import json
from typing import Any, Final

from jsonschema import exceptions as _jsonschema_errors
from jsonschema import validators
from jsonschema.protocols import Validator
from referencing import Registry
from referencing.exceptions import Unresolvable

__all__ = ["external_references", "schema_document_problem", "schema_errors"]

MAX_REPORTED: Final = 5


@functools.lru_cache(maxsize=512)
def _validator(text: str) -> Validator:
    schema = json.loads(text)
    cls = validators.validator_for(schema)
    validator: Validator = cls(schema, registry=Registry())
    return validator


def _key(schema: Any) -> str:
    return json.dumps(schema, sort_keys=True, separators=(",", ":"))


def schema_document_problem(schema: Any) -> str | None:
    """Why `schema` is not a usable JSON Schema, or None when it is."""
    if isinstance(schema, bool):
        return None
    if not isinstance(schema, dict):
        return "a JSON Schema must be an object or a boolean"
    try:
        validators.validator_for(schema).check_schema(schema)
    except _jsonschema_errors.SchemaError as error:
        where = "/".join(str(p) for p in error.absolute_path)
        return f"not a valid JSON Schema{f' at {where}' if where else ''}: {error.message}"
    return None


def external_references(schema: Any) -> list[str]:
    """The `$ref`s of `schema` that point outside it (they would need a fetch)."""
    found: list[str] = []
    stack = [schema]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            ref = item.get("$ref")
            if isinstance(ref, str) and not ref.startswith("#"):
                found.append(ref)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def schema_errors(schema: Any, value: Any) -> list[str]:
    """How `value` fails `schema`, each as `<JSON pointer>: <message>`; empty when valid."""
    try:
        found = sorted(
            _validator(_key(schema)).iter_errors(value), key=lambda e: list(e.absolute_path)
        )
    except Unresolvable as unresolvable:
        return [f"schema reference cannot be resolved: {unresolvable}"]
    problems = []
    for error in found[:MAX_REPORTED]:
        pointer = "".join(f"/{part}" for part in error.absolute_path) or "/"
        problems.append(f"{pointer}: {error.message}")
    if len(found) > MAX_REPORTED:
        problems.append(f"... and {len(found) - MAX_REPORTED} more")
    return problems
