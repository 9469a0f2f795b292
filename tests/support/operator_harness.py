"""Running the operator as a subprocess under its own RBAC role, and small helpers to
read what it made (for the operator's integration tests and its benchmark).

``start_operator`` creates the operator's ServiceAccount, ClusterRole and
ClusterRoleBinding from ``tflow_operator.rbac`` in the control plane, mints a token for
the account (``kubectl create token``), writes a kubeconfig holding only that token, and
starts ``python -m tflow_operator`` with it: whatever the role lacks, the operator lacks.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from polling import eventually

from tflow_devstack.controlplane import ControlPlane
from tflow_devstack.process import ManagedProcess, free_port
from tflow_devstack.tools import cache_dir, versions
from tflow_operator import rbac

T = TypeVar("T")

KEDA_MODULE = "github.com/kedacore/keda/v2"
# The tests' timer period: drift must be repaired within about this long.
RESYNC_SECONDS = 2.0


def keda_crd_dir() -> Path:
    """KEDA's CRDs from its Go module (downloaded once into the Go module cache)."""
    version = versions()["KEDA_VERSION"]
    workdir = cache_dir() / "go-mod-download"
    workdir.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["go", "mod", "download", "-json", f"{KEDA_MODULE}@{version}"],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return Path(json.loads(result.stdout)["Dir"]) / "config" / "crd" / "bases"


def install_keda_crds(kube: ControlPlane) -> None:
    kube.apply_crds(keda_crd_dir())


def token_kubeconfig(path: Path, admin_kubeconfig: Path, server: str, token: str) -> None:
    user_kubeconfig(path, admin_kubeconfig, server, {"token": token})


EXEC_API_VERSION = "client.authentication.k8s.io/v1"


def exec_plugin(path: Path, credential: dict[str, Any], calls: Path, lifetime: float) -> None:
    """A kubectl credential plugin: prints an ExecCredential whose status is
    ``credential`` (a token, or client certificate and key), expiring ``lifetime``
    seconds from each call, and appends one line to ``calls`` per call."""
    path.write_text(
        f"""#!{sys.executable}
import datetime, json
with open({str(calls)!r}, "a") as calls:
    calls.write("called\\n")
expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds={lifetime})
status = dict({credential!r}, expirationTimestamp=expiry.strftime("%Y-%m-%dT%H:%M:%SZ"))
kind = {{"apiVersion": {EXEC_API_VERSION!r}, "kind": "ExecCredential"}}
print(json.dumps(dict(kind, status=status)))
"""
    )
    path.chmod(0o700)


def exec_kubeconfig(path: Path, admin_kubeconfig: Path, server: str, plugin: Path) -> None:
    """A kubeconfig whose user holds no credential, only the plugin that prints one."""
    user = {"exec": {"apiVersion": EXEC_API_VERSION, "command": str(plugin)}}
    user_kubeconfig(path, admin_kubeconfig, server, user)


def user_kubeconfig(path: Path, admin_kubeconfig: Path, server: str, user: dict[str, Any]) -> None:
    admin = yaml.safe_load(admin_kubeconfig.read_text())
    ca = admin["clusters"][0]["cluster"]["certificate-authority-data"]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "tflow", "cluster": {"server": server, "certificate-authority-data": ca}}
        ],
        "users": [{"name": "operator", "user": user}],
        "contexts": [{"name": "tflow", "context": {"cluster": "tflow", "user": "operator"}}],
        "current-context": "tflow",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)


@dataclass
class OperatorProcess:
    kube: ControlPlane
    workdir: Path
    system_namespace: str
    env: dict[str, str]
    health_port: int
    process: ManagedProcess | None = None
    starts: int = field(default=0)

    @property
    def log_path(self) -> Path:
        return self.workdir / "operator.log"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def healthy(self) -> bool:
        url = f"http://127.0.0.1:{self.health_port}/healthz"
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)

    def publishing(self) -> bool:
        result = self.kube.kubectl(
            "get", "configmap", "tflow-routing", "-n", self.system_namespace, check=False
        )
        return result.returncode == 0

    def start(self, timeout: float = 60.0) -> OperatorProcess:
        self.starts += 1
        with self.log_path.open("a") as log:
            log.write(f"\n===== start {self.starts} =====\n")
        self.process = ManagedProcess(
            "operator",
            [sys.executable, "-m", "tflow_operator"],
            self.log_path,
            env=self.env,
        ).start()
        try:
            self.process.wait_until(self.healthy, timeout, "healthy")
            self.process.wait_until(self.publishing, timeout, "publishing")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def allow_secrets(self, namespace: str) -> None:
        """What a namespace's owner does to have the operator check its Secrets: bind the
        operator's secrets ClusterRole there."""
        binding = rbac.secrets_role_binding(namespace, self.system_namespace)
        self.kube.kubectl("apply", "-f", "-", input=yaml.safe_dump(binding))


def start_operator(
    kube: ControlPlane,
    workdir: Path,
    temporal_address: str,
    temporal_namespace: str,
    *,
    resync_seconds: float = 2.0,
    extra_env: dict[str, str] | None = None,
    exec_lifetime: float | None = None,
) -> OperatorProcess:
    """Create the operator's RBAC in the control plane and start it under that role.
    With ``exec_lifetime``, the kubeconfig holds no token but an exec plugin
    (``workdir/credential-plugin``) that prints it, valid that many seconds; it counts
    its calls in ``workdir/credential-plugin.calls``."""
    workdir.mkdir(parents=True, exist_ok=True)
    system_namespace = f"tflow-system-{uuid.uuid4().hex[:6]}"
    kube.kubectl("create", "namespace", system_namespace)
    kube.kubectl("apply", "-f", "-", input=rbac.render(namespace=system_namespace))
    token = kube.kubectl(
        "create", "token", rbac.NAME, "-n", system_namespace, "--duration=12h"
    ).stdout.strip()
    kubeconfig = workdir / "operator.kubeconfig"
    if exec_lifetime is None:
        token_kubeconfig(kubeconfig, kube.kubeconfig, kube.server, token)
    else:
        plugin = workdir / "credential-plugin"
        exec_plugin(plugin, {"token": token}, plugin.with_suffix(".calls"), exec_lifetime)
        exec_kubeconfig(kubeconfig, kube.kubeconfig, kube.server, plugin)
    health_port = free_port()
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "TEMPORAL_ADDRESS": temporal_address,
        "TEMPORAL_NAMESPACE": temporal_namespace,
        "TFLOW_SYSTEM_NAMESPACE": system_namespace,
        "TFLOW_RESYNC_SECONDS": str(resync_seconds),
        "TFLOW_WORKER_IMAGE": "registry.example/temporal-flow/worker:test",
        "TFLOW_HEALTH_PORT": str(health_port),
        **(extra_env or {}),
    }
    operator = OperatorProcess(kube, workdir, system_namespace, env, health_port)
    return operator.start()


# --------------------------------------------------------------------------- reading


def kubectl_json(kube: ControlPlane, *args: str) -> Any:
    result = kube.kubectl(*args, "-o", "json", check=False)
    if result.returncode != 0:
        if "NotFound" in result.stderr or "not found" in result.stderr:
            return None
        raise AssertionError(f"kubectl {' '.join(args)}: {result.stderr}")
    return json.loads(result.stdout)


def get(kube: ControlPlane, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = kubectl_json(kube, "get", kind, name, "-n", namespace)
    return found


def apply(kube: ControlPlane, *objects: dict[str, Any]) -> None:
    text = "".join(f"---\n{yaml.safe_dump(obj)}" for obj in objects)
    kube.kubectl("apply", "--server-side", "--field-manager=tests", "-f", "-", input=text)


def condition(obj: dict[str, Any] | None, type_: str) -> dict[str, Any]:
    for item in ((obj or {}).get("status") or {}).get("conditions") or []:
        if item.get("type") == type_:
            return dict(item)
    return {}


def quiesce(kube: ControlPlane, timeout: float = 120.0) -> None:
    """Wait until no namespace is being deleted (their objects' removal would change the
    operator's cluster-wide data while a test compares it)."""

    def settled() -> bool:
        namespaces = kubectl_json(kube, "get", "namespaces")["items"]
        return all(ns.get("status", {}).get("phase") != "Terminating" for ns in namespaces)

    eventually(settled, timeout=timeout, interval=1.0)


def decode_binary(value: str) -> bytes:
    return base64.b64decode(value)
