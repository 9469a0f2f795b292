"""The embedded local stack a person runs with `make dev`: the control plane with the
CRDs installed and the Temporal dev server with its UI, until Ctrl-C or `make dev-down`.

Later pieces of the system (operator, workers, listeners) join this stack; for now it
leaves a person with a working `kubectl get wfd` and a Temporal UI.
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

from tflow_devstack.controlplane import ControlPlane
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
    try:
        print("starting etcd, kube-apiserver and kube-controller-manager ...", flush=True)
        cp.start()
        cp.apply_crds(REPO_ROOT / "crds")
        print("starting the Temporal dev server ...", flush=True)
        temporal.start()
        pidfile.write_text(str(os.getpid()))
        env_lines = {
            "KUBECONFIG": str(cp.kubeconfig),
            "TEMPORAL_ADDRESS": temporal.address,
            "TEMPORAL_NAMESPACE": temporal.namespace,
            "PATH": f"{go_binary('kubectl').parent}:$PATH",
        }
        env_file = workdir / "env"
        env_file.write_text(
            "".join(
                f"export {k}={v if k == 'PATH' else shlex.quote(v)}\n" for k, v in env_lines.items()
            )
        )
        print()
        print("The Temporal Flow dev stack is up. In another shell:")
        print()
        for line in env_file.read_text().splitlines():
            print(f"  {line}")
        print("  kubectl get wfd -A")
        print()
        print(f"  Temporal UI:      {temporal.ui_url}")
        print(f"  Temporal gRPC:    {temporal.address}")
        print(f"  kube-apiserver:   {cp.server}")
        print(f"  (or: source {env_file})")
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
        temporal.stop()
        cp.stop()
        pidfile.unlink(missing_ok=True)
        print("stopped.", flush=True)


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
