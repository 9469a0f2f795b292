"""Matching events against the compiled routing table, and storing the table."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path
from typing import Any

import pytest

from tflow_workers.routing import (
    ROUTING_INDEX,
    CompiledRoute,
    RouteError,
    Router,
    RoutingTable,
    TableOutOfSync,
    check_route_expressions,
    load_table,
    routing_index,
    split_for_configmap,
    table_fingerprint,
)


def route(name: str, **kw: object) -> CompiledRoute:
    base: dict[str, object] = {
        "namespace": "ops",
        "name": name,
        "workflow": "incident",
        "task_queue": "incidents",
    }
    return CompiledRoute.model_validate({**base, **kw})


def test_an_indexed_table_loads_only_when_every_shard_matches(tmp_path: Path) -> None:
    """Shards of one table projected from several ConfigMaps: the kubelet may show some
    of the next table's shards before the rest, which must not load as a table."""
    old = RoutingTable(routes=[route(f"r{i:05d}", type=f"t{i}") for i in range(6000)])
    new = RoutingTable(routes=[route(f"r{i:05d}", type=f"u{i}") for i in range(6000)])
    old_files = split_for_configmap(old, limit_bytes=16 * 1024)
    new_files = split_for_configmap(new, limit_bytes=16 * 1024)
    assert len(old_files) == len(new_files) > 2

    def project(files: dict[str, bytes], table: RoutingTable) -> None:
        for name, body in files.items():
            (tmp_path / name).write_bytes(body)
        (tmp_path / ROUTING_INDEX).write_bytes(routing_index(files, table))

    project(old_files, old)
    assert load_table(tmp_path).content_hash() == old.content_hash()
    before = table_fingerprint(tmp_path)

    # The new index and one new shard are there, the other shards are still the old ones.
    first = sorted(new_files)[0]
    (tmp_path / first).write_bytes(new_files[first])
    (tmp_path / ROUTING_INDEX).write_bytes(routing_index(new_files, new))
    assert table_fingerprint(tmp_path) != before
    with pytest.raises(TableOutOfSync, match="not yet the one"):
        load_table(tmp_path)

    project(new_files, new)
    assert load_table(tmp_path).content_hash() == new.content_hash()
    # A shard the index names is missing altogether.
    (tmp_path / sorted(new_files)[-1]).unlink()
    with pytest.raises(TableOutOfSync, match="not there yet"):
        load_table(tmp_path)
    # A file of an older, larger table that the index does not name is not read.
    (tmp_path / sorted(new_files)[-1]).write_bytes(new_files[sorted(new_files)[-1]])
    (tmp_path / "routes-999.json.gz").write_bytes(old_files[sorted(old_files)[0]])
    assert load_table(tmp_path).content_hash() == new.content_hash()


def event(**kw: object) -> dict[str, object]:
    return {
        "specversion": "1.0",
        "id": "e1",
        "source": "monitoring",
        "type": "incident",
        "data": {"message": "down"},
        **kw,
    }


def test_type_and_source_routes_to_one_workflow_start_it_once() -> None:
    router = Router(
        RoutingTable(
            routes=[
                route("by-type", type="incident", priority=1, input="${ {why: .data.message} }"),
                route("by-source", source="monitoring", priority=5),
            ]
        )
    )
    matches = router.match(event())
    assert [(m.route.name, m.input) for m in matches] == [("by-source", {"message": "down"})]


def test_every_matching_definition_starts_highest_priority_first() -> None:
    router = Router(
        RoutingTable(
            routes=[
                route(
                    "docs",
                    type="document-added",
                    workflow="document-processing",
                    priority=1,
                    filter='${ .data.key | endswith(".pdf") }',
                    input="${ {uri: .data.documentUri} }",
                ),
                route("audit", source="s3", workflow="audit", priority=10),
                route("other", type="document-removed", workflow="cleanup"),
            ]
        )
    )
    pdf = event(
        type="document-added", source="s3", data={"key": "a/b.pdf", "documentUri": "s3://x/a/b.pdf"}
    )
    assert [(m.route.workflow, m.input) for m in router.match(pdf)] == [
        ("audit", {"key": "a/b.pdf", "documentUri": "s3://x/a/b.pdf"}),
        ("document-processing", {"uri": "s3://x/a/b.pdf"}),
    ]
    txt = event(type="document-added", source="s3", data={"key": "a.txt"})
    assert [m.route.workflow for m in router.match(txt)] == ["audit"]
    assert router.match(event(type="unknown", source="nowhere")) == []


def test_a_filter_that_fails_names_the_route() -> None:
    router = Router(RoutingTable(routes=[route("bad", filter="${ .data.n + 1 }")]))
    with pytest.raises(RouteError, match="route ops/bad:"):
        router.match(event(data={"n": "text"}))


def test_route_expressions_are_checked() -> None:
    assert check_route_expressions("${ .a | nosuch }", "${ {a: .b} }")[0].startswith(
        "spec.match.filter:"
    )
    assert check_route_expressions(None, "${ {a: .b} }") == []


def test_table_is_deterministic_and_loads_split_and_compressed(tmp_path: Path) -> None:
    routes = [
        route(f"r{i:05d}", type=f"t{i % 50}", source=f"s{i}", input="${ {n: .data} }")
        for i in range(12000)
    ]
    shuffled = list(routes)
    random.Random(1).shuffle(shuffled)
    table = RoutingTable(routes=routes)
    assert table.to_json() == RoutingTable(routes=shuffled).to_json()
    assert table.content_hash() == RoutingTable(routes=shuffled).content_hash()

    files = split_for_configmap(table, limit_bytes=64 * 1024)
    assert len(files) > 1
    assert all(len(b) <= 64 * 1024 for b in files.values())
    for name, body in files.items():
        (tmp_path / name).write_bytes(body)
    assert load_table(tmp_path).to_json() == table.to_json()

    small = split_for_configmap(RoutingTable(routes=routes[:3]))
    assert list(small) == ["routes.json"]
    assert json.loads(small["routes.json"])["routes"][0]["name"] == "r00000"
    medium = split_for_configmap(RoutingTable(routes=routes[:3000]), limit_bytes=300 * 1024)
    assert list(medium) == ["routes.json.gz"]
    assert RoutingTable.model_validate_json(gzip.decompress(medium["routes.json.gz"]))


def test_an_event_sees_its_namespace_and_routes_that_both_sides_opted_into() -> None:
    def route(namespace: str, **kw: Any) -> CompiledRoute:
        return CompiledRoute(
            namespace=namespace, name="r", type="t", workflow="w", task_queue="q", **kw
        )

    router = Router(
        RoutingTable(routes=[route("a"), route("b"), route("c", from_namespaces=("a",))])
    )
    event = {"type": "t", "source": "s", "id": "1"}

    def seen(namespace: str | None, share_with: tuple[str, ...] = ()) -> list[str]:
        return sorted(m.route.namespace for m in router.match(event, False, namespace, share_with))

    assert seen("a") == ["a"]
    assert seen("a", ("b",)) == ["a"]  # b's route did not opt in
    assert seen("a", ("c",)) == ["a", "c"]
    assert seen("b", ("c",)) == ["b"]  # c accepts a's events, not b's
    assert seen(None) == ["a", "b", "c"]  # sent by hand through Temporal: as before
    # Tables without cross-namespace routes serialise exactly as before.
    assert "from_namespaces" not in RoutingTable(routes=[route("a")]).to_json()
