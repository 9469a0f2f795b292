"""`make dev`'s stack: it comes up, leaves a working `kubectl get wfd`, and Ctrl-C stops
every process it started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tflow_devstack.process import port_open
from tflow_devstack.tools import REPO_ROOT, go_binary

pytestmark = pytest.mark.integration


def test_dev_stack_up_and_ctrl_c(tmp_path: Path) -> None:
    workdir = tmp_path / "dev"
    log = (tmp_path / "stack.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tflow_devstack", "--workdir", str(workdir), "up"],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=REPO_ROOT,
    )
    try:
        env_file = workdir / "env"
        deadline = time.monotonic() + 180
        while not env_file.exists():
            assert proc.poll() is None, (tmp_path / "stack.log").read_text()
            assert time.monotonic() < deadline, "the stack did not come up in 180s"
            time.sleep(0.5)
        exports = dict(
            line.removeprefix("export ").split("=", 1) for line in env_file.read_text().splitlines()
        )
        kubeconfig = exports["KUBECONFIG"].strip("'")
        printed = (tmp_path / "stack.log").read_text()
        assert f"export KUBECONFIG={kubeconfig}" in printed
        assert "Temporal UI:" in printed

        result = subprocess.run(
            [str(go_binary("kubectl")), "--kubeconfig", kubeconfig, "get", "wfd", "-A"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert "No resources found" in result.stderr

        temporal_port = int(exports["TEMPORAL_ADDRESS"].rsplit(":", 1)[1])
        assert port_open(temporal_port)
        children = _children(proc.pid)
        assert len(children) >= 4, children  # etcd, apiserver, controller-manager, temporal

        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
        assert "stopped." in (tmp_path / "stack.log").read_text()
        assert not port_open(temporal_port)
        assert [pid for pid in children if _alive(pid)] == []
        assert not (workdir / "stack.pid").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()


def _children(pid: int) -> list[int]:
    out = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False
    ).stdout
    return [int(p) for p in out.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie that has not been reaped yet is gone for our purposes.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"
