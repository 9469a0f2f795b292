"""A whole cluster on this machine: the control plane serving on the node's address, a real
node (node.py) with the project's images imported into its runtime, the Temporal dev server
where pods reach it, the KEDA operator and its metrics apiserver, and `helm install` of the
chart with the built image. `make dev` and the end-to-end tests both stand on it.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tflow_devstack.controlplane import ControlPlane
from tflow_devstack.images import BuiltImage, build_image
from tflow_devstack.keda import KedaOperator
from tflow_devstack.node import NODE_IP, Node
from tflow_devstack.process import ManagedProcess, port_open
from tflow_devstack.temporal import TemporalServer
from tflow_devstack.tools import REPO_ROOT, go_binary

SYSTEM_NAMESPACE = "temporal-flow"
RELEASE = "temporal-flow"
# The label the operator puts on a Listener's Deployment and Service.
LISTENER_LABEL = "temporalflow.dev/listener"


@dataclass
class Cluster:
    workdir: Path
    # Temporal's UI is for people (`make dev`); tests run it headless.
    temporal_ui: bool = False
    with_keda: bool = True
    control_plane: ControlPlane | None = None
    node: Node | None = None
    temporal: TemporalServer | None = None
    keda: KedaOperator | None = None
    images: dict[str, BuiltImage] = field(default_factory=dict)

    @property
    def cp(self) -> ControlPlane:
        assert self.control_plane is not None, "the cluster is not started"
        return self.control_plane

    def start(self) -> Cluster:
        # Images first: a failed build should stop everything before servers start.
        for target in ("production", "samples"):
            self.images[target] = build_image(target)
        try:
            self.node = Node(self.workdir / "node").prepare()
            self.control_plane = ControlPlane(self.workdir / "controlplane", node_ip=NODE_IP)
            self.control_plane.start()
            self.control_plane.apply_crds(REPO_ROOT / "crds")
            self.node.start(
                self.control_plane, images=tuple(i.archive for i in self.images.values())
            )
            self.temporal = TemporalServer(
                self.workdir / "temporal", headless=not self.temporal_ui
            ).start()
            self.node.expose(self.temporal.port)
            if self.with_keda:
                self.keda = KedaOperator(
                    self.workdir / "keda", self.control_plane.kubeconfig, metrics_api=True
                ).start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.keda is not None:
            self.keda.stop()
        if self.node is not None:
            self.node.stop()
        if self.temporal is not None:
            self.temporal.stop()
        if self.control_plane is not None:
            self.control_plane.stop()

    @property
    def temporal_address(self) -> str:
        """Where pods (and this machine) reach Temporal: the node's address."""
        assert self.temporal is not None
        return f"{NODE_IP}:{self.temporal.port}"

    @property
    def image(self) -> str:
        return self.images["production"].reference

    @property
    def samples_image(self) -> str:
        return self.images["samples"].reference

    def processes(self) -> list[ManagedProcess]:
        """Every server process of the cluster (a dead one means the cluster is broken)."""
        found = [*self.cp.processes]
        if self.node is not None:
            found += self.node.processes
        if self.temporal is not None and self.temporal.process is not None:
            found.append(self.temporal.process)
        if self.keda is not None:
            found += [p for p in (self.keda.process, self.keda.adapter) if p is not None]
        return found

    def listener_url(self, namespace: str, listener: str, timeout: float = 180.0) -> str:
        """A webhook Listener's URL through its Service (reached through kube-proxy's
        rules on the node), once the Listener is Ready."""
        self.cp.kubectl(
            "wait",
            "-n",
            namespace,
            f"listener/{listener}",
            "--for=condition=Ready",
            f"--timeout={int(timeout)}s",
        )
        services = json.loads(
            self.cp.kubectl(
                "get",
                "services",
                "-n",
                namespace,
                "-l",
                f"{LISTENER_LABEL}={listener}",
                "-o",
                "json",
            ).stdout
        )["items"]
        if len(services) != 1:
            raise RuntimeError(f"listener {namespace}/{listener} has {len(services)} Services")
        spec = services[0]["spec"]
        path: str = (
            json.loads(
                self.cp.kubectl("get", "-n", namespace, f"listener/{listener}", "-o", "json").stdout
            )["spec"]
            .get("webhook", {})
            .get("path", "/events")
        )
        return self._answering(spec, f"listener {namespace}/{listener}", timeout) + path

    def service_url(self, namespace: str, service: str, timeout: float = 180.0) -> str:
        """The base URL of a Service (reached through kube-proxy's rules on the node), once
        its address answers."""
        spec: dict[str, Any] = json.loads(
            self.cp.kubectl("get", "-n", namespace, f"service/{service}", "-o", "json").stdout
        )["spec"]
        return self._answering(spec, f"service {namespace}/{service}", timeout)

    @staticmethod
    def _answering(spec: dict[str, Any], what: str, timeout: float) -> str:
        address, port = spec["clusterIP"], int(spec["ports"][0]["port"])
        # Ready pods come before kube-proxy has written the Service's rules (endpoint slices
        # travel through the apiserver first): wait until the address answers.
        deadline = time.monotonic() + timeout
        while not port_open(port, address):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what}: {address}:{port} never answered")
            time.sleep(0.5)
        return f"http://{address}:{port}"

    def helm(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(go_binary("helm")), f"--kubeconfig={self.cp.kubeconfig}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"helm {' '.join(args)} failed: {result.stderr.strip()}")
        return result

    def install_chart(self, *settings: str, timeout: str = "5m") -> None:
        """`helm install --wait` of the chart with the built image, pointed at this
        Temporal; each setting is a `--set` expression."""
        assert self.temporal is not None
        repository, tag = self.image.rsplit(":", 1)
        self.cp.kubectl("create", "namespace", SYSTEM_NAMESPACE, check=False)
        argv = [
            "install",
            RELEASE,
            str(REPO_ROOT / "charts" / "temporal-flow"),
            "--namespace",
            SYSTEM_NAMESPACE,
            "--wait",
            f"--timeout={timeout}",
            # The cluster applied the CRDs from crds/ itself.
            "--set=crds.install=false",
            f"--set=image.repository={repository}",
            f"--set=image.tag={tag}",
            # Nothing can be pulled here: the image is in the node's runtime or nowhere.
            "--set=image.pullPolicy=Never",
            f"--set=temporal.address={self.temporal_address}",
        ]
        argv += [f"--set={s}" for s in settings]
        self.helm(*argv)
