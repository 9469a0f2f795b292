"""The embedded local stack a person runs with `make dev`, until Ctrl-C or `make dev-down`:
the control plane with the CRDs, the Temporal dev server with its UI, the chart installed
(operator, root orchestrator, a sample webhook Listener), the incident sample applied,
and a stand-in kubelet that runs every Deployment the chart and the operator create as a
local process (see kubelet.py) — so what runs is what the operator generated.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from tflow_devstack.controlplane import ControlPlane
from tflow_devstack.kubelet import ProcessKubelet
from tflow_devstack.temporal import TemporalServer
from tflow_devstack.tools import REPO_ROOT, go_binary

DEFAULT_WORKDIR = REPO_ROOT / ".dev"


def _pidfile(workdir: Path) -> Path:
    return workdir / "stack.pid"


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
    for stale in ("controlplane", "temporal"):
        _rmtree(workdir / stale)
    workdir.mkdir(parents=True, exist_ok=True)

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    cp = ControlPlane(workdir / "controlplane")
    temporal = TemporalServer(workdir / "temporal")
    kubelet: ProcessKubelet | None = None
    try:
        print("starting etcd, kube-apiserver and kube-controller-manager ...", flush=True)
        cp.start()
        cp.apply_crds(REPO_ROOT / "crds")
        print("starting the Temporal dev server ...", flush=True)
        temporal.start()
        print(
            "installing the chart (operator, root orchestrator, webhook listener) ...", flush=True
        )
        install_chart(cp, temporal)
        kubelet = ProcessKubelet(cp, workdir / "kubelet").start()
        for sample in SAMPLES:
            cp.kubectl("apply", "-n", SAMPLE_NAMESPACE, "-f", str(REPO_ROOT / sample))
        webhook = wait_for_webhook(kubelet, stop)
        pidfile.write_text(str(os.getpid()))
        env_lines = {
            "KUBECONFIG": str(cp.kubeconfig),
            "TEMPORAL_ADDRESS": temporal.address,
            "TEMPORAL_NAMESPACE": temporal.namespace,
            "PATH": f"{go_binary('kubectl').parent}:{Path(sys.executable).parent}:$PATH",
        }
        env_file = workdir / "env"
        env_file.write_text(
            "".join(
                f"export {k}={v if k == 'PATH' else shlex.quote(v)}\n" for k, v in env_lines.items()
            )
        )
        (workdir / "webhook").write_text(webhook or "")
        print()
        print("The Temporal Flow dev stack is up. In another shell:")
        print()
        print(f"  source {env_file}")
        for line in env_file.read_text().splitlines():
            print(f"  # {line}")
        print("  kubectl get wfd,er,lsn -A")
        print("  kubectl apply -f manifests/samples/route.yaml")
        print(f"  curl -X POST {webhook or 'http://127.0.0.1:<port>/events'} \\")
        print("    -H 'Content-Type: application/json' \\")
        print(
            '    -d \'{"eventType": "incident", "source": "monitoring", "message": "disk at 85%"}\''
        )
        print("  tflow runs list --definition default/incident")
        print()
        print(f"  Temporal UI:      {temporal.ui_url}")
        print(f"  Temporal gRPC:    {temporal.address}")
        print(f"  kube-apiserver:   {cp.server}")
        print(f"  webhook listener: {webhook or '(not up yet)'}")
        print(f"  process logs:     {workdir / 'kubelet' / 'logs'}")
        print()
        print("Ctrl-C (or `make dev-down`) stops everything.", flush=True)
        while not stop.wait(1.0):
            for proc in [*cp.processes, *([temporal.process] if temporal.process else [])]:
                if not proc.alive():
                    print(
                        f"{proc.name} exited; its log: {proc.log_path}\n{proc.log_tail()}",
                        file=sys.stderr,
                    )
                    return 1
        return 0
    finally:
        print("stopping the dev stack ...", flush=True)
        if kubelet is not None:
            kubelet.stop()
        temporal.stop()
        cp.stop()
        pidfile.unlink(missing_ok=True)
        print("stopped.", flush=True)


SAMPLE_NAMESPACE = "default"
SAMPLES = ("manifests/samples/incident-workflow.yaml",)
SYSTEM_NAMESPACE = "temporal-flow"


def install_chart(cp: ControlPlane, temporal: TemporalServer) -> None:
    """`helm install` the chart as a cluster would have it, pointed at this Temporal."""
    cp.kubectl("create", "namespace", SYSTEM_NAMESPACE)
    result = subprocess.run(
        [
            str(go_binary("helm")),
            "install",
            "temporal-flow",
            str(REPO_ROOT / "charts" / "temporal-flow"),
            "--namespace",
            SYSTEM_NAMESPACE,
            f"--kubeconfig={cp.kubeconfig}",
            # The stack applied the CRDs itself, from crds/.
            "--set",
            "crds.install=false",
            "--set",
            f"temporal.address={temporal.address}",
            "--set",
            "listener.sample.enabled=true",
            "--set",
            "operator.resyncSeconds=5",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"helm install failed: {result.stderr}")


def wait_for_webhook(
    kubelet: ProcessKubelet, stop: threading.Event, timeout: float = 120.0
) -> str | None:
    """The local URL of the sample webhook listener, once its process answers."""
    import time
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stop.is_set():
        for key in kubelet.running():
            namespace, name = key.split("/", 1)
            if not name.startswith("tflow-listener-"):
                continue
            port = kubelet.port_of(namespace, name, 8080)
            if port is None:
                continue
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                    return f"http://127.0.0.1:{port}/events"
            except OSError:
                pass
        stop.wait(0.5)
    return None


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
