"""The CRD reference (``docs/crd-reference.md``): per kind its names, ``kubectl get``
columns, rules and fields, rendered in Markdown from the same schemas as the CRDs."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tflow_operator.api.common import GROUP, VERSION
from tflow_operator.api.crds import GENERATED_HEADER, KINDS, version_schema


@dataclass(frozen=True)
class _Row:
    path: str
    type: str
    default: str
    description: str


def _type_label(node: Mapping[str, Any]) -> str:
    kind = node.get("type")
    if kind == "array":
        return "[]" + _type_label(node.get("items", {}))
    if kind == "object":
        if "additionalProperties" in node:
            return "map[string]" + _type_label(node["additionalProperties"])
        if node.get("x-kubernetes-preserve-unknown-fields"):
            return "object (free-form)" if "properties" not in node else "object (open)"
        return "object"
    if kind is None:
        return "any"
    fmt = node.get("format")
    if fmt == "date-time":
        return "string (date-time)"
    if kind == "integer" and fmt:
        return f"integer ({fmt})"
    return str(kind)


def _constraints(node: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    if "enum" in node:
        out.append("One of: " + ", ".join(f"`{v}`" for v in node["enum"]) + ".")
    for key, label in (
        ("minimum", "Minimum"),
        ("maximum", "Maximum"),
        ("minLength", "Min length"),
        ("maxLength", "Max length"),
        ("minItems", "Min items"),
        ("maxItems", "Max items"),
    ):
        if key in node:
            out.append(f"{label}: {node[key]}.")
    if "pattern" in node and len(node["pattern"]) <= 80:  # longer ones are explained in words
        out.append(f"Pattern: `{node['pattern']}`.")
    for rule in node.get("x-kubernetes-validations", []):
        out.append(f"Rule: {rule['message']}.")
    return out


def _rows(node: Mapping[str, Any], path: str) -> Iterator[_Row]:
    required = set(node.get("required", []))
    for name, sub in node.get("properties", {}).items():
        here = f"{path}.{name}"
        text = " ".join(sub.get("description", "").split())
        parts = (["**Required.**"] if name in required else []) + [text, *_constraints(sub)]
        default = f"`{json.dumps(sub['default'])}`" if "default" in sub else ""
        yield _Row(here, _type_label(sub), default, " ".join(p for p in parts if p))
        if sub.get("type") == "object":
            yield from _rows(sub, here)
        elif sub.get("type") == "array":
            yield from _rows(sub.get("items", {}), here + "[]")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(rows: Sequence[_Row]) -> list[str]:
    lines = ["| Field | Type | Default | Description |", "|---|---|---|---|"]
    for row in rows:
        cells = (f"`{row.path}`", row.type, row.default, row.description)
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return lines


def render_docs() -> str:
    """The CRD reference in Markdown: per kind, its names, columns, rules and fields."""
    lines = [
        f"<!-- {GENERATED_HEADER}; source: tflow_operator.api -->",
        "",
        "# CRD reference",
        "",
        f"Group `{GROUP}`, version `{VERSION}`. All kinds are namespaced and belong to the "
        f"category `{KINDS[0].names.categories[0]}` (`kubectl get "
        f"{KINDS[0].names.categories[0]}` lists them all).",
        "",
        "Generated from the pydantic models in `operator/tflow_operator/api/` together with "
        "`crds/`: regenerate both with `make crds`; `crdgen --check` fails while either is "
        "out of date.",
        "",
    ]
    for kind in KINDS:
        names = kind.names
        schema = version_schema(kind)
        spec, status = schema["properties"]["spec"], schema["properties"]["status"]
        lines += [
            f"## {names.kind}",
            "",
            schema["description"],
            "",
            f"- Plural: `{names.plural}`, singular: `{names.singular}`, short names: "
            + ", ".join(f"`{s}`" for s in names.short_names),
            f"- CRD: `crds/{kind.filename}`",
            "- `kubectl get` columns: "
            + ", ".join(c.name + (" (wide)" if c.priority else "") for c in kind.columns),
            "",
            "### spec",
            "",
            spec.get("description", ""),
            "",
            *_table(list(_rows(spec, "spec"))),
            "",
            "### status",
            "",
            status.get("description", ""),
            "",
            *_table(list(_rows(status, "status"))),
            "",
        ]
    return "\n".join(lines).rstrip("\n") + "\n"
