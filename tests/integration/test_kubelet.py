"""The dev stack's stand-in kubelet runs a Deployment's process from its pod template:
command, env (values, secrets, the downward API), ConfigMap volumes kept current, ports
mapped, a service-account kubeconfig; and stops it when the Deployment goes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from polling import eventually

from tflow_devstack.controlplane import ControlPlane
from tflow_devstack.kubelet import ProcessKubelet

pytestmark = pytest.mark.integration

SCRIPT = """
import http.server, json, os, pathlib, subprocess
out = pathlib.Path(os.environ["OUT"])
out.write_text(json.dumps({k: os.environ.get(k) for k in
    ("GREETING", "TOKEN", "NS", "CONFIG_DIR", "PORT", "KUBECONFIG")}))
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = (pathlib.Path(os.environ["CONFIG_DIR"]) / "greeting.txt").read_bytes()
        self.send_response(200); self.end_headers(); self.wfile.write(body)
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"""


@pytest.fixture
def kubelet(kube: ControlPlane, tmp_path: Path) -> Iterator[ProcessKubelet]:
    k = ProcessKubelet(kube, tmp_path / "kubelet", period=0.5).start()
    try:
        yield k
    finally:
        k.stop()


def test_runs_a_deployment_as_a_process(
    kube: ControlPlane, namespace: str, kubelet: ProcessKubelet, tmp_path: Path
) -> None:
    out = tmp_path / "out.json"
    kube.kubectl("create", "serviceaccount", "runner", "-n", namespace)
    kube.kubectl(
        "create", "secret", "generic", "creds", "--from-literal=token=s3cret", "-n", namespace
    )
    kube.kubectl("create", "configmap", "cfg", "--from-literal=greeting.txt=hello", "-n", namespace)
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "demo",
            "namespace": namespace,
            "labels": {"app.kubernetes.io/part-of": "temporal-flow"},
        },
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "demo"}},
            "template": {
                "metadata": {"labels": {"app": "demo"}},
                "spec": {
                    "serviceAccountName": "runner",
                    "containers": [
                        {
                            "name": "demo",
                            "image": "ignored",
                            "command": ["python", "-c", SCRIPT],
                            "ports": [{"containerPort": 8080}],
                            "env": [
                                {"name": "GREETING", "value": "hi"},
                                {"name": "OUT", "value": str(out)},
                                {"name": "PORT", "value": "8080"},
                                {"name": "CONFIG_DIR", "value": "/etc/demo"},
                                {
                                    "name": "TOKEN",
                                    "valueFrom": {
                                        "secretKeyRef": {"name": "creds", "key": "token"}
                                    },
                                },
                                {
                                    "name": "NS",
                                    "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
                                },
                            ],
                            "volumeMounts": [{"name": "cfg", "mountPath": "/etc/demo"}],
                        }
                    ],
                    "volumes": [{"name": "cfg", "configMap": {"name": "cfg"}}],
                },
            },
        },
    }
    kube.kubectl("apply", "-f", "-", input=yaml.safe_dump(deployment))
    eventually(out.exists, timeout=60)
    seen = json.loads(out.read_text())
    port = kubelet.port_of(namespace, "demo", 8080)
    assert port is not None
    assert seen["GREETING"] == "hi"
    assert seen["TOKEN"] == "s3cret"
    assert seen["NS"] == namespace
    assert seen["PORT"] == str(port)
    assert seen["CONFIG_DIR"] is not None
    assert not seen["CONFIG_DIR"].startswith("/etc/")

    def answers(text: str) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/", timeout=1).text == text
        except httpx.HTTPError:
            return False

    eventually(lambda: answers("hello"), timeout=60)
    # The pod's kubeconfig is its service account's: it may not list secrets.
    denied = kube.kubectl(
        "--kubeconfig", seen["KUBECONFIG"], "get", "secrets", "-n", namespace, check=False
    )
    assert denied.returncode != 0
    assert "forbidden" in denied.stderr

    kube.kubectl(
        "patch",
        "configmap",
        "cfg",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        json.dumps({"data": {"greeting.txt": "bonjour"}}),
    )
    eventually(lambda: answers("bonjour"), timeout=60)  # the same process reads the updated volume

    kube.kubectl("delete", "deployment", "demo", "-n", namespace)
    eventually(lambda: not answers("bonjour"), timeout=60)
    assert f"{namespace}/demo" not in kubelet.running()
