"""The engine's built-in activities: HTTP calls, emitting events to the router, resolving
a child workflow's definition, and reading secrets. All of the engine's I/O is here."""

from __future__ import annotations

import base64
import contextlib
import json
import os
from pathlib import Path
from typing import Any, Protocol

import httpx
from temporalio import activity
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError

from tflow_workers.cloudevents import (
    DEFAULT_ROUTER_TASK_QUEUE,
    ROOT_MEMO,
    ROOT_ORCHESTRATOR_WORKFLOW_TYPE,
    RootInput,
    event_workflow_id,
)
from tflow_workers.dsl.yamlio import YamlError, load_yaml, load_yaml_all
from tflow_workers.engine.errors import (
    APPLICATION_ERROR_TYPE,
    ErrorType,
    Problem,
    WorkflowError,
    check_payload,
)
from tflow_workers.engine.model import (
    ACTIVITY_EMIT,
    ACTIVITY_HTTP,
    ACTIVITY_OPENAPI,
    ACTIVITY_RESOLVE,
    ACTIVITY_SECRETS,
    SA_NAMESPACE,
    DefinitionRef,
    HttpRequest,
    OpenApiRequest,
    ResolvedDefinition,
    ResolveRequest,
)
from tflow_workers.engine.openapi import OpenApiOperation
from tflow_workers.temporal_namespaces import TemporalNamespaceError, TemporalNamespaces


def problem_error(problem: Problem, retryable: bool = False) -> ApplicationError:
    """An ApplicationError the interpreter turns back into this DSL error."""
    return ApplicationError(
        problem.title or problem.detail or problem.type,
        problem.as_data(),
        type=APPLICATION_ERROR_TYPE,
        non_retryable=not retryable,
    )


class DefinitionRegistry(Protocol):
    def resolve(self, request: ResolveRequest) -> ResolvedDefinition | None: ...


class DirectoryRegistry:
    """Definitions from YAML files in a directory (the operator's published definitions,
    mounted from a ConfigMap, or a developer's folder for `tflow run`). A file may hold
    raw Serverless Workflow documents or WorkflowDefinition manifests."""

    def __init__(
        self, directory: Path | None, temporal_namespaces: TemporalNamespaces | None = None
    ) -> None:
        self.directory = directory
        # Where each definition's runs live, when the operator maps namespaces; without
        # it, what the definition itself says (spec.temporalNamespace), if anything.
        self.temporal_namespaces = temporal_namespaces

    def _temporal_namespace(self, namespace: str, spec: dict[str, Any]) -> str | None:
        declared = spec.get("temporalNamespace")
        declared = str(declared) if declared else None
        if self.temporal_namespaces is None or not self.temporal_namespaces.enabled:
            return declared
        try:
            return self.temporal_namespaces.resolve(namespace, declared)
        except TemporalNamespaceError:
            return declared

    def _candidates(self) -> list[ResolvedDefinition]:
        found: list[ResolvedDefinition] = []
        if self.directory is None or not self.directory.is_dir():
            return found
        for path in sorted(self.directory.iterdir()):
            if path.suffix not in (".yaml", ".yml", ".json") or not path.is_file():
                continue
            for doc in load_yaml_all(path.read_text()):
                if not isinstance(doc, dict):
                    continue
                if doc.get("kind") == "WorkflowDefinition":
                    spec = doc.get("spec") or {}
                    meta = doc.get("metadata") or {}
                    namespace = meta.get("namespace", "default")
                    found.append(
                        ResolvedDefinition(
                            document=spec.get("workflow") or {},
                            task_queue=spec.get("taskQueue"),
                            definition=DefinitionRef(
                                name=meta.get("name", ""),
                                namespace=namespace,
                                version=str(meta.get("generation", "")) or None,
                            ),
                            temporal_namespace=self._temporal_namespace(namespace, spec),
                        )
                    )
                elif "document" in doc and "do" in doc:
                    found.append(ResolvedDefinition(document=doc))
        return found

    def resolve(self, request: ResolveRequest) -> ResolvedDefinition | None:
        for candidate in self._candidates():
            document = candidate.document.get("document") or {}
            k8s_name = candidate.definition.name if candidate.definition else None
            if request.name not in (document.get("name"), k8s_name):
                continue
            if request.namespace not in (document.get("namespace"), "default") and (
                candidate.definition is None or candidate.definition.namespace != request.namespace
            ):
                continue
            if request.version and str(document.get("version")) != request.version:
                continue
            return candidate
        return None

    def workflow_definitions(self) -> dict[tuple[str, str], ResolvedDefinition]:
        """The WorkflowDefinition manifests by Kubernetes (namespace, name), what an
        EventRoute targets; raw documents are left out. The first file wins a clash."""
        found: dict[tuple[str, str], ResolvedDefinition] = {}
        for candidate in self._candidates():
            ref = candidate.definition
            if ref is not None:
                found.setdefault((ref.namespace, ref.name), candidate)
        return found


class SecretStore:
    """Secrets mounted as files: `<dir>/<secret name>/<key>` (how Kubernetes mounts a
    Secret volume). `$secret.<name>.<key>` reads them."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory

    def read(self, name: str) -> dict[str, str] | None:
        if self.directory is None:
            return None
        folder = self.directory / name
        if not folder.is_dir():
            return None
        return {
            f.name: f.read_text()
            for f in sorted(folder.iterdir())
            if f.is_file() and not f.name.startswith(".")
        }


class EngineActivities:
    def __init__(
        self,
        client: Client | None = None,
        definitions: DefinitionRegistry | None = None,
        secrets: SecretStore | None = None,
        router_task_queue: str = DEFAULT_ROUTER_TASK_QUEUE,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.client = client
        self.definitions = definitions or DirectoryRegistry(None)
        self.secret_store = secrets or SecretStore(None)
        self.router_task_queue = router_task_queue
        self._http = http

    def all(self) -> list[Any]:
        return [self.http, self.openapi, self.emit, self.resolve_definition, self.secrets]

    @activity.defn(name=ACTIVITY_HTTP)
    async def http(self, request: HttpRequest) -> Any:
        auth: httpx.Auth | None = httpx.BasicAuth(*request.basic) if request.basic else None
        headers = dict(request.headers)
        if request.bearer:
            headers["Authorization"] = f"Bearer {request.bearer}"
        kwargs: dict[str, Any] = {}
        if request.body is not None:
            if isinstance(request.body, (dict, list)):
                kwargs["json"] = request.body
            else:
                kwargs["content"] = str(request.body)
        client = self._http or httpx.AsyncClient(timeout=httpx.Timeout(60.0))
        try:
            response = await client.request(
                request.method,
                request.uri,
                params=request.query or None,
                headers=headers,
                auth=auth,
                follow_redirects=request.redirect,
                **kwargs,
            )
        except httpx.HTTPError as err:
            raise problem_error(
                Problem(
                    type=ErrorType.COMMUNICATION,
                    status=503,
                    title="Request failed",
                    detail=f"{request.method} {request.uri}: {err}",
                ),
                # A connection fault may be transient; the document's retry policy
                # decides, so it is still reported as non-retryable to Temporal.
            ) from None
        finally:
            if self._http is None:
                await client.aclose()
        ok = 200 <= response.status_code < (400 if request.redirect else 300)
        content = _decode(response)
        if not ok:
            raise problem_error(
                Problem(
                    type=ErrorType.COMMUNICATION,
                    status=response.status_code,
                    title=response.reason_phrase or "HTTP error",
                    detail=f"{request.method} {request.uri} answered {response.status_code}",
                    data={"response": {"statusCode": response.status_code, "content": content}},
                )
            )
        try:
            check_payload(content, f"the response of {request.method} {request.uri}")
        except WorkflowError as err:
            raise problem_error(err.problem) from None
        if request.output == "raw":
            return base64.b64encode(response.content).decode()
        if request.output == "response":
            return {
                "request": {"method": request.method, "uri": request.uri, "headers": headers},
                "statusCode": response.status_code,
                "headers": dict(response.headers),
                "content": content,
            }
        return content

    @activity.defn(name=ACTIVITY_OPENAPI)
    async def openapi(self, request: OpenApiRequest) -> Any:
        document = await self._openapi_document(request.document)
        try:
            built = OpenApiOperation(document, request.document, request.operation_id).request(
                request.parameters
            )
        except WorkflowError as err:
            raise problem_error(err.problem) from None
        return await self.http(
            HttpRequest(
                **built,
                output=request.output,
                redirect=request.redirect,
                basic=request.basic,
                bearer=request.bearer,
            )
        )

    async def _openapi_document(self, uri: str) -> dict[str, Any]:
        client = self._http or httpx.AsyncClient(timeout=httpx.Timeout(60.0))
        try:
            response = await client.get(uri, follow_redirects=True)
            response.raise_for_status()
        except httpx.HTTPError as err:
            raise problem_error(
                Problem(
                    type=ErrorType.COMMUNICATION,
                    status=getattr(getattr(err, "response", None), "status_code", 503),
                    title="OpenAPI document not available",
                    detail=f"GET {uri}: {err}",
                )
            ) from None
        finally:
            if self._http is None:
                await client.aclose()
        try:
            document = load_yaml(response.text)
        except YamlError as err:
            document = err
        if not isinstance(document, dict):
            raise problem_error(
                Problem(
                    type=ErrorType.CONFIGURATION,
                    status=400,
                    title="Not an OpenAPI document",
                    detail=f"{uri} is not a JSON or YAML object: {document}"[:500],
                )
            )
        return document

    @activity.defn(name=ACTIVITY_EMIT)
    async def emit(self, event: dict[str, Any]) -> None:
        if self.client is None:
            raise problem_error(
                Problem(
                    type=ErrorType.RUNTIME,
                    status=500,
                    title="No event router",
                    detail="this worker has no Temporal client to hand events to",
                )
            )
        # The event belongs to the emitting run's namespace, read from the run's search
        # attribute (set by whoever started it, not by the document), so a flow's events
        # are routed like its Listener's would be and never leave its namespace.
        info = activity.info()
        namespace: str | None = None
        if info.workflow_id is not None:
            described = await self.client.get_workflow_handle(
                info.workflow_id, run_id=info.workflow_run_id
            ).describe()
            namespace = described.typed_search_attributes.get(SA_NAMESPACE)
        # A retried activity whose start already went through is the same event.
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await self.client.start_workflow(
                ROOT_ORCHESTRATOR_WORKFLOW_TYPE,
                RootInput(event=event, namespace=namespace, local_routing=True),
                id=event_workflow_id(str(event["source"]), str(event["id"]), namespace),
                task_queue=self.router_task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                search_attributes=(
                    None
                    if namespace is None
                    else TypedSearchAttributes([SearchAttributePair(SA_NAMESPACE, namespace)])
                ),
                memo=ROOT_MEMO,
            )

    @activity.defn(name=ACTIVITY_RESOLVE)
    async def resolve_definition(self, request: ResolveRequest) -> ResolvedDefinition:
        resolved = self.definitions.resolve(request)
        if resolved is None:
            version = f" version {request.version}" if request.version else ""
            raise problem_error(
                Problem(
                    type=ErrorType.CONFIGURATION,
                    status=404,
                    title="Workflow not found",
                    detail=f"no workflow {request.namespace}/{request.name}{version} is defined",
                )
            )
        return resolved

    @activity.defn(name=ACTIVITY_SECRETS)
    async def secrets(self, names: list[str]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name in names:
            secret = self.secret_store.read(name)
            if secret is None:
                raise problem_error(
                    Problem(
                        type=ErrorType.CONFIGURATION,
                        status=404,
                        title="Secret not found",
                        detail=f"secret {name!r} is not mounted on this worker",
                    )
                )
            values[name] = secret
        return values


def _decode(response: httpx.Response) -> Any:
    ctype = response.headers.get("content-type", "")
    if "json" in ctype:
        try:
            return response.json()
        except json.JSONDecodeError:
            return response.text
    if ctype.startswith("text/") or not ctype:
        return response.text
    return base64.b64encode(response.content).decode()


def env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None
