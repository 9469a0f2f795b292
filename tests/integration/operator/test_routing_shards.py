"""A routing table far past one ConfigMap's 1 MiB goes through the real apiserver as several
ConfigMaps and loads back, from their projection into one directory, as the same table.

The routes carry random (incompressible) sources, so the compressed table is itself more
than 5 MiB: in one ConfigMap, as before the table was spread over several, the apiserver
refuses it.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from tflow_devstack.controlplane import ControlPlane
from tflow_operator.configmaps import MAX_ROUTING_SHARDS, routing_configmaps
from tflow_operator.kube import KubeClient, KubeError
from tflow_workers.routing import CompiledRoute, Router, RoutingTable, load_table

pytestmark = [pytest.mark.integration]

MIB = 1024 * 1024
CONFIGMAP_LIMIT = MIB


def big_table(routes: int, noise_bytes: int) -> RoutingTable:
    return RoutingTable(
        routes=[
            CompiledRoute(
                namespace=f"team-{i % 7}",
                name=f"route-{i:05d}",
                type=f"type-{i}",
                source=base64.b64encode(os.urandom(noise_bytes)).decode(),
                workflow="flow",
                task_queue="flows",
            )
            for i in range(routes)
        ]
    )


def project(configmaps: list[dict[str, object]], directory: Path) -> None:
    """What the kubelet makes of a projected volume of these ConfigMaps: every key of
    every source, one directory."""
    directory.mkdir()
    for cm in configmaps:
        for name, text in (cm.get("data") or {}).items():  # type: ignore[attr-defined]
            (directory / name).write_text(text)
        for name, b64 in (cm.get("binaryData") or {}).items():  # type: ignore[attr-defined]
            (directory / name).write_bytes(base64.b64decode(b64))


async def test_a_5_mib_table_is_stored_in_shards_and_loads_back(
    kube: ControlPlane, kube_client: KubeClient, namespace: str, tmp_path: Path
) -> None:
    table = big_table(routes=8000, noise_bytes=700)
    configmaps = routing_configmaps(table, namespace)
    stored_bytes = sum(
        len(base64.b64decode(v)) for cm in configmaps for v in (cm.get("binaryData") or {}).values()
    )
    assert len(table.to_json()) > 5 * MIB
    assert stored_bytes > 5 * MIB, f"only {stored_bytes / MIB:.1f} MiB compressed"
    assert 5 < len(configmaps) <= MAX_ROUTING_SHARDS

    # As before: every shard in the one ConfigMap is too much for the apiserver.
    whole = json.loads(json.dumps(configmaps[0]))
    whole["metadata"]["name"] = "tflow-routing-all-in-one"
    for cm in configmaps[1:]:
        whole["binaryData"].update(cm["binaryData"])
    with pytest.raises(KubeError) as refused:
        await kube_client.apply(whole)
    # 413 past the request limit, 422 past the ConfigMap limit: refused either way.
    assert refused.value.status in (413, 422)

    # Shards first, the index (the first ConfigMap) last, as the publisher writes them.
    for cm in [*configmaps[1:], configmaps[0]]:
        await kube_client.apply(cm)

    listed = json.loads(
        kube.kubectl(
            "get",
            "configmaps",
            "-n",
            namespace,
            "-l",
            "temporalflow.dev/component=routing",
            "-o",
            "json",
        ).stdout
    )["items"]
    names = sorted(cm["metadata"]["name"] for cm in listed)
    assert names == sorted(cm["metadata"]["name"] for cm in configmaps)
    assert names[0] == "tflow-routing"
    for cm in listed:
        size = sum(len(v) for v in (cm.get("data") or {}).values()) + sum(
            len(base64.b64decode(v)) for v in (cm.get("binaryData") or {}).values()
        )
        assert size < CONFIGMAP_LIMIT

    routes = tmp_path / "routes"
    project(listed, routes)
    loaded = load_table(routes)
    assert loaded.content_hash() == table.content_hash()
    assert len(loaded.routes) == 8000

    # The root orchestrator routes with it.
    wanted = table.routes[7777]
    event = {"specversion": "1.0", "id": "1", "type": wanted.type, "source": wanted.source}
    (match,) = Router(loaded).match(event, namespace=wanted.namespace)
    assert match.route.name == "route-07777"
