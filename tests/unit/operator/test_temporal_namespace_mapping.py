"""The operator follows the map of Kubernetes to Temporal namespaces: what a definition
may ask for, one Temporal namespace per task queue, the worker pods' and KEDA's
namespace, the routing table's targets, the listener pods' namespace; nothing changes
when nothing is mapped."""

from __future__ import annotations

import copy
import dataclasses
import json
import random
from typing import Any

from tflow_operator.api.listener import ListenerSpec
from tflow_operator.config import Config
from tflow_operator.configmaps import compile_routes
from tflow_operator.listener_children import listener_deployment
from tflow_operator.model import (
    REASON_TASK_QUEUE_CONFLICT,
    REASON_TEMPORAL_NAMESPACE,
    DefinitionInfo,
    definition_info,
    queue_facts,
    route_info,
    temporal_namespace_of,
)
from tflow_operator.runtime import KopfIndices
from tflow_operator.workers import merge_settings, worker_deployment, worker_scaled_object

WORKFLOW: dict[str, Any] = {
    "document": {"dsl": "1.0.0", "namespace": "t", "name": "w", "version": "1.0.0"},
    "do": [{"a": {"set": {"x": 1}}}],
}
MAPPING = {"team-a": "tenant-a", "team-b": ["tenant-b", "tenant-b-batch"]}
CONFIG = Config.from_env(
    {
        "TEMPORAL_NAMESPACE": "shared",
        "TFLOW_TEMPORAL_NAMESPACES": json.dumps(MAPPING),
        "TFLOW_WORKER_IMAGE": "worker:1",
    }
)


def info(
    name: str,
    namespace: str,
    queue: str = "q",
    created: str = "2026-01-01T00:00:00Z",
    **spec: Any,
) -> DefinitionInfo:
    return definition_info(
        {
            "metadata": {
                "name": name,
                "namespace": namespace,
                "uid": f"uid-{namespace}-{name}",
                "generation": 1,
                "creationTimestamp": created,
            },
            "spec": {"taskQueue": queue, "workflow": copy.deepcopy(WORKFLOW), **spec},
        }
    )


def indices_of(*definitions: DefinitionInfo, config: Config = CONFIG) -> KopfIndices:
    index: dict[Any, list[DefinitionInfo]] = {}
    for d in definitions:
        index.setdefault(("name", d.namespace, d.name), []).append(d)
        index.setdefault(("queue", d.task_queue), []).append(d)
    return KopfIndices(
        definitions=index,
        router_task_queue="router",
        temporal_namespaces=config.temporal_namespaces,
    )


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container["env"]}


def test_a_definition_runs_in_its_home_or_one_its_namespace_may_use() -> None:
    home = info("home", "team-b")
    batch = info("batch", "team-b", queue="batch", temporalNamespace="tenant-b-batch")
    theirs = info("theirs", "team-b", queue="x", temporalNamespace="tenant-a")
    unmapped = info("plain", "elsewhere", queue="p")
    indices = indices_of(home, batch, theirs, unmapped)
    assert indices.verdict(home).temporal_namespace == "tenant-b"
    assert indices.verdict(batch).temporal_namespace == "tenant-b-batch"
    assert indices.verdict(unmapped).temporal_namespace == "shared"
    refused = indices.verdict(theirs)
    assert not refused.valid
    assert refused.reason == REASON_TEMPORAL_NAMESPACE
    assert "'tenant-a' is not one that namespace 'team-b' may use" in refused.message


def test_definitions_on_one_queue_share_its_temporal_namespace() -> None:
    old = info("old", "team-b", created="2026-01-01T00:00:00Z")
    same = info("same", "team-b", created="2026-01-02T00:00:00Z", temporalNamespace="tenant-b")
    other = info(
        "other", "team-b", created="2026-01-03T00:00:00Z", temporalNamespace="tenant-b-batch"
    )
    indices = indices_of(old, same, other)
    assert indices.verdict(same).valid
    conflict = indices.verdict(other)
    assert conflict.reason == REASON_TASK_QUEUE_CONFLICT
    assert "poll Temporal namespace 'tenant-b'" in conflict.message
    assert [d.name for d in indices.members("team-b", "q")] == ["old", "same"]
    assert {key: v.valid for key, (_, v) in indices.snapshot().judged.items()} == {
        ("team-b", "old"): True,
        ("team-b", "same"): True,
        ("team-b", "other"): False,
    }


def test_worker_pods_and_keda_poll_the_definitions_temporal_namespace() -> None:
    batch = info("batch", "team-b", temporalNamespace="tenant-b-batch")
    indices = indices_of(batch)
    members = indices.members("team-b", "q")
    settings = merge_settings(members, "worker:1", indices.verdict(batch).temporal_namespace)
    deployment = worker_deployment("team-b", "q", members, settings, CONFIG)
    env = env_of(deployment["spec"]["template"]["spec"]["containers"][0])
    assert env["TEMPORAL_NAMESPACE"] == "tenant-b-batch"
    # Only its own namespace's entry: where its `run: workflow` targets live.
    assert json.loads(env["TFLOW_TEMPORAL_NAMESPACES"]) == {
        "team-b": ["tenant-b", "tenant-b-batch"]
    }
    scaled = worker_scaled_object("team-b", "q", settings, CONFIG)
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["metadata"]["namespace"] == "tenant-b-batch"


def test_the_routing_table_names_each_targets_temporal_namespace() -> None:
    target = info("target", "team-a")
    indices = indices_of(target)

    def lookup(namespace: str, name: str) -> Any:
        return indices.lookup(namespace, name)

    route = route_info(
        {
            "metadata": {"name": "r", "namespace": "team-a", "uid": "r", "generation": 1},
            "spec": {"match": {"type": "t"}, "workflow": "target"},
        }
    )
    table, verdicts = compile_routes([route], lookup)
    assert verdicts[("team-a", "r")].ready
    assert table.routes[0].temporal_namespace == "tenant-a"

    # Nothing mapped: the table is as it always was, byte for byte.
    plain = dataclasses.replace(CONFIG, temporal_namespaces=Config().temporal_namespaces)
    unmapped = indices_of(target, config=plain)
    table, _ = compile_routes([route], lambda ns, name: unmapped.lookup(ns, name))
    assert table.routes[0].temporal_namespace is None
    assert "temporal_namespace" not in table.to_json()


def test_listener_pods_hand_events_to_their_namespaces_home() -> None:
    spec = ListenerSpec.model_validate({"type": "webhook", "webhook": {"path": "/events"}})
    mapped = listener_deployment("hooks", "team-b", "u", spec, CONFIG)
    env = env_of(mapped["spec"]["template"]["spec"]["containers"][0])
    assert env["TEMPORAL_NAMESPACE"] == "tenant-b"
    assert json.loads(env["TFLOW_TEMPORAL_NAMESPACES"]) == {
        "team-b": ["tenant-b", "tenant-b-batch"]
    }
    unmapped = listener_deployment("hooks", "elsewhere", "u", spec, CONFIG)
    env = env_of(unmapped["spec"]["template"]["spec"]["containers"][0])
    assert env["TEMPORAL_NAMESPACE"] == "shared"
    assert "TFLOW_TEMPORAL_NAMESPACES" not in env


def test_queue_facts_agree_with_the_owner_and_namespace_rules_on_mixed_queues() -> None:
    """`queue_facts` (one search for the oldest, a request resolved once per value) gives
    what the rules say: the owner and Temporal namespace of the oldest candidate, and
    every live, valid definition of that namespace running there, oldest first."""
    rng = random.Random(7)
    mapping = CONFIG.temporal_namespaces
    requests = ["", "tenant-a", "tenant-b", "tenant-b-batch", "elsewhere"]
    for _ in range(200):
        queue = []
        for i in range(rng.randint(0, 12)):
            made = info(
                f"d{i}",
                rng.choice(["team-a", "team-b", "team-c"]),
                created=f"2026-01-0{rng.randint(1, 3)}T00:00:00Z",
                **({"temporalNamespace": r} if (r := rng.choice(requests)) else {}),
            )
            queue.append(
                dataclasses.replace(
                    made,
                    deleting=rng.random() < 0.15,
                    issues=("spec.workflow: broken",) if rng.random() < 0.15 else (),
                )
            )
        # The rules, spelled out: the oldest live, valid definition whose Temporal
        # namespace resolves decides the owner and the Temporal namespace.
        heads = sorted(
            (
                d
                for d in queue
                if not d.deleting and not d.issues and temporal_namespace_of(d, mapping) is not None
            ),
            key=lambda d: (d.created, d.namespace, d.name),
        )
        owner = heads[0].namespace if heads else None
        temporal = temporal_namespace_of(heads[0], mapping) if heads else None
        expected = sorted(
            (
                d
                for d in queue
                if d.namespace == owner
                and not d.deleting
                and not d.issues
                and temporal_namespace_of(d, mapping) == temporal
            ),
            key=lambda d: (d.created, d.namespace, d.name),
        )
        assert queue_facts(queue, mapping) == (owner, temporal, tuple(expected))
