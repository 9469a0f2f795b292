"""The operator's Kubernetes client for its children: server-side apply, create, get, list
(whole, by pages, or metadata only), watch, delete and status patches of the kinds it
manages, on the official async client (``kubernetes-asyncio``).

kopf watches and dispatches the kinds with change handlers; this client writes, and
watches EventRoutes (which need none). Server-side apply with one field manager
makes every reconcile idempotent and restores hand edits of the fields the operator owns.

Credentials have one source, :func:`load_configuration`, which kopf's login handler uses
too (:mod:`tflow_operator.main`): the pod's service account when there is one, else the
kubeconfig, both read by the library (``exec`` and ``auth-provider`` users, client
certificates, ``insecure-skip-tls-verify``, ``tls-server-name``, ``proxy-url``, several
paths in ``KUBECONFIG``). In a pod the apiserver is reached at KUBERNETES_SERVICE_HOST and
KUBERNETES_SERVICE_PORT, so no cluster DNS is needed. Requests that the apiserver sheds
(429) or fails (5xx), and idempotent ones that do not reach it, are retried with
exponential back-off; a 401 loads the credentials again once (a rotated token, an expired
exec credential).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import json
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import aiohttp
from kubernetes_asyncio.client import ApiClient, Configuration
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.config import (
    ConfigException,
    load_incluster_config,
    load_kube_config,
)
from kubernetes_asyncio.config.kube_config import KubeConfigLoader
from kubernetes_asyncio.watch import Watch

FIELD_MANAGER: Final = "temporal-flow-operator"
SERVICE_ACCOUNT: Final = Path("/var/run/secrets/kubernetes.io/serviceaccount")

log = logging.getLogger("tflow.operator.kube")

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
    ("authentication.k8s.io/v1", "TokenReview"): "tokenreviews",
    ("authorization.k8s.io/v1", "SubjectAccessReview"): "subjectaccessreviews",
    ("keda.sh/v1alpha1", "ScaledObject"): "scaledobjects",
    ("keda.sh/v1alpha1", "TriggerAuthentication"): "triggerauthentications",
    ("temporalflow.dev/v1alpha1", "WorkflowDefinition"): "workflowdefinitions",
    ("temporalflow.dev/v1alpha1", "EventRoute"): "eventroutes",
    ("temporalflow.dev/v1alpha1", "Listener"): "listeners",
}

_JSON: Final = "application/json"
_METADATA: Final = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
_METADATA_LIST: Final = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
# Requests that may be sent again without changing the outcome: a retried POST after a
# lost answer could create twice (or fail with 409), so POST is retried only on 429,
# which the apiserver answers before doing anything.
_IDEMPOTENT: Final = frozenset({"GET", "PATCH", "PUT", "DELETE"})

# Connections to the apiserver per pool (the operator's client, and kopf's session in
# tflow_operator.main). Every TLS connection holds its buffers in the operator; without a
# limit a burst of thousands of objects held hundreds. A request beyond the limit waits
# for a free connection: in bench_operator.py two runs at N=1000 were slower than without
# a limit, later runs at 32 were as fast as at 64 and faster than at 128, and none was
# slower at 3000 or 10,000 (docs/benchmarks.md, *Connections to the apiserver*).
APISERVER_CONNECTIONS: Final = 32

FieldValidation = Literal["Ignore", "Warn", "Strict"]
# The operator builds every body it writes from its own typed code and reads no warning
# header, so unknown fields would be dropped unnoticed under the apiserver's default
# (Warn) as well; what Warn adds is a second, strict parse of each body, about a fifth
# of the apiserver's CPU for a large apply (bench_operator.py --owner-cost).
_OPERATOR_VALIDATION: Final[FieldValidation] = "Ignore"


class KubeError(RuntimeError):
    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(f"{status}: {message}")


class KubeUnreachable(KubeError):
    """The apiserver did not answer (connection refused or reset, timeout), after the
    retries; ``status`` is 0."""

    def __init__(self, message: str) -> None:
        super().__init__(0, message)


def resource_path(
    api_version: str, kind: str, namespace: str | None, name: str | None = None
) -> str:
    plural = _PLURALS.get((api_version, kind))
    if plural is None:
        raise ValueError(f"unknown resource {api_version} {kind}")
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    path = f"{base}/namespaces/{namespace}/{plural}" if namespace else f"{base}/{plural}"
    return f"{path}/{name}" if name else path


async def load_configuration(service_account: Path = SERVICE_ACCOUNT) -> Configuration:
    """The client configuration from the pod's service account, else from the kubeconfig
    (``KUBECONFIG``, several paths joined as kubectl does, else ``~/.kube/config``).

    The library re-reads a service-account token as it rotates; an exec plugin's token
    is asked for again once its ``expirationTimestamp`` has passed."""
    config = Configuration()
    try:
        load_incluster_config(  # type: ignore[no-untyped-call]
            client_configuration=config,
            token_filename=str(service_account / "token"),
            cert_filename=str(service_account / "ca.crt"),
        )
    except ConfigException:
        # The operator never writes to a user's kubeconfig (refreshed tokens stay in memory).
        # Read now, not when the library was imported (it caches KUBECONFIG at import).
        paths = os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
        loader = await load_kube_config(
            config_file=paths, client_configuration=config, persist_config=False
        )
        _follow_exec_expiry(config, loader)
    return config


def _follow_exec_expiry(config: Configuration, loader: KubeConfigLoader) -> None:
    async def refresh(configuration: Configuration) -> None:
        # Only exec tokens with an expiry have one; the loader reruns the plugin only
        # once it has passed.
        if getattr(loader, "exec_plugin_expiry", None) is None:
            return
        await loader.load_from_exec_plugin()
        configuration.api_key["BearerToken"] = loader.token

    config.refresh_api_key_hook = refresh


@dataclass(frozen=True)
class RetryDelays:
    """Waits between attempts: ``delays[i]`` before attempt ``i + 2``; a Retry-After
    from the apiserver is honoured up to ``ceiling`` seconds."""

    delays: Sequence[float] = (0.25, 0.5, 1.0, 2.0, 4.0)
    ceiling: float = 10.0

    def delay(self, attempt: int, retry_after: str | None = None) -> float | None:
        if attempt >= len(self.delays):
            return None
        wait = self.delays[attempt]
        if retry_after:
            with contextlib.suppress(ValueError):
                wait = max(wait, min(float(retry_after), self.ceiling))
        return wait


def _retryable(method: str, status: int) -> bool:
    if status == 429:
        return True
    return status >= 500 and method in _IDEMPOTENT


def _message(err: ApiException) -> str:
    body = err.body if isinstance(err.body, str) else ""
    try:
        parsed = json.loads(body)
    except ValueError:
        return body or str(err.reason)
    if isinstance(parsed, dict) and isinstance(parsed.get("message"), str):
        return str(parsed["message"])
    return body


class KubeClient:
    """One connection pool to the apiserver, opened on the first request (so that it is
    made inside the event loop that uses it)."""

    def __init__(
        self,
        configure: Callable[[], Awaitable[Configuration]] = load_configuration,
        timeout: float = 30.0,
        backoff: RetryDelays | None = None,
    ) -> None:
        self._configure = configure
        self._timeout = timeout
        self._backoff = backoff or RetryDelays()
        self._api: ApiClient | None = None
        # Clients replaced after a 401 may still carry requests; closed with this one.
        self._retired: list[ApiClient] = []
        self._connecting = asyncio.Lock()

    @classmethod
    def from_env(cls, timeout: float = 30.0) -> KubeClient:
        """The in-cluster service account, else the kubeconfig (see load_configuration)."""
        return cls(timeout=timeout)

    async def close(self) -> None:
        clients, self._retired = [*self._retired, self._api], []
        self._api = None
        for client in clients:
            if client is not None:
                await client.close()

    async def _client(self) -> ApiClient:
        async with self._connecting:
            if self._api is None:
                configuration = await self._configure()
                configuration.connection_pool_maxsize = APISERVER_CONNECTIONS
                self._api = ApiClient(configuration=configuration)
            return self._api

    async def _reconnect(self, stale: ApiClient) -> None:
        async with self._connecting:
            if self._api is stale:
                self._retired.append(stale)
                self._api = None

    async def _request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
        content_type: str = _JSON,
        accept: str = _JSON,
    ) -> Any:
        attempt = 0
        reauthenticated = False
        while True:
            api = await self._client()
            try:
                return await api.call_api(
                    path,
                    method,
                    query_params=list((query or {}).items()),
                    header_params={"Content-Type": content_type, "Accept": accept},
                    body=body,
                    response_types_map={200: "object", 201: "object", 202: "object"},
                    auth_settings=["BearerToken"],
                    _return_http_data_only=True,
                    _request_timeout=self._timeout,
                )
            except ApiException as err:
                if err.status == 401 and not reauthenticated:
                    reauthenticated = True
                    await self._reconnect(api)
                    continue
                retry_after = err.headers.get("Retry-After") if err.headers else None
                wait = (
                    self._backoff.delay(attempt, retry_after)
                    if _retryable(method, err.status)
                    else None
                )
                if wait is None:
                    raise KubeError(err.status, _message(err)) from None
                log.info("%s %s: %s %s, retry in %.2fs", method, path, err.status, err.reason, wait)
            except (aiohttp.ClientError, TimeoutError) as err:
                wait = self._backoff.delay(attempt) if method in _IDEMPOTENT else None
                if wait is None:
                    raise KubeUnreachable(f"{method} {path}: {err!r}") from err
                log.info("%s %s: %r, retry in %.2fs", method, path, err, wait)
            await asyncio.sleep(wait)
            attempt += 1

    async def apply(
        self,
        obj: dict[str, Any],
        force: bool = True,
        field_validation: FieldValidation = _OPERATOR_VALIDATION,
    ) -> dict[str, Any]:
        """Server-side apply: create or update the fields this operator owns."""
        meta = obj["metadata"]
        path = resource_path(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"])
        result: dict[str, Any] = await self._request(
            "PATCH",
            path,
            query={
                "fieldManager": FIELD_MANAGER,
                "force": "true" if force else "false",
                "fieldValidation": field_validation,
            },
            body=obj,
            content_type="application/apply-patch+yaml",
        )
        return result

    async def replace(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Write the whole object, creating it when it does not exist: a PUT without a
        resourceVersion, so the last writer wins and fields this body lacks are removed.

        For large objects only the operator writes (the published ConfigMaps). The
        apiserver parses an apply's body as YAML (twice under the default validation) and
        merges it field by field into the managed fields; a PUT's body is JSON and replaces
        the object. For a 770 KB ConfigMap of 2000 keys a PUT costs the apiserver less than
        half the CPU of an apply (bench_operator.py --owner-cost)."""
        meta = obj["metadata"]
        api_version, kind, namespace = obj["apiVersion"], obj["kind"], meta.get("namespace")
        path = resource_path(api_version, kind, namespace, meta["name"])
        query = {"fieldManager": FIELD_MANAGER, "fieldValidation": _OPERATOR_VALIDATION}
        result: dict[str, Any]
        try:
            result = await self._request("PUT", path, query=query, body=obj)
            return result
        except KubeError as err:
            if err.status != 404:
                raise
        collection = resource_path(api_version, kind, namespace)
        try:
            result = await self._request("POST", collection, query=query, body=obj)
            return result
        except KubeError as err:
            if err.status != 409:
                raise
        # Created by another writer between the two requests: replace that one.
        result = await self._request("PUT", path, query=query, body=obj)
        return result

    async def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create an object (POST); KubeError 409 when it exists."""
        meta = obj["metadata"]
        path = resource_path(obj["apiVersion"], obj["kind"], meta.get("namespace"))
        result: dict[str, Any] = await self._request("POST", path, body=obj)
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
        body = await self._request(
            "GET",
            resource_path(api_version, kind, namespace),
            query={"labelSelector": label_selector} if label_selector else None,
            accept=_METADATA_LIST,
        )
        items: list[dict[str, Any]] = body.get("items") or []
        return items

    async def get(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        name: str,
        metadata_only: bool = False,
    ) -> dict[str, Any] | None:
        """The object, or None when it does not exist; with ``metadata_only`` its metadata
        alone (a PartialObjectMetadata: whether it exists, without its contents)."""
        try:
            result: dict[str, Any] = await self._request(
                "GET",
                resource_path(api_version, kind, namespace, name),
                accept=_METADATA if metadata_only else _JSON,
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
        async for items, _version in self._pages(
            api_version, kind, namespace, label_selector, limit
        ):
            yield items

    async def list_at(
        self, api_version: str, kind: str, limit: int = 500
    ) -> tuple[builtins.list[dict[str, Any]], str]:
        """Every object of a kind in every namespace, and the resourceVersion the list was
        read at: a :meth:`watch` from there misses no change and repeats none."""
        found: builtins.list[dict[str, Any]] = []
        version = ""
        async for items, page_version in self._pages(api_version, kind, None, None, limit):
            found.extend(items)
            # Later pages are read from the first page's snapshot.
            version = version or page_version
        return found, version

    async def _pages(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        label_selector: str | None,
        limit: int,
    ) -> AsyncIterator[tuple[builtins.list[dict[str, Any]], str]]:
        token: str | None = None
        while True:
            query: dict[str, Any] = {"limit": limit}
            if label_selector:
                query["labelSelector"] = label_selector
            if token:
                query["continue"] = token
            body = await self._request(
                "GET", resource_path(api_version, kind, namespace), query=query
            )
            meta = body.get("metadata") or {}
            yield list(body.get("items") or []), str(meta.get("resourceVersion") or "")
            token = meta.get("continue")
            if not token:
                return

    async def watch(
        self, api_version: str, kind: str, resource_version: str, timeout_seconds: int = 300
    ) -> AsyncIterator[dict[str, Any]]:
        """The changes to every object of a kind after ``resource_version``, as the
        apiserver's watch events (``type`` ADDED, MODIFIED, DELETED or BOOKMARK, ``object``
        the object as a dict), until the apiserver ends the watch after about
        ``timeout_seconds``. KubeError 410 when that version is too old to watch from
        (list again); other failures are not retried here, the caller lists again.

        The library's ``Watch`` reads the stream (line framing, bookmarks, error events);
        it is handed a request through this client's connection, not a generated API
        method, since the operator's kinds are addressed by path."""
        path = resource_path(api_version, kind, None)
        api = await self._client()

        async def open_stream(**kwargs: Any) -> Any:
            query = [
                ("watch", "true"),
                ("allowWatchBookmarks", "true"),
                ("timeoutSeconds", str(timeout_seconds)),
            ]
            if kwargs.get("resource_version"):
                query.append(("resourceVersion", str(kwargs["resource_version"])))
            return await api.call_api(
                path,
                "GET",
                query_params=query,
                header_params={"Accept": _JSON},
                auth_settings=["BearerToken"],
                _preload_content=False,
                _request_timeout=timeout_seconds + 30,
            )

        stream = Watch()
        try:
            async for event in stream.stream(
                open_stream, resource_version=resource_version, timeout_seconds=timeout_seconds
            ):
                yield {"type": event["type"], "object": event["raw_object"]}
        except ApiException as err:
            if err.status == 401:
                await self._reconnect(api)
            raise KubeError(err.status, _message(err)) from None
        except (aiohttp.ClientError, TimeoutError) as err:
            raise KubeUnreachable(f"watch {path}: {err!r}") from err
        finally:
            await stream.close()

    async def delete(self, api_version: str, kind: str, namespace: str | None, name: str) -> bool:
        """Delete in the background; False when it was already gone."""
        try:
            await self._request(
                "DELETE",
                resource_path(api_version, kind, namespace, name),
                body={"propagationPolicy": "Background"},
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
            body=patch,
            content_type="application/merge-patch+json",
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
