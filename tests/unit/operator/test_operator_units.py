"""The operator's pure parts: names, validity and task-queue ownership, merging of worker
settings, the worker Deployment, sharding of published definitions, route compilation,
conditions, settings, the RBAC manifest's drift, and kopf's digest diff-base storage."""

from __future__ import annotations

import asyncio
import base64
import copy
import dataclasses
import gzip
import json
import random
import time
from pathlib import Path
from typing import Any, cast

import kopf
import pytest
import yaml
from operator_objects import WORKFLOW
from operator_objects import definition_body as body
from temporalio.api.enums.v1 import IndexedValueType

from tflow_operator import rbac, resync, workflowdefinition
from tflow_operator.conditions import make_condition, merge_conditions, status_changes
from tflow_operator.config import Config, ConfigError
from tflow_operator.configmaps import (
    REASON_DISABLED,
    REASON_INVALID_EXPRESSION,
    REASON_WORKFLOW_INVALID,
    REASON_WORKFLOW_NOT_FOUND,
    PublishError,
    compile_routes,
    definitions_configmaps,
    routing_configmaps,
    shard_files,
)
from tflow_operator.kube import KubeClient
from tflow_operator.leader import LEASE_NAME
from tflow_operator.listener import (
    KEDA_RELEASE_RETRY_SECONDS,
    KedaReleasingError,
    Outcome,
    SecretsMissingError,
    retry_error,
)
from tflow_operator.main import DigestDiffBaseStorage, StatusProgressStorage
from tflow_operator.model import (
    REASON_RESERVED_TASK_QUEUE,
    REASON_TASK_QUEUE_CONFLICT,
    DefinitionInfo,
    RouteInfo,
    definition_info,
    judge,
    route_info,
)
from tflow_operator.naming import bounded, definition_key, worker_deployment_name
from tflow_operator.publisher import Publisher
from tflow_operator.runtime import KopfIndices, Runtime
from tflow_operator.temporal import TemporalGateway, indexed_value_type, is_unavailable
from tflow_operator.workers import (
    MAX_NAMESPACE_SHARDS,
    merge_settings,
    worker_deployment,
    worker_scaled_object,
)
from tflow_operator.workflowdefinition import GROUP_PACE, MAX_GROUP_PACE, apply_group, group_pace

REPO = Path(__file__).resolve().parents[3]
CONFIG = Config(
    temporal_address="temporal:7233",
    worker_temporal_address="temporal.svc:7233",
    system_namespace="tflow-system",
    worker_image="registry.example/worker:default",
)


def info(name: str, **kw: Any) -> DefinitionInfo:
    return definition_info(body(name, **kw))


# --------------------------------------------------------------------------- names


def test_long_names_keep_a_prefix_and_a_hash() -> None:
    short = worker_deployment_name("orders")
    assert short == "tflow-worker-orders"
    a = worker_deployment_name("q" * 60 + "a")
    b = worker_deployment_name("q" * 60 + "b")
    assert len(a) == len(b) == 63
    assert a != b
    assert a.startswith("tflow-worker-qqq")
    assert bounded("x" * 63) == "x" * 63
    assert definition_key("ns", "wfd") == "ns.wfd.yaml"


# --------------------------------------------------------------------------- validity


def test_definition_info_lists_every_problem_with_spec_paths() -> None:
    broken = copy.deepcopy(WORKFLOW)
    broken["do"] = [{"a": {"set": {"x": "${ bogus( }"}}}, {"b": {"wait": "later"}}]
    broken["schedule"] = {"cron": "* * * * *"}
    found = info("w", workflow=broken)
    assert any(i.startswith("spec.workflow.do[0].a.set.x") for i in found.issues)
    assert any(i.startswith("spec.workflow.do[1].b.wait") for i in found.issues)
    assert any(
        i.startswith("spec.workflow.schedule") and "spec.schedule" in i for i in found.issues
    )
    verdict = judge(found, [], "router")
    assert not verdict.valid
    assert verdict.message.startswith("3 problems: ")


def test_version_is_the_document_version_and_a_hash() -> None:
    one = info("w")
    assert one.version.startswith("3.1.0+")
    changed = copy.deepcopy(WORKFLOW)
    changed["do"] = [{"a": {"set": {"x": 2}}}]
    assert info("w", workflow=changed, generation=2).version != one.version


def test_a_task_queue_belongs_to_the_namespace_of_its_oldest_definition() -> None:
    old = info("old", namespace="a", created="2026-01-01T00:00:00Z")
    new = info("new", namespace="b", created="2026-02-01T00:00:00Z")
    sibling = info("sib", namespace="a", created="2026-03-01T00:00:00Z")
    assert judge(old, [new, sibling], "router").valid
    assert judge(sibling, [old, new], "router").valid
    conflict = judge(new, [old, sibling], "router")
    assert conflict.reason == REASON_TASK_QUEUE_CONFLICT
    assert "'a'" in conflict.message
    # A definition being deleted (or invalid) claims nothing.
    leaving = definition_info(body("old", namespace="a", deletionTimestamp="2026-04-01T00:00:00Z"))
    assert judge(new, [leaving], "router").valid
    assert judge(info("r", queue="router"), [], "router").reason == REASON_RESERVED_TASK_QUEUE


# --------------------------------------------------------------------------- workers


def test_worker_settings_merge_rules() -> None:
    older = info(
        "older",
        created="2026-01-01T00:00:00Z",
        workers={
            "minReplicas": 0,
            "maxReplicas": 3,
            "targetBacklog": 10,
            "image": "img:old",
            "env": [{"name": "A", "value": "old"}],
        },
    )
    newer = info(
        "newer",
        created="2026-01-02T00:00:00Z",
        workers={
            "minReplicas": 2,
            "maxReplicas": 8,
            "targetBacklog": 4,
            "activationBacklog": 1,
            "image": "img:new",
            "resources": {"limits": {"cpu": "1"}},
            "env": [
                {"name": "A", "value": "new"},
                {"name": "B", "value": "b"},
                {"name": "C", "valueFrom": {"secretKeyRef": {"name": "db", "key": "dsn"}}},
            ],
        },
    )
    merged = merge_settings([newer, older], "img:default")
    assert merged.image == "img:old"
    assert merged.resources == {"limits": {"cpu": "1"}}
    assert (merged.min_replicas, merged.max_replicas) == (2, 8)
    assert (merged.target_backlog, merged.activation_backlog) == (4, 0)
    assert merged.env == (
        {"name": "A", "value": "old"},
        {"name": "B", "value": "b"},
        # A Secret's key stays a reference for the kubelet to resolve.
        {"name": "C", "valueFrom": {"secretKeyRef": {"name": "db", "key": "dsn"}}},
    )
    assert merge_settings([info("plain")], "img:default").image == "img:default"


def test_worker_deployment_shape() -> None:
    members = [info("b", created="2026-01-02T00:00:00Z"), info("a")]
    settings = merge_settings(
        [info("a", workers={"env": [{"name": "TEMPORAL_NAMESPACE", "value": "mine"}]})],
        CONFIG.worker_image,
    )
    deployment = worker_deployment("ns", "q", members, settings, CONFIG)
    assert deployment["metadata"]["name"] == "tflow-worker-q"
    assert [o["name"] for o in deployment["metadata"]["ownerReferences"]] == ["a", "b"]
    assert all(not o.get("controller") for o in deployment["metadata"]["ownerReferences"])
    assert "replicas" not in deployment["spec"]  # KEDA's
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["TEMPORAL_ADDRESS"] == "temporal.svc:7233"
    assert env["TEMPORAL_NAMESPACE"] == "mine"  # the definition's env wins
    assert len({e["name"] for e in container["env"]}) == len(container["env"])
    sources = pod["volumes"][0]["projected"]["sources"]
    assert len(sources) == MAX_NAMESPACE_SHARDS
    assert all(s["configMap"]["optional"] for s in sources)


def test_workers_mount_every_secret_their_documents_use() -> None:
    def using(name: str, *secrets: str) -> DefinitionInfo:
        return info(name, workflow={**copy.deepcopy(WORKFLOW), "use": {"secrets": list(secrets)}})

    members = [using("pay", "payment-api", "shared"), using("mail", "shared", "smtp"), info("p")]
    settings = merge_settings(members, CONFIG.worker_image)
    assert settings.secrets == ("payment-api", "shared", "smtp")
    pod = worker_deployment("ns", "q", members, settings, CONFIG)["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    for secret in settings.secrets:
        mount = mounts[f"/etc/temporal-flow/secrets/{secret}"]
        assert mount["readOnly"] is True
        # Optional: one definition's missing Secret must not stop the shared workers.
        assert volumes[mount["name"]]["secret"] == {"secretName": secret, "optional": True}
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["TFLOW_SECRETS_DIR"] == "/etc/temporal-flow/secrets"
    # No secrets, no volumes and no secrets directory.
    plain = worker_deployment("ns", "q", [info("p")], merge_settings([info("p")], "i"), CONFIG)
    (container,) = plain["spec"]["template"]["spec"]["containers"]
    assert "TFLOW_SECRETS_DIR" not in {e["name"] for e in container["env"]}
    assert [v["name"] for v in plain["spec"]["template"]["spec"]["volumes"]] == [
        "definitions",
        "tmp",
    ]


def test_worker_pods_load_the_temporal_client_secret_when_configured() -> None:
    members = [info("a")]
    settings = merge_settings(members, CONFIG.worker_image)
    plain = worker_deployment("ns", "q", members, settings, CONFIG)
    assert "envFrom" not in plain["spec"]["template"]["spec"]["containers"][0]
    config = dataclasses.replace(CONFIG, temporal_client_secret="temporal-client")
    pod = worker_deployment("ns", "q", members, settings, config)["spec"]["template"]["spec"]
    # Optional: a namespace without the Secret still runs its workers.
    assert pod["containers"][0]["envFrom"] == [
        {"secretRef": {"name": "temporal-client", "optional": True}}
    ]
    assert Config.from_env({"TFLOW_TEMPORAL_CLIENT_SECRET": "tc"}).temporal_client_secret == "tc"


# --------------------------------------------------------------------------- publishing


def test_shards_are_deterministic_powers_of_two_under_the_limit() -> None:
    files = {f"ns.d{i:03d}.yaml": "x" * 1000 for i in range(50)}
    assert shard_files(files, limit=100_000) == [dict(sorted(files.items()))]
    shards = shard_files(files, limit=12_000)
    assert len(shards) in (8, 16)
    assert sum(len(s) for s in shards) == 50
    assert all(sum(len(k) + len(v) for k, v in s.items()) <= 12_000 for s in shards)
    assert shard_files(dict(reversed(list(files.items()))), limit=12_000) == shards
    with pytest.raises(PublishError):
        shard_files({"big.yaml": "x" * 200}, limit=100)
    with pytest.raises(PublishError):
        shard_files(files, limit=2_000, max_shards=4)


def test_definitions_configmaps_always_have_a_first_shard() -> None:
    (empty,) = definitions_configmaps("tflow-definitions", "sys", "cluster", {}, 4)
    assert empty["metadata"]["name"] == "tflow-definitions"
    assert "data" not in empty
    assert empty["metadata"]["annotations"]["temporalflow.dev/shards"] == "1"
    files = {f"ns.d{i}.yaml": "y" * 600 for i in range(8)}
    cms = definitions_configmaps("tflow-definitions", "sys", "cluster", files, 8, limit=2_000)
    assert [cm["metadata"]["name"] for cm in cms][:2] == [
        "tflow-definitions",
        "tflow-definitions-1",
    ]


def route_body(name: str, workflow: str, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "ns", "uid": f"r-{name}", "generation": 1},
        "spec": {"match": {"type": "t"}, "workflow": workflow, **spec},
    }


def test_compile_routes_verdicts_and_table() -> None:
    indices = KopfIndices(router_task_queue="router")
    good = info("good", queue="qa")
    bad_doc = copy.deepcopy(WORKFLOW)
    bad_doc["do"] = [{"x": {"wait": "never"}}]
    bad = info("bad", workflow=bad_doc)
    by_name = {"good": good, "bad": bad}

    def lookup(namespace: str, name: str) -> Any:
        found = by_name.get(name)
        return None if found is None else (found, indices.verdict(found))

    indices.definitions = {
        ("name", "ns", "good"): [good],
        ("queue", "qa"): [good],
        ("name", "ns", "bad"): [bad],
        ("queue", "q"): [bad],
    }
    routes = [
        route_info(route_body("ok", "good", priority=5, input="${ .data }")),
        route_info(route_body("missing", "nope")),
        route_info(route_body("invalid", "bad")),
        route_info(route_body("off", "good", enabled=False)),
        route_info(route_body("jq", "good", match={"filter": "${ bogus( }"})),
    ]
    table, verdicts = compile_routes(routes, lookup)
    assert [r.id for r in table.routes] == ["ns/ok"]
    assert table.routes[0].task_queue == "qa"
    assert verdicts[("ns", "ok")].ready
    assert verdicts[("ns", "missing")].reason == REASON_WORKFLOW_NOT_FOUND
    assert verdicts[("ns", "invalid")].reason == REASON_WORKFLOW_INVALID
    assert verdicts[("ns", "off")].reason == REASON_DISABLED
    assert verdicts[("ns", "jq")].reason == REASON_INVALID_EXPRESSION
    assert indices.lookup("ns", "good") is not None

    (cm,) = routing_configmaps(table, "sys")
    assert cm["metadata"]["annotations"]["temporalflow.dev/routing-hash"] == table.content_hash()
    assert json.loads(cm["data"]["routes.json"])["routes"][0]["name"] == "ok"


def test_big_routing_tables_go_to_binary_data() -> None:
    many = [
        route_info(route_body(f"r{i:05d}", "good", match={"type": f"type-{i}" * 20}))
        for i in range(4000)
    ]
    good = info("good")
    table, _ = compile_routes(many, lambda ns, name: (good, judge(good, [], "router")))
    (cm,) = routing_configmaps(table, "sys")
    (name,) = cm["binaryData"]
    assert name.endswith(".json.gz")
    text = gzip.decompress(base64.b64decode(cm["binaryData"][name]))
    assert len(json.loads(text)["routes"]) == 4000
    assert json.loads(cm["data"]["routing-index.json"])["hash"] == table.content_hash()


# --------------------------------------------------------------------------- status


class RecordingKube:
    """Records the order of ConfigMap writes and deletions of a publisher pass."""

    def __init__(self, stored: list[str]) -> None:
        self.stored = stored
        self.log: list[tuple[str, str]] = []
        self.statuses: dict[str, dict[str, Any]] = {}

    async def list_metadata(self, *_: Any, **__: Any) -> list[dict[str, Any]]:
        labels = {"temporalflow.dev/component": "routing"}
        annotations = {"temporalflow.dev/routing-hash": "0123456789abcdef"}
        return [
            {
                "metadata": {
                    "name": name,
                    "namespace": CONFIG.system_namespace,
                    "labels": labels,
                    "annotations": annotations,
                }
            }
            for name in self.stored
        ]

    async def replace(self, obj: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(0)
        self.log.append(("write", obj["metadata"]["name"]))
        return obj

    async def delete(self, api_version: str, kind: str, namespace: str, name: str) -> bool:
        self.log.append(("delete", name))
        return True

    async def patch_status(
        self, api_version: str, kind: str, namespace: str, name: str, changes: dict[str, Any]
    ) -> None:
        self.statuses[name] = changes

    async def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.log.append(("create", obj["kind"]))
        return obj


def big_route_indices() -> KopfIndices:
    """Routes whose table takes two routing shards (random, incompressible types)."""
    good = info("good")
    noise = random.Random(7)
    routes = [
        route_info(route_body(f"r{i:05d}", "good", match={"type": noise.randbytes(512).hex()}))
        for i in range(3000)
    ]
    return KopfIndices(
        definitions={("name", "ns", "good"): [good], ("queue", good.task_queue): [good]},
        routes={r.key: r for r in routes},
        router_task_queue="router",
    )


async def test_the_routing_index_is_written_after_its_shards() -> None:
    indices = big_route_indices()
    # A shard left over from a larger table, to be deleted after the index moved on.
    kube = RecordingKube(["tflow-routing-40"])
    publisher = Publisher(CONFIG, cast(KubeClient, kube), indices)
    await publisher.publish(full=True)
    routing = [(op, name) for op, name in kube.log if name.startswith("tflow-routing")]
    written = [name for op, name in routing if op == "write"]
    assert len(written) > 1
    # The index (tflow-routing) names the other shards' files: it goes after them, and
    # the stale shard only after it.
    assert routing[-2:] == [("write", "tflow-routing"), ("delete", "tflow-routing-40")]


async def test_a_table_too_large_keeps_the_stored_one_and_still_publishes_definitions() -> None:
    kube = RecordingKube(["tflow-routing", "tflow-routing-1"])
    publisher = Publisher(CONFIG, cast(KubeClient, kube), big_route_indices())
    publisher.max_routing_shards = 1
    report = await publisher.publish(full=True)
    # The stored table is neither rewritten nor deleted; the definitions are published.
    assert not [entry for entry in kube.log if entry[1].startswith("tflow-routing")]
    assert ("write", "tflow-definitions") in kube.log
    assert report.routing_hash == "0123456789abcdef"
    # Every route says it is not in the table in force, and which table that is.
    assert len(kube.statuses) == 3000
    (ready,) = kube.statuses["r00000"]["conditions"]
    assert (ready["status"], ready["reason"]) == ("False", "RoutingTableTooLarge")
    assert "0123456789ab" in ready["message"]


async def test_a_route_status_not_yet_seen_back_is_not_written_again() -> None:
    """In a burst the route watch can bring a written status back late, after several
    more passes with new table hashes: those passes judge what was written, and write no
    route again (before, each one rewrote every such route with its new hash)."""
    good = info("good")
    first = route_info(route_body("r1", "good"))
    routes: dict[tuple[str, str], RouteInfo] = {first.key: first}
    indices = KopfIndices(
        definitions={("name", "ns", "good"): [good], ("queue", good.task_queue): [good]},
        routes=routes,
        router_task_queue="router",
    )
    kube = RecordingKube([])
    publisher = Publisher(CONFIG, cast(KubeClient, kube), indices)
    await publisher.publish(full=True)
    written = kube.statuses["r1"]
    assert written["conditions"][0]["status"] == "True"
    table_hash = written["routingTableHash"]
    # A new route changes the table's hash; the index still shows r1 without a status.
    second = route_info(route_body("r2", "good", match={"type": "u"}))
    routes[second.key] = second
    kube.statuses.clear()
    report = await publisher.publish()
    assert report.routing_hash != table_hash
    assert list(kube.statuses) == ["r2"]
    # Once the watch shows what was written, nothing is written either.
    routes[first.key] = route_info({**route_body("r1", "good"), "status": written})
    routes[("ns", "r3")] = route_info(route_body("r3", "good", match={"type": "v"}))
    kube.statuses.clear()
    await publisher.publish()
    assert list(kube.statuses) == ["r3"]


def test_conditions_keep_their_transition_time() -> None:
    first = merge_conditions([], [make_condition("Ready", True, "Ok", "fine", 1)])
    first[0]["lastTransitionTime"] = "2020-01-01T00:00:00Z"
    again = merge_conditions(first, [make_condition("Ready", True, "Ok", "still fine", 2)])
    assert again[0]["lastTransitionTime"] == "2020-01-01T00:00:00Z"
    assert again[0]["observedGeneration"] == 2
    flipped = merge_conditions(first, [make_condition("Ready", False, "Bad", "broken", 2)])
    assert flipped[0]["lastTransitionTime"] != "2020-01-01T00:00:00Z"
    assert status_changes({"a": 1, "b": 2}, {"a": 1, "b": 3, "c": None}) == {"b": 3}


# --------------------------------------------------------------------------- settings


def test_config_from_env() -> None:
    config = Config.from_env(
        {
            "TEMPORAL_ADDRESS": "t:1",
            "TFLOW_RESYNC_SECONDS": "2.5",
            "POD_NAMESPACE": "ops",
        }
    )
    assert config.temporal_address == config.worker_temporal_address == "t:1"
    assert config.resync_seconds == 2.5
    assert config.system_namespace == "ops"
    assert (
        Config.from_env({"TFLOW_SYSTEM_NAMESPACE": "x", "POD_NAMESPACE": "y"}).system_namespace
        == "x"
    )
    with pytest.raises(ConfigError):
        Config.from_env({"TFLOW_RESYNC_SECONDS": "0"})
    with pytest.raises(ConfigError):
        Config.from_env({"TFLOW_RESYNC_SECONDS": "soon"})


def test_temporal_helpers() -> None:
    assert indexed_value_type("Keyword") == IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
    assert indexed_value_type("KeywordList") == IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST
    assert is_unavailable(RuntimeError("Failed client connect: tcp connect error"))
    assert not is_unavailable(ValueError("bad"))


# --------------------------------------------------------------------------- manifests


def test_rbac_manifest_is_up_to_date() -> None:
    path = REPO / "manifests" / "rbac" / "operator.yaml"
    assert path.read_text() == rbac.render(), "run: python -m tflow_operator.rbac"
    kinds = [doc["kind"] for doc in yaml.safe_load_all(path.read_text())]
    assert kinds == [
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "ClusterRole",
        "Role",
        "RoleBinding",
    ]


def test_rbac_grants_no_secrets_cluster_wide_and_no_wildcards() -> None:
    for rule in [*rbac.RULES, *rbac.SECRET_RULES, *rbac.LEASE_RULES]:
        assert "*" not in rule["verbs"]
        assert "*" not in rule["resources"]
    assert all("secrets" not in rule["resources"] for rule in rbac.RULES)
    assert rbac.SECRET_RULES == [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]
    bound = [o for o in rbac.objects() if o["kind"] == "ClusterRoleBinding"]
    assert [b["roleRef"]["name"] for b in bound] == [rbac.NAME]
    # Leases only in the operator's namespace, and only its own may be read or written.
    assert all("leases" not in rule["resources"] for rule in rbac.RULES)
    for rule in rbac.LEASE_RULES:
        assert rule["verbs"] == ["create"] or rule["resourceNames"] == [LEASE_NAME]


# --------------------------------------------------------------------------- kopf


def kbody(raw: dict[str, Any]) -> kopf.Body:
    return kopf.Body(raw)  # type: ignore[arg-type]


def test_digest_diffbase_tells_changed_from_unchanged() -> None:
    storage = DigestDiffBaseStorage()
    raw = body("w")
    assert storage.fetch(body=kbody(raw)) is None
    patch = kopf.Patch()
    essence = storage.build(body=kbody(raw))
    storage.store(body=kbody(raw), patch=patch, essence=essence)
    # Only the status is written: one request with the handler's own status changes.
    assert set(patch) == {"status"}
    stored = patch["status"]["kopf"]["lastHandled"]
    assert stored.startswith("sha256:")
    assert len(stored) < 100
    raw["status"] = {"kopf": {"lastHandled": stored}, "running": 3}
    assert storage.fetch(body=kbody(raw)) == storage.build(body=kbody(raw))
    # The status (the digest included) is not part of what is compared.
    raw["status"]["running"] = 4
    assert storage.fetch(body=kbody(raw)) == storage.build(body=kbody(raw))
    raw["spec"]["taskQueue"] = "other"
    assert storage.fetch(body=kbody(raw)) != storage.build(body=kbody(raw))


def test_progress_storage_leaves_status_free_essences_uncopied() -> None:
    """kopf cleans the old and new essence of every event through the progress storage:
    the essences the diff-base storage builds hold no status, so they come back as they
    are; one with a status still loses its progress fields, as kopf's own would."""
    storage = StatusProgressStorage(name="kopf", field="status.kopf.progress")
    essence = DigestDiffBaseStorage().build(body=kbody(body("w")))
    assert "status" not in essence
    assert storage.clear(essence=essence) is essence
    with_status = {"spec": {"a": 1}, "status": {"kopf": {"progress": {"h": {}}}, "x": 1}}
    cleaned = storage.clear(essence=with_status)
    assert cleaned is not with_status
    assert cleaned == {"spec": {"a": 1}, "status": {"x": 1}}


# --------------------------------------------------------------------------- runtime


class FakeKube:
    def __init__(self) -> None:
        self.applied: list[dict[str, Any]] = []

    async def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(0.01)
        self.applied.append(obj)
        # As the apiserver answers: the object with its uid.
        return {**obj, "metadata": {**obj["metadata"], "uid": f"uid-{obj['metadata']['name']}"}}


def fake_runtime(indices: KopfIndices, config: Config = CONFIG) -> Runtime:
    kube = cast(KubeClient, FakeKube())
    return Runtime(config, kube, TemporalGateway("127.0.0.1:1", "default"), indices)


async def test_keda_reads_the_workers_temporal_client_secret() -> None:
    members = [info("a")]
    indices = KopfIndices(
        definitions={("queue", "q"): members, ("name", "ns", "a"): members},
        router_task_queue="router",
    )
    settings = merge_settings(members, CONFIG.worker_image)
    (plain,) = worker_scaled_object("ns", "q", settings, CONFIG)["spec"]["triggers"]
    assert "authenticationRef" not in plain

    config = dataclasses.replace(CONFIG, temporal_client_secret="temporal-client")
    runtime = fake_runtime(indices, config)
    await apply_group(runtime, "ns", "q")
    applied = {o["kind"]: o for o in cast(FakeKube, runtime.kube).applied}
    auth, scaled = applied["TriggerAuthentication"], applied["ScaledObject"]
    assert scaled["spec"]["triggers"][0]["authenticationRef"] == {"name": auth["metadata"]["name"]}
    assert auth["metadata"]["namespace"] == "ns"
    # Both owned by the Deployment alone (it goes with its last definition, they with it).
    deployment = applied["Deployment"]
    (owner,) = scaled["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == (
        "Deployment",
        deployment["metadata"]["name"],
        f"uid-{deployment['metadata']['name']}",
    )
    assert auth["metadata"]["ownerReferences"] == scaled["metadata"]["ownerReferences"]
    # The same Secret, the same keys the worker pods load with envFrom.
    assert {(r["parameter"], r["name"], r["key"]) for r in auth["spec"]["secretTargetRef"]} == {
        ("apiKey", "temporal-client", "TEMPORAL_API_KEY"),
        ("cert", "temporal-client", "TEMPORAL_TLS_CLIENT_CERT_DATA"),
        ("key", "temporal-client", "TEMPORAL_TLS_CLIENT_KEY_DATA"),
        ("ca", "temporal-client", "TEMPORAL_TLS_SERVER_CA_CERT_DATA"),
    }


def test_a_large_group_is_applied_less_often_in_a_burst() -> None:
    # Each apply's cost to the apiserver grows with the owner references.
    assert group_pace(1) == group_pace(400) == GROUP_PACE
    assert group_pace(1000) == 5.0
    assert group_pace(1_000_000) == MAX_GROUP_PACE


async def test_concurrent_applies_of_one_worker_group_are_coalesced() -> None:
    members = [info(f"d{i}", created=f"2026-01-01T00:00:{i:02d}Z") for i in range(20)]
    indices = KopfIndices(
        definitions={("queue", "q"): members, **{("name", "ns", d.name): [d] for d in members}},
        router_task_queue="router",
    )
    runtime = fake_runtime(indices)
    results = await asyncio.gather(*(apply_group(runtime, "ns", "q") for _ in range(20)))
    kube = cast(FakeKube, runtime.kube)
    deployments = [o for o in kube.applied if o["kind"] == "Deployment"]
    assert 1 <= len(deployments) <= 2
    assert all(len(r.members) == 20 for r in results)
    assert len(deployments[-1]["metadata"]["ownerReferences"]) == 20
    # Unchanged and recent: not applied again.
    await apply_group(runtime, "ns", "q")
    assert len([o for o in kube.applied if o["kind"] == "Deployment"]) == len(deployments)


def test_run_statistics_are_paced() -> None:
    runtime = fake_runtime(KopfIndices(), Config(stats_seconds=60, stats_rate=1000))
    assert runtime.stats_due("a")
    assert not runtime.stats_due("a")  # refreshed a moment ago
    runtime = fake_runtime(KopfIndices(), Config(stats_seconds=60, stats_rate=0.001))
    assert runtime.stats_due("a")
    assert not runtime.stats_due("b")  # over the operator-wide rate


async def test_resync_leaves_a_definition_its_handler_just_reconciled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reconciled: list[str] = []

    async def reconcile(runtime: Runtime, body: Any, patch: Any, **_: Any) -> None:
        reconciled.append(body["metadata"]["uid"])

    monkeypatch.setattr(workflowdefinition, "reconcile", reconcile)
    runtime = fake_runtime(KopfIndices(), Config(resync_seconds=30))
    runtime.handled_at["fresh"] = time.monotonic()
    runtime.handled_at["stale"] = time.monotonic() - 31
    for uid in ("fresh", "stale", "never"):
        body = {"metadata": {"uid": uid, "namespace": "ns", "name": uid}}
        await resync.resync_definition(runtime, body)
    assert reconciled == ["stale", "never"]


def test_run_statistics_reach_every_definition() -> None:
    """Definitions reached back to back in every pass all get their statistics (a
    minimum gap between refreshes gave the second of two none, pass after pass), and with
    more definitions than a period's budget each pass refreshes others, within the rate."""
    runtime = fake_runtime(KopfIndices(), Config(stats_seconds=5, stats_rate=20))
    for now in (100.0, 105.0, 110.0):
        assert [runtime.stats_due(uid, now) for uid in ("a", "b")] == [True, True]

    runtime = fake_runtime(KopfIndices(), Config(stats_seconds=30, stats_rate=20))
    uids = [f"d{i}" for i in range(1000)]
    refreshed: dict[str, int] = {}
    now = 0.0
    for _ in range(6):  # a pass every 30 s, in the same order each time
        due = [uid for uid in uids if runtime.stats_due(uid, now)]
        assert len(due) <= 600  # one period at 20/s
        for uid in due:
            refreshed[uid] = refreshed.get(uid, 0) + 1
        runtime.stats_population = len(uids)
        now += 30.0
    assert set(refreshed) == set(uids)
    assert sum(refreshed.values()) <= 20 * 30 * 6


async def test_the_first_pass_waits_for_the_route_list_and_the_definition_index() -> None:
    """A pass before the route watch has listed would find no routes, and one before
    kopf filled its definition index would tell every route its definition is missing:
    the publisher waits for both (the fake lists no definitions only once told to)."""
    good = info("good")
    route = route_info(route_body("r1", "good"))
    indices = KopfIndices(
        definitions={("name", "ns", "good"): [good], ("queue", good.task_queue): [good]},
        routes={route.key: route},
        router_task_queue="router",
    )
    kube = RecordingKube([])
    publisher = Publisher(CONFIG, cast(KubeClient, kube), indices)
    publisher.start()
    try:
        await asyncio.sleep(0.2)
        publisher.mark_indexed()  # kopf ran a definition handler: its index is full
        await asyncio.sleep(0.2)
        assert kube.log == []  # the routes are not listed yet
        assert kube.statuses == {}
        publisher.routes_listed()
        for _ in range(100):
            if kube.statuses:
                break
            await asyncio.sleep(0.05)
        (ready,) = kube.statuses["r1"]["conditions"]
        assert ready["status"] == "True"
    finally:
        await publisher.stop()


def test_the_listener_spec_handler_runs_again_while_secrets_are_missing_or_keda_holds_on() -> None:
    assert retry_error(Outcome({}, []), CONFIG) is None
    missing = retry_error(Outcome({}, ["Secret ns/aws"]), CONFIG)
    assert isinstance(missing, SecretsMissingError)
    assert "Secret ns/aws" in str(missing)
    held = retry_error(Outcome({}, [], ["ScaledObject ns/x"]), CONFIG)
    assert isinstance(held, KedaReleasingError)
    assert "ScaledObject ns/x" in str(held)
    assert held.delay == KEDA_RELEASE_RETRY_SECONDS
    # A finalizer left behind by an uninstalled KEDA is asked about less and less often.
    later = retry_error(Outcome({}, [], ["ScaledObject ns/x"]), CONFIG, retry=10)
    assert later is not None
    assert later.delay is not None
    assert 45 <= later.delay <= 72
