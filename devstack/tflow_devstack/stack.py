"""The local stack a person runs with `make dev`, until Ctrl-C or `make dev-down`: a whole
cluster on this machine (cluster.py: the control plane, a real node running real
containers from the images built here, the Temporal dev server with its UI, KEDA), the
chart installed (operator, root orchestrator, a sample webhook Listener, all in pods), and
the incident sample applied.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

import yaml

from tflow_devstack.cluster import SYSTEM_NAMESPACE, Cluster
from tflow_devstack.images import ImageBuildError
from tflow_devstack.node import NodeUnavailableError
from tflow_devstack.tools import REPO_ROOT, MissingToolError, go_binary

DEFAULT_WORKDIR = REPO_ROOT / ".dev"


def _pidfile(workdir: Path) -> Path:
    return workdir / "stack.pid"


def start(workdir: Path, *, temporal_ui: bool = True, settings: tuple[str, ...] = ()) -> Cluster:
    """The cluster with the chart installed and the samples applied: what `up` runs, and
    what the end-to-end tests stand on. `settings` are extra `--set` values for the chart."""
    cluster = Cluster(workdir, temporal_ui=temporal_ui).start()
    try:
        for namespace in (SYSTEM_NAMESPACE, SAMPLE_NAMESPACE):
            # Every pod the chart and the operator make passes `restricted`; the stack's
            # namespaces insist on it, as a careful cluster would.
            cluster.cp.kubectl("create", "namespace", namespace, check=False)
            cluster.cp.kubectl("label", "--overwrite", "namespace", namespace, *RESTRICTED_LABELS)
        samples_repository, samples_tag = cluster.samples_image.rsplit(":", 1)
        cluster.install_chart(
            "listener.sample.enabled=true",
            "operator.resyncSeconds=5",
            # The samples' flows call the sample functions, which only that image carries.
            f"workers.image.repository={samples_repository}",
            f"workers.image.tag={samples_tag}",
            *settings,
        )
        for sample in SAMPLES:
            cluster.cp.kubectl("apply", "-n", SAMPLE_NAMESPACE, "-f", str(REPO_ROOT / sample))
        # Events stay in the namespace their Listener runs in, so the samples get a webhook
        # of their own (the chart's sample Listener serves the release namespace).
        cluster.cp.kubectl(
            "apply", "-n", SAMPLE_NAMESPACE, "-f", "-", input=yaml.safe_dump(DEV_WEBHOOK)
        )
    except BaseException:
        cluster.stop()
        raise
    return cluster


def up(workdir: Path) -> int:
    workdir = workdir.resolve()
    pidfile = _pidfile(workdir)
    if pidfile.exists():
        try:
            os.kill(int(pidfile.read_text()), 0)
        except (ProcessLookupError, ValueError):
            pidfile.unlink()
        else:
            print(
                f"a dev stack is already running (pid {pidfile.read_text().strip()}); "
                "stop it with `make dev-down`",
                file=sys.stderr,
            )
            return 1
    # Each start is a clean slate: a previous run's etcd and certificates are discarded.
    _rmtree(workdir / "cluster")
    workdir.mkdir(parents=True, exist_ok=True)

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    print(
        "building the images (cached), then starting the control plane, a real node "
        "(containerd, kubelet), Temporal and KEDA, and installing the chart ...",
        flush=True,
    )
    try:
        cluster = start(workdir / "cluster")
    except (NodeUnavailableError, ImageBuildError, MissingToolError) as e:
        print(f"the dev stack cannot start: {e}", file=sys.stderr)
        return 1
    try:
        assert cluster.temporal is not None
        webhook = cluster.listener_url(SAMPLE_NAMESPACE, DEV_WEBHOOK["metadata"]["name"])
        pidfile.write_text(str(os.getpid()))
        env_lines = {
            "KUBECONFIG": str(cluster.cp.kubeconfig),
            "TEMPORAL_ADDRESS": cluster.temporal.address,
            "TEMPORAL_NAMESPACE": cluster.temporal.namespace,
            # `tflow ui` links each run to its history in Temporal's own UI.
            "TFLOW_TEMPORAL_UI_URL": cluster.temporal.ui_url,
            "PATH": f"{go_binary('kubectl').parent}:{Path(sys.executable).parent}:$PATH",
        }
        env_file = workdir / "env"
        env_file.write_text(
            "".join(
                f"export {k}={v if k == 'PATH' else shlex.quote(v)}\n" for k, v in env_lines.items()
            )
        )
        (workdir / "webhook").write_text(webhook)
        print()
        print("The Temporal Flow dev stack is up. In another shell:")
        print()
        print(f"  source {env_file}")
        for line in env_file.read_text().splitlines():
            print(f"  # {line}")
        print("  kubectl get wfd,er,lsn -A")
        print("  kubectl get pods -A -o wide")
        print("  kubectl apply -f manifests/samples/route.yaml")
        print(f"  curl -X POST {webhook} \\")
        print("    -H 'Content-Type: application/json' \\")
        print(
            '    -d \'{"eventType": "incident", "source": "monitoring", "message": "disk at 85%"}\''
        )
        print("  tflow runs list --definition default/incident")
        print("  tflow ui                                   # the web UI, http://127.0.0.1:8088/")
        print()
        print(f"  Temporal UI:      {cluster.temporal.ui_url}")
        print(f"  Temporal gRPC:    {cluster.temporal.address}")
        print(f"  kube-apiserver:   {cluster.cp.server}")
        print(f"  webhook listener: {webhook} (its Service, through kube-proxy)")
        print(f"  logs:             {workdir / 'cluster'} (and kubectl logs)")
        print()
        print("Ctrl-C (or `make dev-down`) stops everything.", flush=True)
        while not stop.wait(1.0):
            for proc in cluster.processes():
                if not proc.alive():
                    print(
                        f"{proc.name} exited; its log: {proc.log_path}\n{proc.log_tail()}",
                        file=sys.stderr,
                    )
                    return 1
        return 0
    finally:
        print("stopping the dev stack ...", flush=True)
        cluster.stop()
        pidfile.unlink(missing_ok=True)
        print("stopped.", flush=True)


SAMPLE_NAMESPACE = "default"
SAMPLES = ("manifests/samples/incident-workflow.yaml",)
# Unauthenticated, for trying things on this machine only; a real one names an HMAC secret
# or tokens (manifests/samples/listener-webhook.yaml).
DEV_WEBHOOK: dict[str, Any] = {
    "apiVersion": "temporalflow.dev/v1alpha1",
    "kind": "Listener",
    "metadata": {
        "name": "dev-webhook",
        "labels": {"app.kubernetes.io/part-of": "temporal-flow-dev"},
    },
    "spec": {"type": "webhook", "webhook": {"path": "/events", "port": 8080}},
}
RESTRICTED_LABELS = (
    "pod-security.kubernetes.io/enforce=restricted",
    "pod-security.kubernetes.io/enforce-version=latest",
)


def down(workdir: Path, timeout: float = 60.0) -> int:
    pidfile = _pidfile(workdir.resolve())
    if not pidfile.exists():
        print("no dev stack is running", file=sys.stderr)
        return 0
    pid = int(pidfile.read_text())
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pidfile.unlink(missing_ok=True)
        return 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return 0
        time.sleep(0.2)
    print(f"the dev stack (pid {pid}) did not stop within {timeout:.0f}s", file=sys.stderr)
    return 1


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tflow-dev", description="Run the Temporal Flow embedded local stack."
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=DEFAULT_WORKDIR,
        help="state, logs and kubeconfig (default: .dev in the repository)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="start the stack in the foreground; Ctrl-C stops it")
    sub.add_parser("down", help="stop a stack started with `up`")
    args = parser.parse_args(argv)
    if args.command == "up":
        return up(args.workdir)
    return down(args.workdir)


if __name__ == "__main__":
    sys.exit(main())
