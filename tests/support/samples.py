"""Loading the sample manifests the way the operator and workers see them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tflow_devstack.tools import REPO_ROOT
from tflow_workers.dsl.yamlio import load_yaml_all
from tflow_workers.engine.catalog import Function, load_reference, parse_specs

SAMPLES = REPO_ROOT / "manifests" / "samples"


def manifest(name: str) -> dict[str, Any]:
    for doc in load_yaml_all((SAMPLES / name).read_text()):
        if isinstance(doc, dict) and doc.get("kind") == "WorkflowDefinition":
            return doc
    raise LookupError(f"no WorkflowDefinition in {name}")


def document(name: str) -> dict[str, Any]:
    workflow: dict[str, Any] = manifest(name)["spec"]["workflow"]
    return workflow


def functions(name: str) -> dict[str, Function]:
    """The custom functions a sample's workers register (its TFLOW_FUNCTIONS env)."""
    env = manifest(name)["spec"].get("workers", {}).get("env", [])
    specs = [e["value"] for e in env if e["name"] == "TFLOW_FUNCTIONS"]
    return {n: load_reference(ref) for n, ref in parse_specs(specs).items()}


def publish(names: list[str], directory: Path) -> None:
    """Copy sample manifests where `run: workflow` resolves definitions from."""
    for name in names:
        (directory / name).write_text((SAMPLES / name).read_text())
