"""The UI's HTTP server: the page (static files), its JSON API under `/api`, and the
actions, which need `Authorization: Bearer <token>`. Reads and actions alike reach only
runs of the namespaces the UI is given (run_operations' namespace rule: a run of another
namespace is answered as one that does not exist).

Reads never change anything, so they need no token; every action does, and an action
without a valid token is answered 401 (the page says so)."""

from __future__ import annotations

import hmac
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import BaseModel, SecretStr
from temporalio.client import Client

from tflow_cli.ui import runs
from tflow_cli.ui.catalogue import read_catalogue, read_definition
from tflow_cli.ui.codec import CodecRoutes, origin
from tflow_cli.ui.models import ActionDone, Problem
from tflow_operator.kube import KubeClient, KubeError
from tflow_workers import run_operations as ops
from tflow_workers.run_operations import NamespaceRule, RunRefused

log = logging.getLogger("tflow.ui")

STATIC = Path(__file__).parent / "static"
GRAPH_LIBRARY = STATIC / "vendor" / "dagre.min.js"
_MAX_BODY = 1024 * 1024


class UiSettings(BaseModel):
    token: SecretStr | None = None
    # Kubernetes namespaces whose runs the UI shows and acts on; "*" for every run.
    namespaces: tuple[str, ...] = ()
    temporal_ui: str | None = None
    query_timeout: float = 5.0
    # How often the run page asks again while the run is open (milliseconds).
    poll_ms: int = 1500
    # Serve Temporal's remote codec protocol at /codec (see tflow_cli.ui.codec).
    codec: bool = False


@dataclass
class UiApp:
    client: Client
    settings: UiSettings
    kube: KubeClient | None = None

    @property
    def rule(self) -> NamespaceRule:
        return ops.allowed(self.settings.namespaces)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._problems], client_max_size=_MAX_BODY)
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
            return _problem(err.status, err.reason, err.detail)
        except KubeError as err:
            return _problem(502, "kubernetes-error", f"the Kubernetes API answered: {err}")
        except web.HTTPException as err:
            if err.status >= 400:
                return _problem(err.status, "http", err.reason)
            raise
        except Exception as err:  # the page shows a sentence, never a stack trace
            log.exception("request %s %s failed", request.method, request.path)
            return _problem(500, "internal", f"the UI server failed: {type(err).__name__}: {err}")

    def _authenticate(self, request: web.Request) -> None:
        token = self.settings.token
        if token is None:
            raise RunRefused(
                403, "actions-off", "actions are off: the UI was started without a token"
            )
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if not given:
            raise _Unauthorized("send Authorization: Bearer <token>")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode("utf-8", "replace"), token.get_secret_value().encode()
        ):
            raise _Unauthorized("the token is not valid")

    # -- pages

    async def _index(self, _: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html")

    async def _healthz(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _config(self, _: web.Request) -> web.Response:
        return web.json_response(
            {
                "temporalNamespace": self.client.namespace,
                "actions": self.settings.token is not None,
                "namespaces": list(self.settings.namespaces),
                "pollMs": self.settings.poll_ms,
                "graphLibrary": GRAPH_LIBRARY.exists(),
                "temporalUi": self.settings.temporal_ui,
            }
        )

    async def _definitions(self, request: web.Request) -> web.Response:
        catalogue = await read_catalogue(self.kube, request.query.get("namespace") or None)
        return _json(catalogue)

    async def _definition(self, request: web.Request) -> web.Response:
        namespace, name = request.match_info["namespace"], request.match_info["name"]
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
        try:
            size = int(request.query.get("pageSize", ops.DEFAULT_PAGE_SIZE))
        except ValueError:
            raise RunRefused(400, "bad-page-size", "pageSize must be a number") from None
        page = await runs.list_page(
            self.client, self.rule, request.query, request.query.get("page") or None, size
        )
        return _json(page)

    async def _run(self, request: web.Request) -> web.Response:
        view = await runs.run_view(
            self.client,
            self.rule,
            _param(request, "id"),
            query_timeout=self.settings.query_timeout,
            temporal_ui=self.settings.temporal_ui,
        )
        return _json(view)

    # -- actions

    async def _signal(self, request: web.Request) -> web.Response:
        self._authenticate(request)
        body = await request.read()
        payload: Any = None
        if body.strip():
            try:
                payload = json.loads(body)
            except ValueError as err:
                raise RunRefused(400, "malformed-json", f"the body is not JSON: {err}") from None
        workflow_id, name = _param(request, "id"), _param(request, "name")
        await ops.signal_run(self.client, self.rule, workflow_id, name, payload)
        return _json(ActionDone(workflow_id=workflow_id, action="signal", signal=name), 202)

    async def _cancel(self, request: web.Request) -> web.Response:
        self._authenticate(request)
        workflow_id = _param(request, "id")
        await ops.cancel_run(self.client, self.rule, workflow_id)
        return _json(ActionDone(workflow_id=workflow_id, action="cancel"), 202)

    async def _terminate(self, request: web.Request) -> web.Response:
        self._authenticate(request)
        workflow_id = _param(request, "id")
        await ops.terminate_run(
            self.client, self.rule, workflow_id, "terminated from the Temporal Flow UI"
        )
        return _json(ActionDone(workflow_id=workflow_id, action="terminate"), 202)


def _param(request: web.Request, name: str) -> str:
    value = request.query.get(name, "")
    if not value:
        raise RunRefused(400, "missing-parameter", f"?{name}= is required")
    return value


class _Unauthorized(RunRefused):
    def __init__(self, detail: str) -> None:
        super().__init__(401, "unauthorized", detail)


def _json(model: BaseModel, status: int = 200) -> web.Response:
    return web.Response(
        text=model.model_dump_json(by_alias=True),
        status=status,
        content_type="application/json",
    )


def _problem(status: int, reason: str, detail: str) -> web.Response:
    response = _json(Problem(status=status, reason=reason, detail=detail), status)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="tflow-ui"'
    return response
