"""A namespace's own routing table, for its Listeners with ``spec.routing: direct``: the
kopf index that says which namespaces have one, the publisher writing each such
namespace its part of the compiled table (index last, deleted when no such Listener is
left, kept when too large), and route statuses that do not depend on it."""

from __future__ import annotations

import asyncio
import base64
import copy
import gzip
import json
import random
from types import SimpleNamespace
from typing import Any, cast

import kopf
from operator_objects import definition_body

from tflow_operator import listener as listener_handlers
from tflow_operator.config import Config
from tflow_operator.configmaps import (
    MAX_NAMESPACE_ROUTING_SHARDS,
    compile_routes,
    namespace_tables,
    routing_configmaps,
)
from tflow_operator.kube import KubeClient
from tflow_operator.model import DefinitionInfo, RouteInfo, definition_info, route_info
from tflow_operator.publisher import Publisher
from tflow_operator.runtime import KopfIndices
from tflow_workers.routing import ROUTING_INDEX

CONFIG = Config(system_namespace="tflow-system", worker_image="registry.example/worker:1")
Key = tuple[str, str]


def definition(namespace: str, name: str = "flow") -> DefinitionInfo:
    return definition_info(definition_body(name, queue=f"q-{namespace}", namespace=namespace))


def route(namespace: str, name: str, event_type: str = "t") -> RouteInfo:
    return route_info(
        {
            "metadata": {
                "name": name,
                "namespace": namespace,
                "uid": f"r-{namespace}-{name}",
                "generation": 1,
            },
            "spec": {"match": {"type": event_type}, "workflow": "flow"},
        }
    )


def indices(routes: list[RouteInfo], direct: tuple[str, ...] = ()) -> KopfIndices:
    defs = [definition("shop"), definition("billing")]
    by_key: dict[Any, list[DefinitionInfo]] = {}
    for d in defs:
        by_key[("name", d.namespace, d.name)] = [d]
        by_key[("queue", d.task_queue)] = [d]
    return KopfIndices(
        definitions=by_key,
        routes={r.key: r for r in routes},
        router_task_queue="router",
        # As kopf's index holds it: namespace -> one True per direct Listener there.
        listener_routing={namespace: [True] for namespace in direct},
    )


ROUTES = [route("shop", "orders"), route("shop", "refunds", "r"), route("billing", "invoices")]


class StoreKube:
    """ConfigMaps kept by (namespace, name), with the order of writes and deletions."""

    def __init__(self) -> None:
        self.stored: dict[Key, dict[str, Any]] = {}
        self.log: list[tuple[str, str, str]] = []
        self.statuses: dict[Key, dict[str, Any]] = {}

    async def list_metadata(self, *_: Any, **__: Any) -> list[dict[str, Any]]:
        return [{"metadata": copy.deepcopy(cm["metadata"])} for cm in self.stored.values()]

    async def replace(self, obj: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(0)
        meta = obj["metadata"]
        self.stored[(meta["namespace"], meta["name"])] = obj
        self.log.append(("write", meta["namespace"], meta["name"]))
        return obj

    async def delete(self, api_version: str, kind: str, namespace: str, name: str) -> bool:
        self.stored.pop((namespace, name), None)
        self.log.append(("delete", namespace, name))
        return True

    async def patch_status(
        self, api_version: str, kind: str, namespace: str, name: str, changes: dict[str, Any]
    ) -> None:
        self.statuses[(namespace, name)] = changes

    async def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        return obj

    def routing(self, namespace: str) -> dict[str, dict[str, Any]]:
        return {
            name: cm
            for (ns, name), cm in self.stored.items()
            if ns == namespace and name.startswith("tflow-namespace-routing")
        }


def table_routes(cm: dict[str, Any]) -> list[str]:
    routes = json.loads(cm["data"]["routes.json"])["routes"]
    return [f"{r['namespace']}/{r['name']}" for r in routes]


def publisher(kube: StoreKube, idx: KopfIndices) -> Publisher:
    return Publisher(CONFIG, cast(KubeClient, kube), idx)


# --------------------------------------------------------------------------- the index

# kopf's decorators type the handlers as its callback protocols; called here as defined.
index_routing = cast(Any, listener_handlers.tflow_listener_routing)
listener_changed = cast(Any, listener_handlers.listener_sharing_changed)


def listener(routing: str | None, namespace: str = "shop") -> kopf.Body:
    spec: dict[str, Any] = {"type": "webhook"}
    if routing is not None:
        spec["routing"] = routing
    return kopf.Body(
        {"metadata": {"name": "hook", "namespace": namespace, "uid": "u"}, "spec": spec}
    )


async def test_the_index_names_the_namespaces_of_direct_listeners() -> None:
    assert await index_routing(listener("direct")) == {"shop": True}
    # An empty mapping, not None: kopf keeps an object's old entries when given None, so
    # a Listener switched back to the orchestrator would stay indexed.
    assert await index_routing(listener("orchestrator")) == {}
    assert await index_routing(listener(None)) == {}
    idx = KopfIndices(listener_routing={"shop": [True, True], "billing": []})
    assert idx.direct_routing_namespaces() == frozenset({"shop"})


async def test_a_change_of_routing_makes_the_publisher_publish() -> None:
    pub = publisher(StoreKube(), KopfIndices())
    memo = SimpleNamespace(runtime=SimpleNamespace(publisher=pub))
    await listener_changed(type="ADDED", body=listener(None), memo=memo)
    pub._dirty.clear()
    await listener_changed(type="MODIFIED", body=listener("orchestrator"), memo=memo)
    assert not pub._dirty.is_set()  # the same as the default: nothing to publish
    await listener_changed(type="MODIFIED", body=listener("direct"), memo=memo)
    assert pub._dirty.is_set()


# --------------------------------------------------------------------------- the tables


def test_a_namespace_table_holds_only_its_own_compiled_routes() -> None:
    idx = indices(ROUTES)
    table, _ = compile_routes(ROUTES, idx.snapshot().lookup)
    parts = namespace_tables(table, ["shop", "empty"])
    assert [r.id for r in parts["shop"].routes] == ["shop/orders", "shop/refunds"]
    assert all(r in table.routes for r in parts["shop"].routes)  # the same compiled routes
    assert parts["empty"].routes == []
    (cm,) = routing_configmaps(
        parts["shop"],
        "shop",
        MAX_NAMESPACE_ROUTING_SHARDS,
        base="tflow-namespace-routing",
        scope="namespace",
    )
    assert cm["metadata"]["name"] == "tflow-namespace-routing"
    assert cm["metadata"]["labels"]["temporalflow.dev/scope"] == "namespace"
    assert cm["metadata"]["labels"]["temporalflow.dev/component"] == "routing"
    index = json.loads(cm["data"][ROUTING_INDEX])
    assert index["hash"] == parts["shop"].content_hash()
    # The cluster's table is as before: the defaults are its base name and scope.
    assert routing_configmaps(table, "sys") == routing_configmaps(
        table, "sys", base="tflow-routing", scope="cluster"
    )
    (system,) = routing_configmaps(table, "sys")
    assert system["metadata"]["name"] == "tflow-routing"
    assert system["metadata"]["labels"]["temporalflow.dev/scope"] == "cluster"


async def test_a_namespace_with_a_direct_listener_gets_its_own_routes() -> None:
    kube = StoreKube()
    await publisher(kube, indices(ROUTES, direct=("shop",))).publish(full=True)
    shop = kube.routing("shop")
    assert list(shop) == ["tflow-namespace-routing"]
    cm = shop["tflow-namespace-routing"]
    assert ROUTING_INDEX in cm["data"]
    assert table_routes(cm) == ["shop/orders", "shop/refunds"]
    assert cm["metadata"]["annotations"]["temporalflow.dev/routing-hash"]
    # billing has no direct Listener: no table of its own; the cluster's table has all.
    assert kube.routing("billing") == {}
    system = kube.stored[("tflow-system", "tflow-routing")]
    assert table_routes(system) == ["billing/invoices", "shop/orders", "shop/refunds"]


async def test_the_namespace_tables_go_when_no_direct_listener_is_left() -> None:
    kube = StoreKube()
    idx = indices(ROUTES, direct=("shop", "billing"))
    pub = publisher(kube, idx)
    await pub.publish(full=True)
    assert table_routes(kube.routing("billing")["tflow-namespace-routing"]) == ["billing/invoices"]
    # billing's Listener switched to the orchestrator (or went away): its table goes,
    # shop's stays untouched, and so does every other ConfigMap.
    idx.listener_routing = {"shop": [True]}
    kube.log.clear()
    report = await pub.publish()
    assert kube.log == [("delete", "billing", "tflow-namespace-routing")]
    assert report.configmaps_deleted == 1
    # The same after a restart, from what is stored (the publisher lists it).
    idx.listener_routing = {}
    kube.log.clear()
    await publisher(kube, idx).publish(full=True)
    assert kube.log == [("delete", "shop", "tflow-namespace-routing")]


def big_routes(namespace: str, count: int) -> list[RouteInfo]:
    """Routes whose table takes more than one shard (random, incompressible types)."""
    noise = random.Random(11)
    return [route(namespace, f"r{i:05d}", noise.randbytes(1024).hex()) for i in range(count)]


async def test_a_namespace_index_is_written_after_its_shards() -> None:
    kube = StoreKube()
    routes = [*big_routes("shop", 1200), route("billing", "invoices")]
    await publisher(kube, indices(routes, direct=("shop",))).publish(full=True)
    written = [name for op, ns, name in kube.log if ns == "shop" and "routing" in name]
    assert len(written) > 1
    assert written[-1] == "tflow-namespace-routing"
    index = json.loads(kube.stored[("shop", "tflow-namespace-routing")]["data"][ROUTING_INDEX])
    names = set()
    for name in written:
        cm = kube.stored[("shop", name)]
        names |= set(cm.get("binaryData") or {})
        for key, data in (cm.get("binaryData") or {}).items():
            table = json.loads(gzip.decompress(base64.b64decode(data)))
            assert {r["namespace"] for r in table["routes"]} == {"shop"}, key
    assert names == set(index["files"])


async def test_a_namespace_table_too_large_keeps_the_stored_one_and_no_status_changes() -> None:
    routes = [*big_routes("shop", 1200), route("billing", "invoices")]
    # Route statuses without any direct Listener, to compare with.
    plain = StoreKube()
    await publisher(plain, indices(routes)).publish(full=True)

    kube = StoreKube()
    idx = indices(routes, direct=("shop",))
    pub = publisher(kube, idx)
    await pub.publish(full=True)
    stored = {name: copy.deepcopy(cm) for name, cm in kube.routing("shop").items()}
    assert len(stored) > 1
    # The same table no longer fits: it is neither rewritten nor deleted.
    pub.max_namespace_routing_shards = 1
    idx.routes = {r.key: r for r in [*routes, route("shop", "zz-new", "new")]}
    kube.log.clear()
    await pub.publish(full=True)
    assert not [entry for entry in kube.log if "namespace-routing" in entry[2]]
    assert kube.routing("shop") == stored
    # The cluster's table took the new route as usual.
    assert ("write", "tflow-system", "tflow-routing") in kube.log

    def verdicts(statuses: dict[Key, dict[str, Any]]) -> dict[Key, tuple[str, str]]:
        return {
            key: (s["conditions"][0]["status"], s["conditions"][0]["reason"])
            for key, s in statuses.items()
        }

    before = verdicts(kube.statuses)
    before.pop(("shop", "zz-new"))
    assert before == verdicts(plain.statuses)
    assert verdicts(kube.statuses)[("shop", "zz-new")] == ("True", "Compiled")
