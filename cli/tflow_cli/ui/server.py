"""The UI's HTTP server: the page (static files) and its JSON API under `/api`.

Every `/api` request, read or action, carries a bearer token (`tflow_cli.ui.auth`: a
Kubernetes token checked with TokenReview and SubjectAccessReview, or the random token
`tflow ui` printed), and reaches only the namespaces its caller may: reads need the run
API's `list` (definitions, runs) and `get` (a run) on `workflowdefinitions/runs` there,
signals `update`, cancel and terminate `delete`. A run the caller may not read is
answered exactly as one that does not exist (404), as the run API answers; a definition,
a list or an action refused in a namespace is 403 naming the namespace."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import BaseModel, SecretStr
from temporalio.client import Client, WorkflowExecutionDescription

from tflow_cli.kube_access import VERB_LIST, VERB_READ, VERB_STEER, VERB_STOP, KubeAccess
from tflow_cli.ui import runs
from tflow_cli.ui.auth import SIGN_IN_HINTS, AuthMode, Gate, Viewer
from tflow_cli.ui.catalogue import read_catalogue, read_definition
from tflow_cli.ui.codec import CodecRoutes, origin
from tflow_cli.ui.models import ActionDone, Problem
from tflow_operator.api import API_VERSION
from tflow_operator.kube import KubeClient, KubeError
from tflow_workers import run_operations as ops
from tflow_workers.engine.model import SA_NAMESPACE
from tflow_workers.run_operations import NamespaceRule, RunRefused

log = logging.getLogger("tflow.ui")

STATIC = Path(__file__).parent / "static"
GRAPH_LIBRARY = STATIC / "vendor" / "dagre.min.js"
_MAX_BODY = 1024 * 1024


class UiSettings(BaseModel):
    # How callers authenticate (tflow_cli.ui.auth); the token is the `token` mode's.
    auth: AuthMode = "kubernetes"
    token: SecretStr | None = None
    # No actions at all, whatever a caller's grants.
    read_only: bool = False
    # Kubernetes namespaces the UI shows and acts on at most; "*" for every one. Each
    # caller sees the part of them its grants reach.
    namespaces: tuple[str, ...] = ("*",)
    temporal_ui: str | None = None
    query_timeout: float = 5.0
    # How often the run page asks again while the run is open (milliseconds).
    poll_ms: int = 1500
    # Serve Temporal's remote codec protocol at /codec (see tflow_cli.ui.codec).
    codec: bool = False
    # How long an access review's answer, and the namespaces the cluster holds, are kept.
    review_seconds: float = 10.0


_VIEWER = web.RequestKey("tflow.ui-viewer", Viewer)


@dataclass
class UiApp:
    client: Client
    settings: UiSettings
    kube: KubeClient | None = None
    access: KubeAccess | None = None
    gate: Gate = field(init=False)
    _known: tuple[float, frozenset[str]] = field(init=False, default=(0.0, frozenset()))

    def __post_init__(self) -> None:
        if self.access is None and self.kube is not None and self.settings.auth == "kubernetes":
            self.access = KubeAccess(self.kube, review_seconds=self.settings.review_seconds)
        self.gate = Gate(
            self.settings.auth,
            ops.allowed(self.settings.namespaces),
            self.settings.token,
            self.access,
        )

    def app(self) -> web.Application:
        app = web.Application(
            middlewares=[self._problems, self._authenticate], client_max_size=_MAX_BODY
        )
        app.router.add_get("/", self._index)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/api/config", self._config)
        app.router.add_get("/api/definitions", self._definitions)
        app.router.add_get("/api/definitions/{namespace}/{name}", self._definition)
        app.router.add_get("/api/runs", self._runs)
        # A workflow id may hold slashes (a child run's does), so it travels as `?id=`.
        app.router.add_get("/api/run", self._run)
        app.router.add_post("/api/run/signal", self._signal)
        app.router.add_post("/api/run/cancel", self._cancel)
        app.router.add_post("/api/run/terminate", self._terminate)
        app.router.add_static("/static/", STATIC, follow_symlinks=False)
        if self.settings.codec:
            CodecRoutes(
                self.client.data_converter.payload_codec,
                self.client.namespace,
                origin(self.settings.temporal_ui),
            ).add(app)
        return app

    # -- plumbing

    @web.middleware
    async def _problems(self, request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            response: web.StreamResponse = await handler(request)
            return response
        except RunRefused as err:
            return self._problem(err.status, err.reason, err.detail)
        except KubeError as err:
            return self._problem(502, "kubernetes-error", f"the Kubernetes API answered: {err}")
        except web.HTTPException as err:
            if err.status >= 400:
                return self._problem(err.status, "http", err.reason)
            raise
        except Exception as err:  # the page shows a sentence, never a stack trace
            log.exception("request %s %s failed", request.method, request.path)
            return self._problem(
                500, "internal", f"the UI server failed: {type(err).__name__}: {err}"
            )

    @web.middleware
    async def _authenticate(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Every /api request names its caller before anything of it is read."""
        if request.path.startswith("/api/"):
            request[_VIEWER] = await self.gate.viewer(request.headers.get("Authorization", ""))
        response: web.StreamResponse = await handler(request)
        return response

    def _problem(self, status: int, reason: str, detail: str) -> web.Response:
        hint = SIGN_IN_HINTS.get(self.settings.auth) if status == 401 else None
        response = _json(Problem(status=status, reason=reason, detail=detail, sign_in=hint), status)
        if status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="tflow-ui"'
        return response

    async def _known_namespaces(self) -> frozenset[str]:
        """The namespaces the UI may list for a caller: its own list when it has one,
        else those holding WorkflowDefinitions or Listeners (read again every few
        seconds, so a page poll does not list the cluster)."""
        if not self.gate.bound.every:
            return self.gate.bound.namespaces
        if self.kube is None:
            return frozenset()
        at, known = self._known
        if at and time.monotonic() - at < self.settings.review_seconds:
            return known
        found: set[str] = set()
        for kind in ("WorkflowDefinition", "Listener"):
            found.update(
                (o.get("metadata") or {}).get("namespace", "")
                for o in await self.kube.list(API_VERSION, kind)
            )
        known = frozenset(found - {""})
        self._known = (time.monotonic(), known)
        return known

    async def _reading_rule(self, viewer: Viewer) -> NamespaceRule:
        if viewer.caller is None:
            return self.gate.bound
        known = await self._known_namespaces()
        return NamespaceRule(await self.gate.readable(viewer, VERB_LIST, known))

    async def _readable_run(
        self, viewer: Viewer, workflow_id: str
    ) -> tuple[WorkflowExecutionDescription, str | None]:
        """The run and its namespace, when the viewer may read it; else the same 404 as
        for a run that does not exist."""
        described = await ops.own_run(self.client, self.gate.bound, workflow_id)
        namespace = described.typed_search_attributes.get(SA_NAMESPACE)
        if not await self.gate.may(viewer, VERB_READ, namespace):
            raise RunRefused(404, "no-such-run", f"no run {workflow_id!r} is reachable")
        return described, namespace

    async def _steerable(self, request: web.Request, verb: str) -> tuple[str, NamespaceRule]:
        """The run an action names and the rule that reaches it, when the viewer may."""
        if self.settings.read_only:
            raise RunRefused(403, "actions-off", "actions are off: the UI is read-only")
        viewer = request[_VIEWER]
        workflow_id = _param(request, "id")
        _, namespace = await self._readable_run(viewer, workflow_id)
        if namespace is None:
            return workflow_id, self.gate.bound
        await self.gate.require(viewer, verb, namespace)
        return workflow_id, NamespaceRule.only(namespace)

    # -- pages

    async def _index(self, _: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html")

    async def _healthz(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _config(self, request: web.Request) -> web.Response:
        viewer = request[_VIEWER]
        return web.json_response(
            {
                "temporalNamespace": self.client.namespace,
                "auth": self.settings.auth,
                "user": viewer.caller.username if viewer.caller else None,
                "actions": not self.settings.read_only,
                "namespaces": list(self.settings.namespaces),
                "pollMs": self.settings.poll_ms,
                "graphLibrary": GRAPH_LIBRARY.exists(),
                "temporalUi": self.settings.temporal_ui,
            }
        )

    async def _definitions(self, request: web.Request) -> web.Response:
        viewer = request[_VIEWER]
        namespace = request.query.get("namespace") or None
        if namespace:
            await self.gate.require(viewer, VERB_LIST, namespace)
        catalogue = await read_catalogue(self.kube, namespace)
        # Only the namespaces the caller may read, each asked once (and kept a while).
        shown = await self.gate.readable(
            viewer,
            VERB_LIST,
            [d.namespace for d in catalogue.definitions]
            + [item.namespace for item in catalogue.listeners],
        )
        catalogue.definitions = [d for d in catalogue.definitions if d.namespace in shown]
        catalogue.listeners = [item for item in catalogue.listeners if item.namespace in shown]
        return _json(catalogue)

    async def _definition(self, request: web.Request) -> web.Response:
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        await self.gate.require(request[_VIEWER], VERB_LIST, namespace, name)
        if self.kube is None:
            raise RunRefused(404, "no-kubernetes", "no Kubernetes configuration")
        found = await read_definition(self.kube, namespace, name)
        if found is None:
            raise RunRefused(
                404,
                "no-such-definition",
                f"WorkflowDefinition {namespace}/{name} is not in the cluster (deleted?); "
                "its runs stay listed",
            )
        return _json(found)

    async def _runs(self, request: web.Request) -> web.Response:
        viewer = request[_VIEWER]
        try:
            size = int(request.query.get("pageSize", ops.DEFAULT_PAGE_SIZE))
        except ValueError:
            raise RunRefused(400, "bad-page-size", "pageSize must be a number") from None
        definition = request.query.get("definition") or ""
        namespace = request.query.get("namespace") or ""
        if definition:
            owner, _, name = definition.partition("/")
            if not owner or not name:
                raise RunRefused(400, "bad-filter", "definition is <namespace>/<name>")
            await self.gate.require(viewer, VERB_LIST, owner, name)
            rule = NamespaceRule.only(owner)
        elif namespace:
            await self.gate.require(viewer, VERB_LIST, namespace)
            rule = NamespaceRule.only(namespace)
        else:
            rule = await self._reading_rule(viewer)
        page = await runs.list_page(
            self.client, rule, request.query, request.query.get("page") or None, size
        )
        return _json(page)

    async def _run(self, request: web.Request) -> web.Response:
        described, _ = await self._readable_run(request[_VIEWER], _param(request, "id"))
        view = await runs.run_view(
            self.client,
            described,
            query_timeout=self.settings.query_timeout,
            temporal_ui=self.settings.temporal_ui,
        )
        return _json(view)

    # -- actions

    async def _signal(self, request: web.Request) -> web.Response:
        workflow_id, rule = await self._steerable(request, VERB_STEER)
        body = await request.read()
        payload: Any = None
        if body.strip():
            try:
                payload = json.loads(body)
            except ValueError as err:
                raise RunRefused(400, "malformed-json", f"the body is not JSON: {err}") from None
        name = _param(request, "name")
        await ops.signal_run(self.client, rule, workflow_id, name, payload)
        return _json(ActionDone(workflow_id=workflow_id, action="signal", signal=name), 202)

    async def _cancel(self, request: web.Request) -> web.Response:
        workflow_id, rule = await self._steerable(request, VERB_STOP)
        await ops.cancel_run(self.client, rule, workflow_id)
        return _json(ActionDone(workflow_id=workflow_id, action="cancel"), 202)

    async def _terminate(self, request: web.Request) -> web.Response:
        workflow_id, rule = await self._steerable(request, VERB_STOP)
        await ops.terminate_run(
            self.client, rule, workflow_id, "terminated from the Temporal Flow UI"
        )
        return _json(ActionDone(workflow_id=workflow_id, action="terminate"), 202)


def _param(request: web.Request, name: str) -> str:
    value = request.query.get(name, "")
    if not value:
        raise RunRefused(400, "missing-parameter", f"?{name}= is required")
    return value


def _json(model: BaseModel, status: int = 200) -> web.Response:
    return web.Response(
        text=model.model_dump_json(by_alias=True, exclude_none=isinstance(model, Problem)),
        status=status,
        content_type="application/json",
    )
