"""The RootOrchestrator's routing activity without a server: the table and definitions
reload when their content changes (and only then), a route whose jq fails does not stop
the others, an unpublished definition is reported, and the workflow's input is decoded
leniently enough that nothing a client sends can wedge it."""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from tflow_workers.cloudevents import RootInput
from tflow_workers.orchestrator.activities import (
    DefinitionSource,
    OrchestratorActivities,
    RoutingTableSource,
    TableUnavailable,
    match_routes,
)
from tflow_workers.orchestrator.model import MatchOutcome, RoutingResult, decide
from tflow_workers.orchestrator.workflow import parse_root_input
from tflow_workers.routing import CompiledRoute, Router, RoutingTable


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def route(name: str, **kw: Any) -> CompiledRoute:
    base: dict[str, Any] = {
        "namespace": "ops",
        "name": name,
        "workflow": "incident",
        "task_queue": "incidents",
    }
    return CompiledRoute.model_validate({**base, **kw})


def write_table(directory: Path, *routes: CompiledRoute, gz: bool = False) -> None:
    body = RoutingTable(routes=list(routes)).to_json().encode()
    if gz:
        (directory / "routes.json.gz").write_bytes(gzip.compress(body))
    else:
        (directory / "routes.json").write_bytes(body)


def define(directory: Path, name: str, namespace: str = "ops", generation: int = 1) -> None:
    manifest = {
        "apiVersion": "temporalflow.dev/v1alpha1",
        "kind": "WorkflowDefinition",
        "metadata": {"name": name, "namespace": namespace, "generation": generation},
        "spec": {
            "taskQueue": "incidents",
            "workflow": {
                "document": {"dsl": "1.0.0", "namespace": "x", "name": f"{name}-doc"},
                "do": [{"noop": {"set": {"ok": True}}}],
            },
        },
    }
    (directory / f"{namespace}-{name}.yaml").write_text(yaml.safe_dump(manifest))


def event(**kw: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": "e1",
        "source": "monitoring",
        "type": "incident",
        "data": {"message": "down", "n": "text"},
        **kw,
    }


def test_table_reloads_only_when_its_content_changes(tmp_path: Path) -> None:
    clock = Clock()
    write_table(tmp_path, route("a"))
    source = RoutingTableSource(tmp_path, reload_interval=1.0, clock=clock)
    router, first = source.current()
    assert [r.name for r in router.table.routes] == ["a"]

    write_table(tmp_path, route("b"))
    # Within the interval the cached table answers without looking at the files.
    assert source.current() == (router, first)
    clock.now = 1.5
    router2, second = source.current()
    assert [r.name for r in router2.table.routes] == ["b"]
    assert second != first
    # Same content again: nothing is rebuilt.
    clock.now = 3.0
    assert source.current()[0] is router2
    assert source.loads == 2


def test_a_broken_table_keeps_the_last_good_one(tmp_path: Path) -> None:
    clock = Clock()
    (tmp_path / "routes.json").write_text("{not json")
    with pytest.raises(TableUnavailable, match="cannot load the routing table"):
        RoutingTableSource(tmp_path, clock=clock).current()

    write_table(tmp_path, route("good"))
    source = RoutingTableSource(tmp_path, clock=clock)
    router, good = source.current()
    (tmp_path / "routes.json").write_text('{"routes": [{"name": "no-namespace"}]}')
    clock.now = 5
    assert source.current() == (router, good)
    write_table(tmp_path, route("fixed"), gz=True)
    os.remove(tmp_path / "routes.json")
    clock.now = 10
    assert [r.name for r in source.current()[0].table.routes] == ["fixed"]


def test_missing_table_directory_routes_nothing(tmp_path: Path) -> None:
    router, _ = RoutingTableSource(tmp_path / "absent").current()
    assert router.match(event()) == []


def test_definitions_by_kubernetes_name_reload_on_change(tmp_path: Path) -> None:
    clock = Clock()
    define(tmp_path, "incident")
    define(tmp_path, "incident", namespace="other", generation=9)
    # A raw document with the same name is not a WorkflowDefinition: routes ignore it.
    (tmp_path / "raw.yaml").write_text(
        yaml.safe_dump({"document": {"name": "audit", "namespace": "ops"}, "do": []})
    )
    source = DefinitionSource(tmp_path, clock=clock)
    found = source.get("ops", "incident")
    assert found is not None
    assert found.definition is not None
    assert (found.definition.namespace, found.definition.version) == ("ops", "1")
    assert source.get("ops", "audit") is None
    # The document's own name is not how routes address definitions.
    assert source.get("ops", "incident-doc") is None

    define(tmp_path, "audit")
    assert source.get("ops", "audit") is None  # not checked again yet
    clock.now = 2
    assert source.get("ops", "audit") is not None
    assert DefinitionSource(None).get("ops", "incident") is None


def test_a_failing_route_is_reported_and_the_others_still_match() -> None:
    router = Router(
        RoutingTable(
            routes=[
                route("bad-filter", filter="${ .data.n + 1 }", priority=9),
                route("bad-input", workflow="audit", input="${ .data.n + 1 }", priority=5),
                route("fallback", priority=1, input="${ {why: .data.message} }"),
                route("other", workflow="page", type="incident"),
            ]
        )
    )
    found = match_routes(router, event())
    assert [(r.name, mapped, bool(error)) for r, mapped, error in found] == [
        ("bad-filter", None, True),
        ("bad-input", None, True),
        # The failed route to `incident` did not claim it: the next one starts it.
        ("fallback", {"why": "down"}, False),
        ("other", {"message": "down", "n": "text"}, False),
    ]
    assert found[0][2].startswith("route ops/bad-filter:")


def test_route_result_carries_documents_and_reports_unpublished_targets(
    tmp_path: Path,
) -> None:
    routes, definitions = tmp_path / "routes", tmp_path / "definitions"
    routes.mkdir()
    definitions.mkdir()
    write_table(
        routes,
        route("incidents", input="${ {why: .data.message} }", priority=2),
        route("audit", workflow="audit", task_queue="audits"),
    )
    define(definitions, "incident")
    result = OrchestratorActivities(routes, definitions).router.route(event())
    assert isinstance(result, RoutingResult)
    assert result.routes == 2
    ok, missing = result.targets
    assert (ok.route, ok.input, ok.error) == ("ops/incidents", {"why": "down"}, None)
    assert ok.document is not None
    assert ok.document["document"]["name"] == "incident-doc"
    assert ok.definition is not None
    assert ok.definition.name == "incident"
    assert missing.error == "route ops/audit: WorkflowDefinition ops/audit is not published"
    assert missing.document is None


def test_an_oversized_run_is_reported_not_started(tmp_path: Path) -> None:
    write_table(tmp_path, route("big", input='${ [range(300000)] | map("xxxxxxxx") }'))
    define(tmp_path, "incident")
    (target,) = OrchestratorActivities(tmp_path, tmp_path).router.route(event()).targets
    assert target.error is not None
    assert target.error.startswith("route ops/big:")
    assert target.document is None


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, RootInput()),
        ({}, RootInput()),
        ({"pending": [{"type": "a"}], "routed": 3}, RootInput(pending=[{"type": "a"}], routed=3)),
        ({"event": {"type": "a"}}, RootInput(event={"type": "a"})),
        # A bare event, as the seed's CLI users and older starters send it.
        (
            {"eventType": "incident", "source": "s"},
            RootInput(event={"eventType": "incident", "source": "s"}),
        ),
    ],
)
def test_root_input_accepts_what_clients_send(given: Any, expected: RootInput) -> None:
    assert parse_root_input(given) == (expected, None)


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ([1, 2], "the input must be a JSON object, got list"),
        ({"routed": "many"}, "not a RootInput: routed: Input should be a valid integer"),
    ],
)
def test_malformed_root_input_is_invalid(given: Any, reason: str) -> None:
    root, decision = parse_root_input(given)
    assert root is None
    assert decision is not None
    assert decision.status == "invalid"
    assert decision.reason is not None
    assert decision.reason.startswith(reason)


def outcome(status: Any, error: str | None = None) -> MatchOutcome:
    return MatchOutcome(
        route="ops/r", workflow="w", namespace="ops", task_queue="q", status=status, error=error
    )


def test_decision_status_and_reason() -> None:
    result = RoutingResult(table="abc", routes=4)
    none = decide([], result, "incident", "monitoring")
    assert (none.status, none.reason) == (
        "unroutable",
        "no route matches type 'incident' from source 'monitoring' (routing table abc, 4 routes)",
    )
    failed = decide([outcome("failed", "route ops/r: boom")], result, "t", "s")
    assert (failed.status, failed.reason) == ("unroutable", "route ops/r: boom")
    mixed = decide([outcome("failed", "route ops/r: boom"), outcome("duplicate")], result, "t", "s")
    assert (mixed.status, mixed.reason) == ("routed", "1 of 2 routes failed: route ops/r: boom")
    assert decide([outcome("started")], result, "t", "s").reason is None
