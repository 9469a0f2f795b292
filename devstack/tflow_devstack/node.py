"""A real Kubernetes node on this machine: containerd and runc (Debian's packages) run the
pods that kubelet, kube-scheduler and kube-proxy (built from the same k8s.io/kubernetes
modules as the apiserver) give them, on a bridge network made by the CNI plugins.

One node per machine: its runtime state lives at fixed places (`STATE_DIR` for sockets,
containers and pod volumes, `ROOT_DIR` for containerd's image store, kept between runs so
an imported image need not be imported again), guarded by a lock, so a node a crashed run
left behind is found and torn down by the next start. Teardown removes every pod sandbox
through CRI (which lets the bridge plugin delete each veth and network namespace), stops
the processes, unmounts everything under the state directory, removes the bridge and the
iptables rules, and leaves no container, mount or veth behind.

The network: the bridge `BRIDGE` holds `NODE_IP`, the first address of `POD_CIDR`. The
apiserver and the servers pods must reach (Temporal, moto) listen on `NODE_IP`, because
a pod's loopback is its own. Pods get no route off the machine: forwarding from the bridge
to any other interface is dropped, and the Service range is routed onto the bridge so a
Service IP nothing answers for never leaves the machine either.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import yaml

from tflow_devstack.controlplane import SERVICE_CIDR, ControlPlane, write_kubeconfig
from tflow_devstack.images import import_image
from tflow_devstack.process import ManagedProcess, ServerFailedError, free_port
from tflow_devstack.tools import MissingToolError, go_binary, versions

log = logging.getLogger("tflow.devstack.node")

NODE_NAME = "tflow-node"
BRIDGE = "tflow0"
POD_CIDR = "10.244.0.0/24"
NODE_IP = "10.244.0.1"
STATE_DIR = Path("/run/temporal-flow-node")
ROOT_DIR = Path("/var/lib/temporal-flow-node")
CNI_BIN_DIR = Path("/usr/lib/cni")
PAUSE_IMAGE = f"localhost/temporal-flow-pause:{versions()['KUBERNETES_VERSION']}"
# Debian packages the node needs, and the make target that installs them.
PACKAGES = {
    "containerd": "containerd",
    "ctr": "containerd",
    "runc": "runc",
    "iptables": "iptables",
    "conntrack": "conntrack",
    "buildah": "buildah",
    "ip": "iproute2",
}


class NodeUnavailableError(RuntimeError):
    """This machine cannot run the node; the message names the cause and the fix."""


def _run(*argv: str | os.PathLike[str], check: bool = True, timeout: float = 120) -> str:
    result = subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise ServerFailedError(
            f"{' '.join(str(a) for a in argv)} exited {result.returncode}: "
            f"{(result.stderr or result.stdout).strip()}"
        )
    return result.stdout


def preflight() -> None:
    """One clear line for what this machine lacks, before anything starts."""
    if os.geteuid() != 0:
        raise NodeUnavailableError(
            "the node runs containers and so must run as root (kubelet, containerd)"
        )
    for binary, package in PACKAGES.items():
        if shutil.which(binary) is None:
            raise NodeUnavailableError(f"{binary} is missing: run `make node-deps` ({package})")
    if not (CNI_BIN_DIR / "bridge").exists():
        raise NodeUnavailableError(
            "the CNI plugins are missing: run `make node-deps` (containernetworking-plugins)"
        )
    filesystems = Path("/proc/filesystems").read_text()
    if "overlay" not in filesystems:
        raise NodeUnavailableError("the kernel has no overlay file system (containerd needs it)")
    if not Path("/proc/sys/net/bridge").exists():
        raise NodeUnavailableError(
            "the kernel has no bridge netfilter (/proc/sys/net/bridge): load br_netfilter"
        )
    if (
        not Path("/sys/fs/cgroup/memory").exists()
        and not Path("/sys/fs/cgroup/cgroup.controllers").exists()
    ):
        raise NodeUnavailableError("no cgroup hierarchy with a memory controller is mounted")
    for name in ("kubelet", "kube-scheduler", "kube-proxy", "crictl", "pause"):
        try:
            go_binary(name)
        except MissingToolError as e:
            raise NodeUnavailableError(str(e)) from None


def _sysctl(name: str, value: str) -> None:
    Path("/proc/sys", *name.split(".")).write_text(value)


def _mounts_under(prefix: Path) -> list[str]:
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        # The mount point is the fifth field; spaces in it are escaped as \040.
        point = line.split()[4].replace("\\040", " ")
        if point == str(prefix) or point.startswith(f"{prefix}/"):
            mounts.append(point)
    return mounts


def unmount_all(prefix: Path) -> None:
    """Unmount everything mounted at or below prefix, deepest first."""
    for _ in range(5):
        points = sorted(set(_mounts_under(prefix)), key=lambda p: p.count("/"), reverse=True)
        if not points:
            return
        for point in points:
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def _iptables_rule(action: str, *rule: str) -> bool:
    return (
        subprocess.run(
            ["iptables", "-w", action, *rule], capture_output=True, check=False
        ).returncode
        == 0
    )


# Pods talk to each other and to the node, never past it.
_FORWARD_RULE = ("FORWARD", "-i", BRIDGE, "!", "-o", BRIDGE, "-j", "DROP")
# Marks the rules `expose` adds, so a cleanup finds them even after a crash.
_RULE_COMMENT = "temporal-flow-node"


def _exposed_rules() -> list[list[str]]:
    """The nat rules `expose` added, as `iptables -t nat -D` arguments."""
    out = subprocess.run(
        ["iptables", "-w", "-t", "nat", "-S"], capture_output=True, text=True, check=False
    ).stdout
    rules = []
    for line in out.splitlines():
        if line.startswith("-A ") and _RULE_COMMENT in line:
            rules.append(shlex.split(line)[1:])
    return rules


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        for child in children.get(current, []):
            found.append(child)
            todo.append(child)
    return found


def _kill_stale_shims() -> None:
    """containerd's shims outlive containerd; those of a previous node (found by the socket
    path in their command line) are killed with the containers under them."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if not argv or not argv[0].endswith(b"containerd-shim-runc-v2"):
            continue
        if str(STATE_DIR).encode() not in b" ".join(argv):
            continue
        pid = int(cmdline.parent.name)
        for victim in [*_descendants(pid), pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, 9)


@dataclass
class Node:
    workdir: Path
    name: str = NODE_NAME
    kubelet_port: int = field(default_factory=free_port)
    kubelet_healthz_port: int = field(default_factory=free_port)
    scheduler_port: int = field(default_factory=free_port)
    proxy_healthz_port: int = field(default_factory=free_port)
    proxy_metrics_port: int = field(default_factory=free_port)
    processes: list[ManagedProcess] = field(default_factory=list)
    control_plane: ControlPlane | None = None
    _lock: IO[str] | None = None

    @property
    def cp(self) -> ControlPlane:
        assert self.control_plane is not None, "the node is not started"
        return self.control_plane

    @property
    def containerd_socket(self) -> Path:
        return STATE_DIR / "containerd.sock"

    @property
    def logs(self) -> Path:
        return self.workdir / "logs"

    def prepare(self) -> Node:
        """Claim the machine's node slot and make the bridge, so the control plane can
        serve on `NODE_IP` before the node's components start."""
        preflight()
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        lock = (STATE_DIR / "lock").open("a+")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            owner = lock.read().strip() or "unknown"
            lock.close()
            raise NodeUnavailableError(
                f"another node runs on this machine (pid {owner}: `make dev` or a test "
                "session); stop it first"
            ) from None
        self._lock = lock
        lock.seek(0)
        lock.truncate()
        lock.write(str(os.getpid()))
        lock.flush()
        try:
            self._cleanup()
            self.workdir.mkdir(parents=True, exist_ok=True)
            self._network()
        except BaseException:
            self.stop()
            raise
        return self

    def start(
        self, control_plane: ControlPlane, images: tuple[Path, ...] = (), timeout: float = 180.0
    ) -> Node:
        """Bring the node up against `control_plane` (which serves on `NODE_IP`) and import
        the given image archives into its runtime."""
        if control_plane.node_ip != NODE_IP:
            raise NodeUnavailableError(
                f"the control plane must serve on the node's address: ControlPlane(node_ip="
                f"{NODE_IP!r})"
            )
        self.control_plane = control_plane
        if self._lock is None:
            self.prepare()
        try:
            self._start_containerd(timeout)
            self._ensure_pause()
            for archive in images:
                self.import_image(archive)
            self._start_scheduler(timeout)
            self._start_kubelet(timeout)
            self._start_proxy(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    # -- network ---------------------------------------------------------------------

    def _network(self) -> None:
        _run("ip", "link", "add", BRIDGE, "type", "bridge")
        _run("ip", "addr", "add", f"{NODE_IP}/{POD_CIDR.split('/')[1]}", "dev", BRIDGE)
        _run("ip", "link", "set", BRIDGE, "up")
        # A Service IP goes to the bridge until kube-proxy rewrites it, never off the machine.
        _run("ip", "route", "add", SERVICE_CIDR, "dev", BRIDGE)
        _sysctl("net.ipv4.ip_forward", "1")
        # Pod-to-Service traffic between two pods on the same bridge must pass iptables for
        # kube-proxy's rewriting to apply to it.
        _sysctl("net.bridge.bridge-nf-call-iptables", "1")
        if not _iptables_rule("-C", *_FORWARD_RULE):
            _run("iptables", "-w", "-I", *_FORWARD_RULE)
        cni = STATE_DIR / "cni" / "net.d"
        cni.mkdir(parents=True, exist_ok=True)
        conflist = {
            "cniVersion": "1.0.0",
            "name": "temporal-flow",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": BRIDGE,
                    "isGateway": True,
                    "ipMasq": False,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": POD_CIDR, "gateway": NODE_IP}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                        "dataDir": str(STATE_DIR / "cni" / "ipam"),
                    },
                }
            ],
        }
        (cni / "10-temporal-flow.conflist").write_text(json.dumps(conflist, indent=2))

    # -- containerd ------------------------------------------------------------------

    def _start_containerd(self, timeout: float) -> None:
        cfg = STATE_DIR / "containerd.toml"
        cri = '[plugins."io.containerd.grpc.v1.cri"]'
        cfg.write_text(
            "\n".join(
                [
                    "version = 2",
                    f'root = "{ROOT_DIR / "containerd"}"',
                    f'state = "{STATE_DIR / "containerd"}"',
                    # Snapshotters this machine has no use for, and that probe for tools.
                    'disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", '
                    '"io.containerd.snapshotter.v1.zfs", '
                    '"io.containerd.snapshotter.v1.devmapper", '
                    '"io.containerd.snapshotter.v1.aufs"]',
                    "[grpc]",
                    f'  address = "{self.containerd_socket}"',
                    '[plugins."io.containerd.internal.v1.opt"]',
                    f'  path = "{ROOT_DIR / "opt"}"',
                    cri,
                    f'  sandbox_image = "{PAUSE_IMAGE}"',
                    # Lowering a process's oom_score_adj needs CAP_SYS_RESOURCE, which root
                    # may lack in a virtual machine's sandbox (it does on this project's build
                    # machines); restricted, no container asks for less than containerd has.
                    "  restrict_oom_score_adj = true",
                    f"{cri[:-1]}.containerd]",
                    '  snapshotter = "overlayfs"',
                    '  default_runtime_name = "runc"',
                    f"{cri[:-1]}.containerd.runtimes.runc]",
                    '  runtime_type = "io.containerd.runc.v2"',
                    f"{cri[:-1]}.containerd.runtimes.runc.options]",
                    # No systemd here: cgroups are managed as plain directories (cgroupfs),
                    # the same driver the kubelet is told to use.
                    "  SystemdCgroup = false",
                    f"{cri[:-1]}.cni]",
                    f'  bin_dir = "{CNI_BIN_DIR}"',
                    f'  conf_dir = "{STATE_DIR / "cni" / "net.d"}"',
                    "",
                ]
            )
        )
        proc = ManagedProcess(
            "containerd", ["containerd", f"--config={cfg}"], self.logs / "containerd.log"
        ).start()
        self.processes.append(proc)
        proc.wait_until(
            lambda: self.ctr("version", check=False).returncode == 0, timeout, "serving"
        )

    def expose(self, port: int) -> str:
        """Make a server listening on the machine's loopback at `port` reachable as
        `NODE_IP:port`, from pods and from this machine alike; returns that address.

        Servers such as Temporal's dev server bind one address and tell their own parts to
        dial loopback, so they cannot simply serve on the bridge: the kernel rewrites the
        destination instead (the bridge may route to loopback for this, as kube-proxy's
        node ports on localhost do)."""
        _sysctl(f"net.ipv4.conf.{BRIDGE}.route_localnet", "1")
        match = ["-d", NODE_IP, "-p", "tcp", "--dport", str(port)]
        target = ["-j", "DNAT", "--to-destination", f"127.0.0.1:{port}"]
        comment = ["-m", "comment", "--comment", _RULE_COMMENT]
        for chain in (["PREROUTING", "-i", BRIDGE], ["OUTPUT"]):
            _run("iptables", "-w", "-t", "nat", "-A", *chain, *match, *comment, *target)
        return f"{NODE_IP}:{port}"

    def ctr(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["ctr", f"--address={self.containerd_socket}", "--namespace=k8s.io", *args],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if check and result.returncode != 0:
            raise ServerFailedError(f"ctr {' '.join(args)}: {result.stderr.strip()}")
        return result

    def crictl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [
                str(go_binary("crictl")),
                f"--runtime-endpoint=unix://{self.containerd_socket}",
                f"--image-endpoint=unix://{self.containerd_socket}",
                "--timeout=60s",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if check and result.returncode != 0:
            raise ServerFailedError(f"crictl {' '.join(args)}: {result.stderr.strip()}")
        return result

    def import_image(self, archive: Path) -> None:
        """Import an image archive into the runtime's Kubernetes namespace, unpacked.

        Imported images are the only copy (nothing can be pulled), so the kubelet's image
        garbage collection is off (imageGCHighThresholdPercent: 100)."""
        import_image(archive, str(self.containerd_socket))

    def images(self) -> list[str]:
        return self.ctr("images", "list", "--quiet").stdout.split()

    def _ensure_pause(self) -> None:
        """The sandbox image: the static pause binary alone, built with buildah."""
        if PAUSE_IMAGE in self.images():
            return
        archive = self.workdir / "pause.tar"
        work = _run("buildah", "from", "scratch").strip()
        try:
            _run("buildah", "copy", "--chmod", "0755", work, str(go_binary("pause")), "/pause")
            _run(
                "buildah",
                "config",
                "--entrypoint",
                '["/pause"]',
                "--user",
                "65535:65535",
                work,
            )
            _run("buildah", "commit", "--quiet", work, PAUSE_IMAGE)
        finally:
            _run("buildah", "rm", work, check=False)
        archive.unlink(missing_ok=True)
        _run("buildah", "push", "--quiet", PAUSE_IMAGE, f"docker-archive:{archive}:{PAUSE_IMAGE}")
        self.import_image(archive)

    # -- Kubernetes components -----------------------------------------------------------

    def _kubeconfig(self, stem: str, user: str, group: str | None = None) -> Path:
        cp = self.cp
        pki = self.workdir / "pki"
        pki.mkdir(parents=True, exist_ok=True)
        pair = cp.ca.issue(stem, user, group)
        path = self.workdir / f"{stem}.kubeconfig"
        write_kubeconfig(path, cp.server, cp.ca.cert_path, pair, user)
        return path

    def _start_scheduler(self, timeout: float) -> None:
        kubeconfig = self._kubeconfig("kube-scheduler", "system:kube-scheduler")
        proc = ManagedProcess(
            "kube-scheduler",
            [
                go_binary("kube-scheduler"),
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={self.scheduler_port}",
                f"--cert-dir={self.workdir / 'pki' / 'scheduler'}",
                "--leader-elect=false",
                "--v=0",
            ],
            self.logs / "kube-scheduler.log",
        ).start()
        self.processes.append(proc)
        proc.wait_until(
            lambda: _https_ok(f"https://127.0.0.1:{self.scheduler_port}/healthz"),
            timeout,
            "healthy",
        )

    def _start_kubelet(self, timeout: float) -> None:
        cp = self.cp
        kubeconfig = self._kubeconfig("kubelet", f"system:node:{self.name}", "system:nodes")
        serving = cp.ca.issue(
            "kubelet-serving",
            f"system:node:{self.name}",
            "system:nodes",
            dns_names=(self.name,),
            ips=(NODE_IP,),
            server=True,
        )
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "address": NODE_IP,
            "port": self.kubelet_port,
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": self.kubelet_healthz_port,
            "tlsCertFile": str(serving.cert),
            "tlsPrivateKeyFile": str(serving.key),
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": True},
                "x509": {"clientCAFile": str(cp.ca.cert_path)},
            },
            "authorization": {"mode": "Webhook"},
            "containerRuntimeEndpoint": f"unix://{self.containerd_socket}",
            # No systemd on this machine; containerd's runc uses cgroupfs as well.
            "cgroupDriver": "cgroupfs",
            # This machine's cgroups are the v1 controllers (cgroup2 is only mounted beside
            # them, without controllers), and kubelet 1.35 refuses v1 unless told otherwise.
            "failCgroupV1": False,
            "failSwapOn": False,
            # Images are imported, never pulled: garbage-collecting one would lose it.
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            # A shared development machine: evict only when the disk is really full.
            "evictionHard": {
                "memory.available": "100Mi",
                "nodefs.available": "2%",
                "imagefs.available": "2%",
            },
            "resolvConf": "/etc/resolv.conf",
            "clusterDomain": "cluster.local",
            "serializeImagePulls": False,
            "syncFrequency": "10s",
            "fileCheckFrequency": "10s",
            "nodeStatusUpdateFrequency": "5s",
            "maxPods": 110,
            "shutdownGracePeriod": "0s",
        }
        config_path = self.workdir / "kubelet.yaml"
        config_path.write_text(yaml.safe_dump(config))
        proc = ManagedProcess(
            "kubelet",
            [
                go_binary("kubelet"),
                f"--config={config_path}",
                f"--kubeconfig={kubeconfig}",
                f"--hostname-override={self.name}",
                f"--node-ip={NODE_IP}",
                f"--root-dir={STATE_DIR / 'kubelet'}",
                f"--cert-dir={self.workdir / 'pki' / 'kubelet'}",
                "--v=1",
            ],
            self.logs / "kubelet.log",
        ).start()
        self.processes.append(proc)
        proc.wait_until(self.ready, timeout, "a Ready node")

    def ready(self) -> bool:
        out = self.cp.kubectl(
            "get",
            "node",
            self.name,
            "-o",
            'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
            check=False,
        ).stdout
        return out.strip() == "True"

    def _start_proxy(self, timeout: float) -> None:
        kubeconfig = self._kubeconfig("kube-proxy", "system:kube-proxy")
        config = {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "clientConnection": {"kubeconfig": str(kubeconfig)},
            "mode": "iptables",
            "clusterCIDR": POD_CIDR,
            "hostnameOverride": self.name,
            "bindAddress": NODE_IP,
            "healthzBindAddress": f"127.0.0.1:{self.proxy_healthz_port}",
            "metricsBindAddress": f"127.0.0.1:{self.proxy_metrics_port}",
            # The machine's conntrack limits are its own business, not a test node's.
            "conntrack": {"maxPerCore": 0, "min": 0},
        }
        config_path = self.workdir / "kube-proxy.yaml"
        config_path.write_text(yaml.safe_dump(config))
        proc = ManagedProcess(
            "kube-proxy",
            [go_binary("kube-proxy"), f"--config={config_path}", "--v=0"],
            self.logs / "kube-proxy.log",
        ).start()
        self.processes.append(proc)
        proc.wait_until(
            lambda: _http_ok(f"http://127.0.0.1:{self.proxy_healthz_port}/healthz"),
            timeout,
            "healthy",
        )

    # -- teardown -------------------------------------------------------------------------

    def stop(self) -> None:
        """Remove every pod, stop every process, and leave nothing behind."""
        by_name = {p.name: p for p in self.processes}
        kubelet = by_name.get("kubelet")
        if kubelet is not None:
            # The kubelet would restart what CRI removes.
            kubelet.stop()
        containerd = by_name.get("containerd")
        if containerd is not None and containerd.alive():
            # Stopping a sandbox through CRI runs the CNI DEL that removes its veth and
            # network namespace; removing it deletes its containers.
            self.crictl("rmp", "--all", "--force", check=False)
        for proc in reversed(self.processes):
            proc.stop()
        self.processes.clear()
        self._cleanup()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def _cleanup(self) -> None:
        """What a node leaves on the machine, removed whether it stopped cleanly or not."""
        _kill_stale_shims()
        with contextlib.suppress(MissingToolError):
            # Removes the Service rules kube-proxy wrote (its chains in every table).
            subprocess.run(
                [str(go_binary("kube-proxy")), "--cleanup"], capture_output=True, check=False
            )
        while _iptables_rule("-D", *_FORWARD_RULE):
            pass
        for rule in _exposed_rules():
            subprocess.run(["iptables", "-w", "-t", "nat", "-D", *rule], check=False)
        unmount_all(STATE_DIR / "kubelet")
        unmount_all(STATE_DIR / "containerd")
        for netns in Path("/run/netns").glob("cni-*"):
            # Network namespaces made for this node's sandboxes; CRI removes them on a clean
            # stop, so only a crashed node leaves any.
            if _netns_on_bridge(netns):
                subprocess.run(["umount", "-l", str(netns)], capture_output=True, check=False)
                netns.unlink(missing_ok=True)
        subprocess.run(["ip", "link", "delete", BRIDGE], capture_output=True, check=False)
        for sub in ("kubelet", "containerd", "cni"):
            shutil.rmtree(STATE_DIR / sub, ignore_errors=True)
        _remove_empty_cgroups("kubepods")


def _netns_on_bridge(netns: Path) -> bool:
    """Whether a network namespace has an address in the node's pod range."""
    result = subprocess.run(
        ["ip", "-n", netns.name, "-o", "-4", "addr"], capture_output=True, text=True, check=False
    )
    prefix = POD_CIDR.rsplit(".", 1)[0] + "."
    return prefix in result.stdout


def _remove_empty_cgroups(name: str) -> None:
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        top = hierarchy / name
        if not top.is_dir():
            continue
        for directory in sorted(top.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if directory.is_dir():
                with contextlib.suppress(OSError):
                    directory.rmdir()
        with contextlib.suppress(OSError):
            top.rmdir()


def _http_ok(url: str) -> bool:
    import urllib.request

    with urllib.request.urlopen(url, timeout=2) as r:
        return bool(r.status == 200)


def _https_ok(url: str) -> bool:
    import ssl
    import urllib.request

    # The scheduler's serving certificate is self-signed; this only asks it whether it is
    # healthy, on loopback.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with urllib.request.urlopen(url, timeout=2, context=ctx) as r:
        return bool(r.status == 200)
