"""Where the pinned infrastructure binaries live.

Versions come from hack/versions.env (the one place they are pinned); the Go-built
binaries sit in a per-user cache keyed by version, filled by `make tools`. Python-shipped
binaries (the Temporal CLI, moto) come from the project's virtualenv.
"""

from __future__ import annotations

import os
import shutil
import sys
from functools import cache
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
VERSIONS_FILE = REPO_ROOT / "hack" / "versions.env"


class MissingToolError(RuntimeError):
    """A binary the stack needs is not installed; the message says which make target builds it."""


@cache
def versions() -> dict[str, str]:
    pins: dict[str, str] = {}
    for raw in VERSIONS_FILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        pins[key.strip()] = value.strip()
    return pins


def cache_dir() -> Path:
    if explicit := os.environ.get("TFLOW_CACHE_DIR"):
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "temporal-flow"


_GO_BINARIES = {
    "kube-apiserver": ("kubernetes", "KUBERNETES_VERSION"),
    "kube-controller-manager": ("kubernetes", "KUBERNETES_VERSION"),
    "kubectl": ("kubernetes", "KUBERNETES_VERSION"),
    "kube-scheduler": ("kubernetes", "KUBERNETES_VERSION"),
    "kubelet": ("kubernetes", "KUBERNETES_VERSION"),
    "kube-proxy": ("kubernetes", "KUBERNETES_VERSION"),
    "crictl": ("cri-tools", "CRI_TOOLS_VERSION"),
    "pause": ("pause", "KUBERNETES_VERSION"),
    "etcd": ("etcd", "ETCD_VERSION"),
    "helm": ("helm", "HELM_VERSION"),
    "keda": ("keda", "KEDA_VERSION"),
    "keda-adapter": ("keda", "KEDA_VERSION"),
}


def go_binary(name: str) -> Path:
    """The cached path of a Go-built binary, or MissingToolError naming the make target."""
    group, pin = _GO_BINARIES[name]
    path = cache_dir() / "bin" / f"{group}-{versions()[pin]}" / name
    if not os.access(path, os.X_OK):
        target = "keda" if group == "keda" else "tools"
        raise MissingToolError(f"{name} {versions()[pin]} is not built: run `make {target}`")
    return path


def venv_binary(name: str) -> Path:
    """A console script installed into the running interpreter's environment."""
    candidate = Path(sys.executable).parent / name
    if os.access(candidate, os.X_OK):
        return candidate
    found = shutil.which(name)
    if found is None:
        raise MissingToolError(f"{name} is not installed: run `make venv`")
    return Path(found)
