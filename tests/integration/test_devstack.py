"""`make dev`'s stack, end to end, as the README tells a person to use it: it comes up with
the chart installed and the incident sample applied; `kubectl apply` of the routes, a
`curl` of an incident to the webhook listener, and `tflow runs list` shows the run
completed — every process run from the Deployments the chart and the operator made.
Ctrl-C stops them all."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from polling import eventually

from tflow_devstack.process import port_open
from tflow_devstack.tools import REPO_ROOT, go_binary

pytestmark = pytest.mark.integration


@pytest.mark.timeout(900)
def test_dev_stack_runs_an_incident_end_to_end(tmp_path: Path) -> None:
    workdir = tmp_path / "dev"
    log_path = tmp_path / "stack.log"
    log = log_path.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tflow_devstack", "--workdir", str(workdir), "up"],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=REPO_ROOT,
    )
    try:
        env_file = workdir / "env"

        def up() -> bool:
            assert proc.poll() is None, log_path.read_text()
            return env_file.exists()

        eventually(up, timeout=300, what="the stack coming up")
        exports = dict(
            line.removeprefix("export ").split("=", 1) for line in env_file.read_text().splitlines()
        )
        kubeconfig = exports["KUBECONFIG"].strip("'")
        address = exports["TEMPORAL_ADDRESS"].strip("'")
        printed = log_path.read_text()
        assert "kubectl apply -f manifests/samples/route.yaml" in printed
        assert "tflow runs list" in printed
        webhook = (workdir / "webhook").read_text()
        assert webhook.startswith("http://127.0.0.1:")

        def kubectl(*args: str) -> str:
            return subprocess.run(
                [str(go_binary("kubectl")), "--kubeconfig", kubeconfig, *args],
                capture_output=True,
                text=True,
                check=True,
                cwd=REPO_ROOT,
            ).stdout

        assert "incident" in kubectl("get", "wfd", "-A")
        kubectl("apply", "-f", "manifests/samples/route.yaml")
        eventually(
            lambda: (
                "True"
                in kubectl(
                    "get",
                    "er",
                    "incidents",
                    "-n",
                    "default",
                    "-o",
                    "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
                )
            ),
            timeout=120,
            what="the incidents route becoming Ready",
        )

        # A mounted ConfigMap reaches the pod a moment after it is written (as with a real
        # kubelet): wait until the root orchestrator's copy of the table has the route.
        def table_mounted() -> bool:
            tables = list((workdir / "kubelet").glob("*root-orchestrator/volumes/routes/*.json"))
            return any('"incident"' in t.read_text() for t in tables)

        eventually(
            table_mounted, timeout=60, what="the routing table reaching the root orchestrator"
        )
        answer = httpx.post(
            webhook,
            json={"eventType": "incident", "source": "monitoring", "message": "disk at 85%"},
            timeout=30,
        )
        assert answer.status_code == 202, answer.text

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
                    address,
                    "-o",
                    "json",
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            return [r for r in json.loads(listed.stdout) if r["status"] == "completed"]

        runs = eventually(completed, timeout=180, what="the incident run completing")
        assert isinstance(runs, list)
        assert len(runs) == 1
        # The stand-in kubelet reports the listener's pod ready.
        eventually(
            lambda: (
                kubectl("get", "lsn", "-A", "-o", "jsonpath={.items[0].status.readyReplicas}")
                == "1"
            ),
            timeout=60,
            what="the listener reporting a ready replica",
        )

        temporal_port = int(address.rsplit(":", 1)[1])
        children = _descendants(proc.pid)
        assert len(children) >= 8, children  # control plane, temporal, 4 deployments, ...
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=120) == 0
        assert "stopped." in log_path.read_text()
        assert not port_open(temporal_port)
        assert [pid for pid in children if _alive(pid)] == []
        assert not (workdir / "stack.pid").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()


def _descendants(pid: int) -> list[int]:
    out = subprocess.run(
        ["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True, check=False
    ).stdout
    parents: dict[int, list[int]] = {}
    for line in out.splitlines():
        child, parent = (int(x) for x in line.split())
        parents.setdefault(parent, []).append(child)
    found: list[int] = []
    todo = list(parents.get(pid, []))
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(parents.get(p, []))
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"
