"""A real Kubernetes control plane: etcd, kube-apiserver (TLS, Node and RBAC
authorization) and kube-controller-manager, plus an admin kubeconfig and a kubectl wrapper.

On its own it serves on loopback and no containers run: Deployments get ReplicaSets and Pod
objects, which is what most of the operator's tests need (real objects, real garbage
collection). Given a `node_ip` (the address of the node's bridge, see node.py) the
apiserver serves there instead, so pods can reach it through the `kubernetes` Service,
and the controllers a node needs (endpoint slices, the root CA published into every
namespace, the HorizontalPodAutoscaler) run too.
"""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tflow_devstack.certs import CertificateAuthority, KeyPair, service_account_keys
from tflow_devstack.process import ManagedProcess, ServerFailedError, free_port
from tflow_devstack.tools import go_binary

SERVICE_CIDR = "10.0.0.0/24"
SERVICE_IP = "10.0.0.1"
CONTROLLERS = (
    "garbagecollector",
    "deployment",
    "replicaset",
    "namespace",
    "serviceaccount",
    "serviceaccount-token",
)
# Only with a node: the node's not-ready taint is lifted once it is Ready, Services need
# endpoint slices for kube-proxy, every projected service-account token mounts the
# `kube-root-ca.crt` ConfigMap, KEDA's HPAs scale 1 -> N, and the chart's
# PodDisruptionBudget is honoured.
NODE_CONTROLLERS = (
    "nodelifecycle",
    "endpointslice",
    "root-ca-cert-publisher",
    "horizontalpodautoscaling",
    "disruption",
    "podgc",
)


class KubectlError(RuntimeError):
    def __init__(self, argv: list[str], result: subprocess.CompletedProcess[str]) -> None:
        self.result = result
        super().__init__(
            f"kubectl {' '.join(argv)} exited {result.returncode}: {result.stderr.strip()}"
        )


def write_kubeconfig(path: Path, server: str, ca: Path, client: KeyPair, user: str) -> None:
    def b64(p: Path) -> str:
        return base64.b64encode(p.read_bytes()).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "tflow-dev",
                "cluster": {"server": server, "certificate-authority-data": b64(ca)},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": b64(client.cert),
                    "client-key-data": b64(client.key),
                },
            }
        ],
        "contexts": [{"name": "tflow-dev", "context": {"cluster": "tflow-dev", "user": user}}],
        "current-context": "tflow-dev",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)


@dataclass
class ControlPlane:
    workdir: Path
    etcd_port: int = field(default_factory=free_port)
    etcd_peer_port: int = field(default_factory=free_port)
    apiserver_port: int = field(default_factory=free_port)
    # The address the apiserver serves on and advertises when a node runs (None: loopback).
    node_ip: str | None = None
    # The apiserver serves /debug/pprof (bench_operator.py --apiserver-profile); off
    # otherwise, as a production apiserver should be.
    profiling: bool = False
    processes: list[ManagedProcess] = field(default_factory=list)

    @property
    def host(self) -> str:
        return self.node_ip or "127.0.0.1"

    @property
    def server(self) -> str:
        return f"https://{self.host}:{self.apiserver_port}"

    @property
    def ca(self) -> CertificateAuthority:
        """The cluster CA, which also issues the node's and its components' certificates."""
        return self._authority

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "admin.kubeconfig"

    def start(self, timeout: float = 120.0) -> ControlPlane:
        pki = self.workdir / "pki"
        ca = CertificateAuthority(pki)
        serving = ca.issue(
            "apiserver",
            "kube-apiserver",
            dns_names=(
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ),
            ips=("127.0.0.1", SERVICE_IP, *([self.node_ip] if self.node_ip else [])),
            server=True,
        )
        admin = ca.issue("admin", "tflow-admin", organization="system:masters")
        # Logs, exec and port-forward go through the apiserver to the kubelet with this.
        self._kubelet_client = ca.issue(
            "apiserver-kubelet-client", "kube-apiserver-kubelet-client", "system:masters"
        )
        self._authority = ca
        self._front_proxy = ca.issue("front-proxy-client", "front-proxy-client")
        sa = service_account_keys(pki)
        self._ca = ca.cert_path
        self._admin = admin
        write_kubeconfig(self.kubeconfig, self.server, ca.cert_path, admin, "admin")
        logs = self.workdir / "logs"
        try:
            self._start_etcd(logs, timeout)
            self._start_apiserver(logs, serving, sa, timeout)
            self._start_controller_manager(logs, sa, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_etcd(self, logs: Path, timeout: float) -> None:
        peer = f"http://127.0.0.1:{self.etcd_peer_port}"
        client = f"http://127.0.0.1:{self.etcd_port}"
        etcd = ManagedProcess(
            "etcd",
            [
                go_binary("etcd"),
                "--name=tflow",
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=tflow={peer}",
                "--log-level=warn",
                # Durability across power loss is not what a throw-away test etcd is for.
                "--unsafe-no-fsync",
            ],
            logs / "etcd.log",
        ).start()
        self.processes.append(etcd)

        def healthy() -> bool:
            with urllib.request.urlopen(f"{client}/health", timeout=1) as r:
                return bool(json.load(r).get("health") == "true")

        etcd.wait_until(healthy, timeout, "healthy")

    def _start_apiserver(self, logs: Path, serving: KeyPair, sa: KeyPair, timeout: float) -> None:
        apiserver = ManagedProcess(
            "kube-apiserver",
            [
                go_binary("kube-apiserver"),
                f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
                f"--bind-address={self.host}",
                f"--advertise-address={self.host}",
                f"--secure-port={self.apiserver_port}",
                f"--cert-dir={self.workdir / 'pki'}",
                f"--tls-cert-file={serving.cert}",
                f"--tls-private-key-file={serving.key}",
                f"--client-ca-file={self._ca}",
                f"--service-account-key-file={sa.cert}",
                f"--service-account-signing-key-file={sa.key}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                # Node authorization with NodeRestriction: the kubelet's credentials reach
                # only its own node and the objects of pods bound to it.
                "--authorization-mode=Node,RBAC",
                "--enable-admission-plugins=NodeRestriction",
                f"--kubelet-client-certificate={self._kubelet_client.cert}",
                f"--kubelet-client-key={self._kubelet_client.key}",
                f"--kubelet-certificate-authority={self._ca}",
                "--kubelet-preferred-address-types=InternalIP",
                # Aggregated APIs (KEDA's external metrics) are reached at their endpoints,
                # not through a Service IP.
                "--enable-aggregator-routing=true",
                f"--requestheader-client-ca-file={self._ca}",
                "--requestheader-allowed-names=front-proxy-client",
                "--requestheader-username-headers=X-Remote-User",
                "--requestheader-group-headers=X-Remote-Group",
                "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                f"--proxy-client-cert-file={self._front_proxy.cert}",
                f"--proxy-client-key-file={self._front_proxy.key}",
                "--allow-privileged=true",
                f"--profiling={'true' if self.profiling else 'false'}",
                "--v=0",
            ],
            logs / "kube-apiserver.log",
        ).start()
        self.processes.append(apiserver)
        apiserver.wait_until(lambda: self._get("/readyz") == "ok", timeout, "ready")

    def _start_controller_manager(self, logs: Path, sa: KeyPair, timeout: float) -> None:
        kcm = ManagedProcess(
            "kube-controller-manager",
            [
                go_binary("kube-controller-manager"),
                f"--kubeconfig={self.kubeconfig}",
                f"--controllers={','.join(self.controllers)}",
                f"--service-account-private-key-file={sa.key}",
                f"--root-ca-file={self._ca}",
                "--leader-elect=false",
                "--secure-port=0",
                # KEDA's HPAs act within seconds, as a person trying the stack expects
                # (the default is 15 s).
                "--horizontal-pod-autoscaler-sync-period=5s",
                "--v=0",
            ],
            logs / "kube-controller-manager.log",
        ).start()
        self.processes.append(kcm)
        # The service-account controller creating `default` in `default` shows the
        # controllers are running, not just the process.
        kcm.wait_until(
            lambda: (
                self.kubectl(
                    "get", "serviceaccount", "default", "-n", "default", check=False
                ).returncode
                == 0
            ),
            timeout,
            "running its controllers",
        )

    @property
    def controllers(self) -> tuple[str, ...]:
        return CONTROLLERS + NODE_CONTROLLERS if self.node_ip else CONTROLLERS

    def _get(self, path: str) -> str:
        ctx = ssl.create_default_context(cafile=str(self._ca))
        ctx.load_cert_chain(str(self._admin.cert), str(self._admin.key))
        with urllib.request.urlopen(f"{self.server}{path}", context=ctx, timeout=2) as r:
            body: bytes = r.read()
            return body.decode()

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        argv = [str(go_binary("kubectl")), f"--kubeconfig={self.kubeconfig}", *args]
        result = subprocess.run(
            argv, input=input, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise KubectlError(list(args), result)
        return result

    def apply_crds(self, crd_dir: Path, timeout: float = 60.0) -> list[str]:
        """Apply every CRD in crd_dir and wait until each is Established."""
        files = sorted(crd_dir.glob("*.yaml"))
        if not files:
            raise ServerFailedError(f"no CRDs found in {crd_dir}: run `make crds`")
        names = []
        for f in files:
            names.append(str(yaml.safe_load(f.read_text())["metadata"]["name"]))
            self.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(f))
        deadline = time.monotonic() + timeout
        for name in names:
            self.kubectl(
                "wait",
                "--for=condition=Established",
                f"crd/{name}",
                f"--timeout={max(1, int(deadline - time.monotonic()))}s",
            )
        return names

    def stop(self) -> None:
        for proc in reversed(self.processes):
            proc.stop()
        self.processes.clear()
