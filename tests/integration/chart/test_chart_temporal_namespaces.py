"""temporal.namespaces: the chart hands the map to the operator and the root orchestrator
(which hand each namespace's workers and listeners their part), the processes read it
as given, and the schema refuses a map they could not use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from chart import CHART, find, helm, render

from tflow_operator.config import Config
from tflow_workers.temporal_namespaces import TemporalNamespaces

pytestmark = pytest.mark.integration

MAPPING = {"team-a": "tenant-a", "team-b": ["tenant-b", "tenant-b-batch"]}


def env(obj: dict[str, Any]) -> dict[str, str]:
    container = obj["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


def test_the_map_reaches_the_operator_and_the_root_orchestrator(tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({"temporal": {"namespace": "shared", "namespaces": MAPPING}}))
    objects = render(str(values))
    operator = env(find(objects, "Deployment", "operator"))
    orchestrator = env(find(objects, "Deployment", "root-orchestrator"))
    assert operator["TFLOW_TEMPORAL_NAMESPACES"] == orchestrator["TFLOW_TEMPORAL_NAMESPACES"]
    config = Config.from_env(operator)
    assert config.temporal_namespaces.of("team-b") == ("tenant-b", "tenant-b-batch")
    assert config.temporal_namespaces.home("team-a") == "tenant-a"
    assert config.home_temporal_namespace("elsewhere") == "shared"
    # The orchestrator polls the shared namespace and every mapped one.
    assert TemporalNamespaces.from_env(env=orchestrator).all() == (
        "shared",
        "tenant-a",
        "tenant-b",
        "tenant-b-batch",
    )


def test_nothing_mapped_by_default() -> None:
    objects = render()
    for name in ("operator", "root-orchestrator"):
        assert "TFLOW_TEMPORAL_NAMESPACES" not in env(find(objects, "Deployment", name))


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ('{"Team-A": "x"}', "does not match pattern"),
        ('{"team-a": []}', "minItems"),
        ('{"team-a": ["x", "x"]}', "are equal"),
        ('{"team-a": "-bad"}', "does not match pattern"),
    ],
)
def test_the_schema_refuses_a_map_the_processes_cannot_use(mapping: str, message: str) -> None:
    result = helm(
        "template", "x", str(CHART), "--set-json", f"temporal.namespaces={mapping}", check=False
    )
    assert result.returncode != 0
    assert message in result.stderr
