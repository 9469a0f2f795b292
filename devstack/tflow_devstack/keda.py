"""The KEDA operator, run out of cluster against the control plane's apiserver.

`make keda` builds it from KEDA's Go module into the per-user cache, with KEDA's CRDs next
to the binary. This runner installs those CRDs (ScaledObject, ScaledJob,
TriggerAuthentication, ClusterTriggerAuthentication and the eventing kinds the operator
also watches), then starts the operator with a kubeconfig, every listener on a free
loopback port, leader election and certificate rotation off, and a throw-away serving
certificate for its metrics gRPC service (which refuses to start without one).

The operator itself polls each ScaledObject's triggers and scales its target between zero
and one replica (activation). Scaling between one and N is the HorizontalPodAutoscaler's
(kube-controller-manager), fed by KEDA's metrics apiserver: with `metrics_api=True` that
runs too, registered as the `v1beta1.external.metrics.k8s.io` APIService behind a
selector-less Service whose endpoint is this machine's address on the node's bridge (the
apiserver routes aggregated APIs to endpoints, see controlplane.py), and it asks the
operator's gRPC metrics service for each trigger's value with the operator's own
certificate (mutual TLS), as KEDA's chart sets them up.
"""

from __future__ import annotations

import os
import subprocess
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tflow_devstack.certs import CertificateAuthority
from tflow_devstack.process import ManagedProcess, ServerFailedError, free_port
from tflow_devstack.tools import go_binary

# The namespace KEDA treats as its own (ClusterTriggerAuthentication secrets live there).
KEDA_NAMESPACE = "keda"


def keda_crd_dir() -> Path:
    """KEDA's CRDs, copied next to the cached binary by `make keda`."""
    return go_binary("keda").parent / "crds"


@dataclass
class KedaOperator:
    workdir: Path
    kubeconfig: Path
    # Namespaces whose ScaledObjects KEDA acts on, comma separated; empty means all.
    watch_namespace: str = ""
    metrics_port: int = field(default_factory=free_port)
    health_port: int = field(default_factory=free_port)
    grpc_port: int = field(default_factory=free_port)
    log_level: str = "info"
    # Also run the metrics apiserver (needs a control plane that serves on a node's address).
    metrics_api: bool = False
    adapter_port: int = field(default_factory=free_port)
    adapter_metrics_port: int = field(default_factory=free_port)
    process: ManagedProcess | None = None
    adapter: ManagedProcess | None = None

    @property
    def log_path(self) -> Path:
        return self.workdir / "keda-operator.log"

    def _kubectl(self, *args: str, input: str | None = None) -> str:
        argv = [str(go_binary("kubectl")), f"--kubeconfig={self.kubeconfig}", *args]
        result = subprocess.run(
            argv, input=input, capture_output=True, text=True, timeout=120, check=False
        )
        if result.returncode != 0:
            raise ServerFailedError(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
        return result.stdout

    def install_crds(self, timeout: float = 60.0) -> list[str]:
        """Apply KEDA's CRDs and wait until each is Established; returns their names."""
        files = sorted(keda_crd_dir().glob("*.yaml"))
        if not files:
            raise ServerFailedError(f"no KEDA CRDs in {keda_crd_dir()}: run `make keda`")
        names: list[str] = []
        for f in files:
            names.append(str(yaml.safe_load(f.read_text())["metadata"]["name"]))
            self._kubectl("apply", "--server-side", "--force-conflicts", "-f", str(f))
        self._kubectl(
            "wait",
            "--for=condition=Established",
            f"--timeout={int(timeout)}s",
            *(f"crd/{n}" for n in names),
        )
        return names

    def _certificates(self) -> Path:
        """ca.crt, tls.crt and tls.key for the operator's metrics gRPC service."""
        certs = self.workdir / "certs"
        ca = CertificateAuthority(certs)
        # ca.crt from the authority, tls.crt and tls.key from the stem "tls".
        # The metrics apiserver presents the same certificate as a client (KEDA shares one
        # between the two), so it serves and authenticates.
        ca.issue(
            "tls",
            "keda-operator",
            dns_names=("localhost", "keda-operator", f"keda-operator.{KEDA_NAMESPACE}.svc"),
            ips=("127.0.0.1",),
            server=True,
            client=True,
        )
        return certs

    def start(self, timeout: float = 90.0) -> KedaOperator:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.install_crds()
        self._kubectl(
            "apply",
            "-f",
            "-",
            input=yaml.safe_dump(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": KEDA_NAMESPACE}}
            ),
        )
        certs = self._certificates()
        ca_dir = self.workdir / "ca"
        ca_dir.mkdir(exist_ok=True)
        env = dict(os.environ)
        env.update(
            {
                "KUBECONFIG": str(self.kubeconfig),
                "WATCH_NAMESPACE": self.watch_namespace,
                "KEDA_CLUSTER_OBJECT_NAMESPACE": KEDA_NAMESPACE,
                "POD_NAMESPACE": KEDA_NAMESPACE,
                "POD_NAME": "keda-operator-local",
                "OPERATOR_NAME": "keda-operator",
            }
        )
        argv: list[str | os.PathLike[str]] = [
            go_binary("keda"),
            f"--metrics-bind-address=127.0.0.1:{self.metrics_port}",
            f"--health-probe-bind-address=127.0.0.1:{self.health_port}",
            f"--metrics-service-bind-address=127.0.0.1:{self.grpc_port}",
            "--leader-elect=false",
            "--enable-cert-rotation=false",
            "--enable-webhook-patching=false",
            "--enable-apiservice-patching=false",
            f"--cert-dir={certs}",
            f"--ca-dir={ca_dir}",
            f"--zap-log-level={self.log_level}",
            "--zap-encoder=console",
        ]
        self.process = ManagedProcess("keda-operator", argv, self.log_path, env=env).start()
        self.process.wait_until(self.ready, timeout, "ready")
        if self.metrics_api:
            self._start_adapter(certs, env, timeout)
        return self

    def _start_adapter(self, certs: Path, env: dict[str, str], timeout: float) -> None:
        server = yaml.safe_load(self.kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
        host = server.split("//", 1)[1].rsplit(":", 1)[0]
        argv: list[str | os.PathLike[str]] = [
            go_binary("keda-adapter"),
            f"--secure-port={self.adapter_port}",
            f"--bind-address={host}",
            f"--cert-dir={certs}",
            f"--tls-cert-file={certs / 'tls.crt'}",
            f"--tls-private-key-file={certs / 'tls.key'}",
            f"--lister-kubeconfig={self.kubeconfig}",
            f"--authentication-kubeconfig={self.kubeconfig}",
            f"--authorization-kubeconfig={self.kubeconfig}",
            f"--port={self.adapter_metrics_port}",
            f"--metrics-service-address=127.0.0.1:{self.grpc_port}",
            "--metrics-service-grpc-authority=keda-operator",
            f"--zap-log-level={self.log_level}",
        ]
        self.adapter = ManagedProcess(
            "keda-metrics-apiserver", argv, self.workdir / "keda-metrics-apiserver.log", env=env
        ).start()
        service = "keda-metrics-apiserver"
        objects = [
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": service, "namespace": KEDA_NAMESPACE},
                "spec": {
                    "ports": [{"name": "https", "port": 443, "targetPort": self.adapter_port}]
                },
            },
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "name": service,
                    "namespace": KEDA_NAMESPACE,
                    "labels": {"kubernetes.io/service-name": service},
                },
                "addressType": "IPv4",
                "endpoints": [{"addresses": [host], "conditions": {"ready": True}}],
                "ports": [{"name": "https", "port": self.adapter_port, "protocol": "TCP"}],
            },
            {
                "apiVersion": "apiregistration.k8s.io/v1",
                "kind": "APIService",
                "metadata": {"name": "v1beta1.external.metrics.k8s.io"},
                "spec": {
                    "service": {"name": service, "namespace": KEDA_NAMESPACE, "port": 443},
                    "group": "external.metrics.k8s.io",
                    "version": "v1beta1",
                    # Its serving certificate is the throw-away one made above.
                    "insecureSkipTLSVerify": True,
                    "groupPriorityMinimum": 100,
                    "versionPriority": 100,
                },
            },
        ]
        self._kubectl("apply", "-f", "-", input=yaml.safe_dump_all(objects))

        def available() -> bool:
            out = self._kubectl(
                "get",
                "apiservice",
                "v1beta1.external.metrics.k8s.io",
                "-o",
                'jsonpath={.status.conditions[?(@.type=="Available")].status}',
            )
            return out.strip() == "True"

        self.adapter.wait_until(available, timeout, "an available APIService")

    def ready(self) -> bool:
        url = f"http://127.0.0.1:{self.health_port}/readyz"
        with urllib.request.urlopen(url, timeout=1) as r:
            return bool(r.status == 200)

    def stop(self) -> None:
        if self.adapter is not None:
            self.adapter.stop()
        if self.process is not None:
            self.process.stop()
