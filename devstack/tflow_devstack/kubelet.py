"""A stand-in for the kubelet on a machine with no container runtime: it runs the
processes of Temporal Flow's Deployments from their own pod templates.

For every Deployment labelled `app.kubernetes.io/part-of=temporal-flow` it starts one
local process from the first container's command, args and env, with the ConfigMap,
Secret, projected and emptyDir volumes materialised as local directories (kept up to
date, with the `..data` symlink swap a real kubelet does) and mount paths rewritten to
them. What runs is what the operator and the chart generated; only these differ:

- the image is ignored: commands run from this project's environment;
- a container port is mapped to a free local port, and env values and args equal to it
  are rewritten (so several workers can all "listen on 8080");
- a pod's service account gets a kubeconfig with a token minted for it, so a process
  that talks to the apiserver does so with that account's RBAC;
- one of the Deployment's Pod objects is marked Running and Ready while the process runs,
  so ready counts (`kubectl get deploy`, a Listener's READY REPLICAS) are true;
- a Deployment scaled to zero still gets one process (there is no KEDA here to scale it
  up on a backlog), and more than one replica gets one.

A process that exits is restarted with a back-off; a changed pod template restarts it; a
deleted Deployment stops it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import shutil
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tflow_devstack.controlplane import ControlPlane
from tflow_devstack.process import ManagedProcess, free_port

log = logging.getLogger("tflow.devstack.kubelet")
SELECTOR = "app.kubernetes.io/part-of=temporal-flow"


@dataclass
class _Pod:
    key: str  # namespace/name of the Deployment
    template_hash: str
    process: ManagedProcess
    root: Path
    ports: dict[int, int]
    restarts: int = 0
    next_restart: float = 0.0


@dataclass
class ProcessKubelet:
    control_plane: ControlPlane
    workdir: Path
    period: float = 1.0
    pods: dict[str, _Pod] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _cache: dict[str, dict[tuple[str, str], dict[str, Any]]] = field(default_factory=dict)
    _pod_cache: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _thread: threading.Thread | None = None

    def start(self) -> ProcessKubelet:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._loop, name="kubelet", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        for pod in list(self.pods.values()):
            pod.process.stop()
        self.pods.clear()

    def port_of(self, namespace: str, deployment: str, container_port: int) -> int | None:
        pod = self.pods.get(f"{namespace}/{deployment}")
        return pod.ports.get(container_port) if pod else None

    def running(self) -> list[str]:
        return sorted(key for key, pod in self.pods.items() if pod.process.alive())

    # ---- the loop ---------------------------------------------------------------------

    def _loop(self) -> None:
        import time

        while not self._stop.is_set():
            try:
                self._sync(time.monotonic())
            except Exception:
                log.exception("kubelet sync failed")
            self._stop.wait(self.period)

    def _kubectl_json(self, *args: str) -> Any:
        result = self.control_plane.kubectl(*args, "-o", "json", check=False)
        if result.returncode != 0:
            return None
        return json.loads(result.stdout)

    def _object(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """A ConfigMap or Secret, from one listing per namespace and sync round."""
        if namespace not in self._cache:
            listed = self._kubectl_json("get", "configmaps,secrets", "-n", namespace) or {}
            self._cache[namespace] = {
                (item["kind"], item["metadata"]["name"]): item for item in listed.get("items", [])
            }
        return self._cache[namespace].get((kind, name))

    def _sync(self, now: float) -> None:
        self._cache = {}
        self._pod_cache = {}
        listed = self._kubectl_json("get", "deployments", "-A", "-l", SELECTOR)
        if listed is None:
            return
        seen: set[str] = set()
        for deployment in listed.get("items", []):
            meta = deployment["metadata"]
            if meta.get("deletionTimestamp"):
                continue
            key = f"{meta['namespace']}/{meta['name']}"
            seen.add(key)
            template = deployment["spec"]["template"]
            digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()
            pod = self.pods.get(key)
            if pod is not None and pod.template_hash != digest:
                log.info("%s changed: restarting", key)
                pod.process.stop()
                del self.pods[key]
                pod = None
            if pod is None:
                self.pods[key] = self._start(key, meta["namespace"], template, digest)
            else:
                self._materialise(pod.root, meta["namespace"], template)
                if not pod.process.alive() and now >= pod.next_restart:
                    pod.restarts += 1
                    pod.next_restart = now + min(30.0, 2.0**pod.restarts)
                    log.warning("%s exited; restart %d", key, pod.restarts)
                    pod.process.start()
            self._report(meta["namespace"], deployment, self.pods[key].process.alive())
        for key in set(self.pods) - seen:
            log.info("%s deleted: stopping", key)
            self.pods.pop(key).process.stop()

    def _report(self, namespace: str, deployment: dict[str, Any], alive: bool) -> None:
        """Mark one of the Deployment's Pod objects Running and Ready while its process
        runs (and not Ready when it does not), as a kubelet would, so the Deployment's and
        the custom resources' ready counts mean something."""
        selector = deployment["spec"]["selector"].get("matchLabels") or {}
        pods = [
            p
            for p in self._pods(namespace)
            if all((p["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())
            and not p["metadata"].get("deletionTimestamp")
        ]
        pods.sort(key=lambda p: str(p["metadata"]["name"]))
        for index, pod in enumerate(pods):
            ready = alive and index == 0
            conditions = {
                c["type"]: c["status"] for c in pod.get("status", {}).get("conditions", [])
            }
            if conditions.get("Ready") == ("True" if ready else "False"):
                continue
            flag = "True" if ready else "False"
            status = {
                "phase": "Running" if ready else "Pending",
                "conditions": [
                    {"type": "PodScheduled", "status": "True"},
                    {"type": "Initialized", "status": "True"},
                    {"type": "ContainersReady", "status": flag},
                    {"type": "Ready", "status": flag},
                ],
            }
            self.control_plane.kubectl(
                "patch",
                "pod",
                pod["metadata"]["name"],
                "-n",
                namespace,
                "--subresource=status",
                "--type=merge",
                "-p",
                json.dumps({"status": status}),
                check=False,
            )

    def _pods(self, namespace: str) -> list[dict[str, Any]]:
        key = f"pods:{namespace}"
        if key not in self._pod_cache:
            listed = self._kubectl_json("get", "pods", "-n", namespace) or {}
            self._pod_cache[key] = listed.get("items", [])
        return self._pod_cache[key]

    # ---- one pod ----------------------------------------------------------------------

    def _start(self, key: str, namespace: str, template: dict[str, Any], digest: str) -> _Pod:
        root = self.workdir / key.replace("/", "_")
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        spec = template["spec"]
        container = spec["containers"][0]
        mounts = self._materialise(root, namespace, template)
        ports = {int(p["containerPort"]): free_port() for p in container.get("ports", [])}
        env = self._env(namespace, container, spec, root, mounts, ports)
        argv = [
            self._rewrite(a, mounts, ports)
            for a in [*container.get("command", []), *container.get("args", [])]
        ]
        argv[0] = self._executable(argv[0])
        process = ManagedProcess(key, argv, self.workdir / "logs" / f"{root.name}.log", env=env)
        log.info("starting %s: %s", key, " ".join(argv))
        process.start()
        return _Pod(key, digest, process, root, ports)

    @staticmethod
    def _executable(command: str) -> str:
        if command in ("python", "python3"):
            return sys.executable
        beside = Path(sys.executable).parent / command
        return str(beside) if beside.exists() else command

    def _env(
        self,
        namespace: str,
        container: dict[str, Any],
        spec: dict[str, Any],
        root: Path,
        mounts: dict[str, Path],
        ports: dict[int, int],
    ) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "HOME")}
        env["PYTHONUNBUFFERED"] = "1"
        account = spec.get("serviceAccountName")
        if account:
            env["KUBECONFIG"] = str(self._kubeconfig(namespace, account, root))
        else:
            # No account: no apiserver access, as with automountServiceAccountToken off.
            env["KUBECONFIG"] = str(root / "no-kubeconfig")
        for item in container.get("env", []):
            name = item["name"]
            if "value" in item:
                env[name] = self._rewrite(str(item["value"]), mounts, ports)
            elif "valueFrom" in item:
                value = self._value_from(namespace, item["valueFrom"])
                if value is not None:
                    env[name] = value
        return env

    def _value_from(self, namespace: str, source: dict[str, Any]) -> str | None:
        if "fieldRef" in source:
            path = source["fieldRef"]["fieldPath"]
            return namespace if path == "metadata.namespace" else None
        if "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            secret = self._object("Secret", namespace, ref["name"])
            data = (secret or {}).get("data") or {}
            return base64.b64decode(data[ref["key"]]).decode() if ref["key"] in data else None
        if "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            cm = self._object("ConfigMap", namespace, ref["name"])
            value = ((cm or {}).get("data") or {}).get(ref["key"])
            return str(value) if value is not None else None
        return None

    @staticmethod
    def _rewrite(value: str, mounts: dict[str, Path], ports: dict[int, int]) -> str:
        for container_port, local in ports.items():
            if value == str(container_port):
                return str(local)
            value = value.replace(f":{container_port}", f":{local}")
        for mount_path, local_dir in sorted(mounts.items(), key=lambda m: -len(m[0])):
            if value == mount_path or value.startswith(mount_path.rstrip("/") + "/"):
                return str(local_dir) + value[len(mount_path.rstrip("/")) :]
        return value

    def _kubeconfig(self, namespace: str, account: str, root: Path) -> Path:
        token = self.control_plane.kubectl(
            "create", "token", account, "-n", namespace, "--duration=24h"
        ).stdout.strip()
        admin = yaml.safe_load(self.control_plane.kubeconfig.read_text())
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": admin["clusters"],
            "users": [{"name": account, "user": {"token": token}}],
            "contexts": [
                {
                    "name": "pod",
                    "context": {
                        "cluster": admin["clusters"][0]["name"],
                        "user": account,
                        "namespace": namespace,
                    },
                }
            ],
            "current-context": "pod",
        }
        path = root / "kubeconfig"
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path

    # ---- volumes ----------------------------------------------------------------------

    def _materialise(self, root: Path, namespace: str, template: dict[str, Any]) -> dict[str, Path]:
        spec = template["spec"]
        container = spec["containers"][0]
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        mounts: dict[str, Path] = {}
        for mount in container.get("volumeMounts", []):
            volume = volumes.get(mount["name"])
            if volume is None:
                continue
            local = root / "volumes" / mount["name"]
            files = dict(self._volume_files(namespace, volume))
            if "emptyDir" in volume:
                local.mkdir(parents=True, exist_ok=True)
            else:
                _sync_dir(local, files)
            mounts[mount["mountPath"]] = local
        return mounts

    def _volume_files(self, namespace: str, volume: dict[str, Any]) -> Iterator[tuple[str, bytes]]:
        sources: list[tuple[str, dict[str, Any]]] = []
        if "configMap" in volume:
            sources.append(("configMap", volume["configMap"]))
        if "secret" in volume:
            sources.append(("secret", volume["secret"]))
        for source in (volume.get("projected") or {}).get("sources", []):
            for kind in ("configMap", "secret"):
                if kind in source:
                    sources.append((kind, source[kind]))
        for kind, ref in sources:
            name = str(ref.get("name") or ref.get("secretName") or "")
            obj = self._object("ConfigMap" if kind == "configMap" else "Secret", namespace, name)
            if obj is None:
                continue
            if kind == "configMap":
                for key, text in (obj.get("data") or {}).items():
                    yield key, str(text).encode()
                for key, blob in (obj.get("binaryData") or {}).items():
                    yield key, base64.b64decode(blob)
            else:
                for key, blob in (obj.get("data") or {}).items():
                    yield key, base64.b64decode(blob)


def _sync_dir(local: Path, files: dict[str, bytes]) -> None:
    """Make `local` hold exactly `files`, swapping a `..data` symlink the way the kubelet
    does, so readers that watch for the swap see one atomic change."""
    local.mkdir(parents=True, exist_ok=True)
    current = local / "..data"
    if current.exists():
        existing = {p.name: p.read_bytes() for p in current.resolve().iterdir() if p.is_file()}
        if existing == files:
            return
    version = local / f"..{hashlib.sha256(repr(sorted(files.items())).encode()).hexdigest()[:16]}"
    version.mkdir(exist_ok=True)
    for name, body in files.items():
        (version / name).write_bytes(body)
    staged = local / "..data_tmp"
    staged.unlink(missing_ok=True)
    staged.symlink_to(version.name)
    old_target = current.resolve() if current.exists() else None
    os.replace(staged, current)
    for name in files:
        link = local / name
        if not link.is_symlink():
            link.unlink(missing_ok=True)
            link.symlink_to(f"..data/{name}")
    for link in local.iterdir():
        if link.is_symlink() and not link.name.startswith("..") and link.name not in files:
            link.unlink()
    if old_target is not None and old_target != version.resolve():
        shutil.rmtree(old_target, ignore_errors=True)
