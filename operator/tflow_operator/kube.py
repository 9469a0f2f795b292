"""A small async Kubernetes client for the operator's children: server-side apply, get,
list, delete and status patches over the REST API, with credentials from a kubeconfig or
the in-cluster service account.

kopf watches and dispatches; this client writes. Server-side apply with one field manager
makes every reconcile idempotent and restores hand edits of the fields the operator owns.
"""

from __future__ import annotations

import base64
import builtins
import json
import os
import ssl
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

FIELD_MANAGER = "temporal-flow-operator"
IN_CLUSTER = Path("/var/run/secrets/kubernetes.io/serviceaccount")

# Resources the operator manages: (apiVersion, kind) -> plural, namespaced.
_PLURALS: dict[tuple[str, str], str] = {
    ("v1", "ConfigMap"): "configmaps",
    ("v1", "Service"): "services",
    ("v1", "Secret"): "secrets",
    ("v1", "Event"): "events",
    ("v1", "Pod"): "pods",
    ("v1", "ServiceAccount"): "serviceaccounts",
    ("apps/v1", "Deployment"): "deployments",
    ("coordination.k8s.io/v1", "Lease"): "leases",
    ("keda.sh/v1alpha1", "ScaledObject"): "scaledobjects",
    ("keda.sh/v1alpha1", "TriggerAuthentication"): "triggerauthentications",
    ("temporalflow.dev/v1alpha1", "WorkflowDefinition"): "workflowdefinitions",
    ("temporalflow.dev/v1alpha1", "EventRoute"): "eventroutes",
    ("temporalflow.dev/v1alpha1", "Listener"): "listeners",
}


class KubeError(RuntimeError):
    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(f"{status}: {message}")


def resource_path(
    api_version: str, kind: str, namespace: str | None, name: str | None = None
) -> str:
    plural = _PLURALS.get((api_version, kind))
    if plural is None:
        raise ValueError(f"unknown resource {api_version} {kind}")
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    path = f"{base}/namespaces/{namespace}/{plural}" if namespace else f"{base}/{plural}"
    return f"{path}/{name}" if name else path


@dataclass
class _Credentials:
    server: str
    verify: ssl.SSLContext
    headers: dict[str, str]


def _from_kubeconfig(path: Path) -> _Credentials:
    config = yaml.safe_load(path.read_text())
    context_name = config.get("current-context")
    context = next(c["context"] for c in config["contexts"] if c["name"] == context_name)
    cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
    user = next(u["user"] for u in config["users"] if u["name"] == context["user"])
    ctx = ssl.create_default_context()
    if "certificate-authority-data" in cluster:
        ctx.load_verify_locations(
            cadata=base64.b64decode(cluster["certificate-authority-data"]).decode()
        )
    elif "certificate-authority" in cluster:
        ctx.load_verify_locations(cafile=cluster["certificate-authority"])
    headers: dict[str, str] = {}
    if "token" in user:
        headers["Authorization"] = f"Bearer {user['token']}"
    cert = user.get("client-certificate-data")
    key = user.get("client-key-data")
    if cert and key:
        # ssl wants files for a client certificate; they live only as long as the process.
        folder = Path(tempfile.mkdtemp(prefix="tflow-kube-"))
        (folder / "tls.crt").write_bytes(base64.b64decode(cert))
        (folder / "tls.key").write_bytes(base64.b64decode(key))
        (folder / "tls.key").chmod(0o600)
        ctx.load_cert_chain(str(folder / "tls.crt"), str(folder / "tls.key"))
    elif "client-certificate" in user:
        ctx.load_cert_chain(user["client-certificate"], user["client-key"])
    return _Credentials(cluster["server"], ctx, headers)


def _in_cluster() -> _Credentials:
    ctx = ssl.create_default_context(cafile=str(IN_CLUSTER / "ca.crt"))
    token = (IN_CLUSTER / "token").read_text().strip()
    host = os.environ["KUBERNETES_SERVICE_HOST"]
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    return _Credentials(f"https://{host}:{port}", ctx, {"Authorization": f"Bearer {token}"})


class KubeClient:
    def __init__(self, credentials: _Credentials, timeout: float = 30.0) -> None:
        self._http = httpx.AsyncClient(
            base_url=credentials.server,
            verify=credentials.verify,
            headers=credentials.headers,
            timeout=httpx.Timeout(timeout),
        )

    @classmethod
    def from_env(cls, timeout: float = 30.0) -> KubeClient:
        """KUBECONFIG (or ~/.kube/config) when present, else the in-cluster account."""
        kubeconfig = os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
        if Path(kubeconfig).exists():
            return cls(_from_kubeconfig(Path(kubeconfig)), timeout)
        return cls(_in_cluster(), timeout)

    async def close(self) -> None:
        await self._http.aclose()

    async def _request(self, method: str, path: str, **kw: Any) -> Any:
        response = await self._http.request(method, path, **kw)
        if response.status_code >= 400:
            try:
                message = response.json().get("message", response.text)
            except ValueError:
                message = response.text
            raise KubeError(response.status_code, message)
        return response.json() if response.content else None

    async def apply(self, obj: dict[str, Any], force: bool = True) -> dict[str, Any]:
        """Server-side apply: create or update the fields this operator owns."""
        meta = obj["metadata"]
        path = resource_path(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"])
        result: dict[str, Any] = await self._request(
            "PATCH",
            path,
            params={"fieldManager": FIELD_MANAGER, "force": "true" if force else "false"},
            content=json.dumps(obj),
            headers={"Content-Type": "application/apply-patch+yaml"},
        )
        return result

    async def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create an object (POST); KubeError 409 when it exists."""
        meta = obj["metadata"]
        path = resource_path(obj["apiVersion"], obj["kind"], meta.get("namespace"))
        result: dict[str, Any] = await self._request("POST", path, json=obj)
        return result

    async def list_metadata(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        label_selector: str | None = None,
    ) -> list[dict[str, Any]]:
        """Only the metadata of the matching objects (a PartialObjectMetadataList):
        cheap when the operator needs names and annotations, not contents."""
        params = {"labelSelector": label_selector} if label_selector else None
        body = await self._request(
            "GET",
            resource_path(api_version, kind, namespace),
            params=params,
            headers={"Accept": "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"},
        )
        items: list[dict[str, Any]] = body.get("items") or []
        return items

    async def get(
        self, api_version: str, kind: str, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = await self._request(
                "GET", resource_path(api_version, kind, namespace, name)
            )
        except KubeError as err:
            if err.status == 404:
                return None
            raise
        return result

    async def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        label_selector: str | None = None,
    ) -> builtins.list[dict[str, Any]]:
        """Every matching object, read page by page."""
        return [
            item
            async for page in self.pages(api_version, kind, namespace, label_selector)
            for item in page
        ]

    async def pages(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        label_selector: str | None = None,
        limit: int = 200,
    ) -> AsyncIterator[builtins.list[dict[str, Any]]]:
        """Every matching object, a page at a time (``limit`` per request), so that a
        periodic pass over thousands of objects never holds them all at once."""
        token: str | None = None
        while True:
            params: dict[str, Any] = {"limit": limit}
            if label_selector:
                params["labelSelector"] = label_selector
            if token:
                params["continue"] = token
            body = await self._request(
                "GET", resource_path(api_version, kind, namespace), params=params
            )
            yield list(body.get("items") or [])
            token = (body.get("metadata") or {}).get("continue")
            if not token:
                return

    async def delete(self, api_version: str, kind: str, namespace: str | None, name: str) -> bool:
        """Delete in the background; False when it was already gone."""
        try:
            await self._request(
                "DELETE",
                resource_path(api_version, kind, namespace, name),
                json={"propagationPolicy": "Background"},
            )
        except KubeError as err:
            if err.status == 404:
                return False
            raise
        return True

    async def patch_status(
        self,
        api_version: str,
        kind: str,
        namespace: str,
        name: str,
        status: dict[str, Any],
        resource_version: str | None = None,
    ) -> None:
        """Merge-patch the status; with ``resource_version``, only if the object is still
        at that version (KubeError 409 otherwise), so a status computed from a stale read
        never overwrites a newer one."""
        patch: dict[str, Any] = {"status": status}
        if resource_version:
            patch["metadata"] = {"resourceVersion": resource_version}
        await self._request(
            "PATCH",
            resource_path(api_version, kind, namespace, name) + "/status",
            content=json.dumps(patch),
            headers={"Content-Type": "application/merge-patch+json"},
        )


class SecretsNotReadable(KubeError):
    """The operator may not read Secrets in a namespace: its owner has not bound the
    operator's secrets role there (docs/operator.md, RBAC). Checks are skipped."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.note = (
            f"Secrets not verified: the operator may not read Secrets in {namespace} "
            "(bind ClusterRole temporal-flow-operator-secrets there to have them checked)"
        )
        super().__init__(403, self.note)


async def secret_of(kube: KubeClient, namespace: str, name: str) -> dict[str, Any] | None:
    """A Secret a resource names, None when it does not exist; SecretsNotReadable when
    the operator is not allowed to look."""
    try:
        return await kube.get("v1", "Secret", namespace, name)
    except KubeError as err:
        if err.status != 403:
            raise
        raise SecretsNotReadable(namespace) from None
