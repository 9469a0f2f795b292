"""The README's walk through `make dev`, on the stack it starts (stack.start): the incident
sample is there, `kubectl apply` of the sample routes, a `curl` of an incident to the
webhook Listener's Service, and `tflow runs list` shows the run completed — the sample's
worker a real pod of the samples image, woken by KEDA."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import httpx
import pytest
from polling import eventually

from tflow_devstack import stack
from tflow_devstack.cluster import Cluster
from tflow_devstack.tools import REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


def test_an_incident_posted_to_the_sample_webhook_runs_to_completion(cluster: Cluster) -> None:
    assert cluster.temporal is not None
    kubectl = cluster.cp.kubectl
    assert "incident" in kubectl("get", "wfd", "-n", "default").stdout
    kubectl("apply", "-n", "default", "-f", str(REPO_ROOT / "manifests/samples/route.yaml"))
    kubectl("wait", "-n", "default", "er/incidents", "--for=condition=Ready", "--timeout=120s")
    webhook = cluster.listener_url("default", stack.DEV_WEBHOOK["metadata"]["name"])

    def completed() -> list[dict[str, str]]:
        listed = subprocess.run(
            [
                sys.executable,
                "-m",
                "tflow_cli",
                "runs",
                "list",
                "--definition",
                "default/incident",
                "--address",
                cluster.temporal_address,
                "-o",
                "json",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        return [r for r in json.loads(listed.stdout) if r["status"] == "completed"]

    # The route reaches the root orchestrator's mounted table within the kubelet's sync
    # period; an incident posted before that is accepted and routed nowhere.
    def routed() -> bool:
        answer = httpx.post(
            webhook,
            # The README's body, with an id of its own: the webhook derives an event's id
            # from its content otherwise, and a repeat of an event already handled (routed
            # nowhere, before the route arrived) is a duplicate, not a new event.
            json={
                "eventType": "incident",
                "source": "monitoring",
                "message": "disk at 85%",
                "id": uuid.uuid4().hex,
            },
            timeout=30,
        )
        assert answer.status_code == 202, answer.text
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            if completed():
                return True
            time.sleep(2)
        return False

    eventually(routed, timeout=240, what="an incident run completing")
    workers = json.loads(
        kubectl(
            "get", "pods", "-n", "default", "-l", "temporalflow.dev/component=worker", "-o", "json"
        ).stdout
    )["items"]
    assert any(
        c["image"] == cluster.samples_image for p in workers for c in p["spec"]["containers"]
    )
