"""Kubernetes Events posted by the operator, on the real apiserver: a fact posted twice
under a key (two reconciles racing over one transition) is one Event; without a key each
post is its own Event."""

from __future__ import annotations

import json

import pytest

from tflow_devstack.controlplane import ControlPlane
from tflow_operator.events import post_event
from tflow_operator.kube import KubeClient

pytestmark = [pytest.mark.integration]


def events_of(kube: ControlPlane, namespace: str, name: str) -> list[dict[str, object]]:
    out = kube.kubectl(
        "get", "events", "-n", namespace, "--field-selector", f"involvedObject.name={name}",
        "-o", "json",
    ).stdout  # fmt: skip
    return list(json.loads(out)["items"])


async def test_a_keyed_fact_posted_twice_is_one_event(
    kube: ControlPlane, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(kube.kubeconfig))
    kube.kubectl("create", "configmap", "subject", "-n", namespace)
    subject = json.loads(
        kube.kubectl("get", "configmap", "subject", "-n", namespace, "-o", "json").stdout
    )
    ref = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "subject",
        "namespace": namespace,
        "uid": subject["metadata"]["uid"],
    }
    client = KubeClient.from_env()
    try:
        for _ in range(2):
            await post_event(client, ref, "Warning", "Broken", "it broke", key="7\0it broke")
        await post_event(client, ref, "Warning", "Broken", "it broke again", key="8\0again")
        for _ in range(2):
            await post_event(client, ref, "Normal", "Noted", "said twice")
    finally:
        await client.close()

    posted = events_of(kube, namespace, "subject")
    by_reason = sorted((str(e["reason"]), str(e["message"])) for e in posted)
    assert by_reason == [
        ("Broken", "it broke"),
        ("Broken", "it broke again"),
        ("Noted", "said twice"),
        ("Noted", "said twice"),
    ]
