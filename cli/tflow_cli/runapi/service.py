"""The run API: start, list, read and steer runs of WorkflowDefinitions over HTTP, for
every namespace of the cluster, each caller reaching only what Kubernetes RBAC grants it
(`tflow_cli.kube_access`). The operations are `tflow_workers.run_operations`; this
module declares the routes (the OpenAPI document at `/openapi.json` is generated from
them), authenticates every `/v1` request before its parameters are even read, and turns
refusals into problem bodies.

    POST /v1/namespaces/{namespace}/workflowdefinitions/{name}/runs       start (create)
    GET  /v1/namespaces/{namespace}/workflowdefinitions/{name}/runs       list (list)
    GET  /v1/namespaces/{namespace}/runs/{workflowId}                     status, task log (get)
    GET  /v1/namespaces/{namespace}/runs/{workflowId}/history             events, paged (get)
    POST /v1/namespaces/{namespace}/runs/{workflowId}/signals/{signal}    signal (update)
    POST /v1/namespaces/{namespace}/runs/{workflowId}/events              a CloudEvent (update)
    POST /v1/namespaces/{namespace}/runs/{workflowId}/cancel              (delete)
    POST /v1/namespaces/{namespace}/runs/{workflowId}/terminate           (delete)

A workflow id may hold '/' (the runs an event starts do), so it is matched up to the
route's own suffix; docs/run-api.md has examples.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web
from aiohttp_pydantic.oas.typing import (
    r200,
    r201,
    r202,
    r400,
    r401,
    r403,
    r404,
    r409,
    r503,
)
from pydantic import BaseModel, ConfigDict, Field, RootModel
from pydantic.alias_generators import to_camel
from temporalio.client import Client

from tflow_cli.kube_access import (
    VERB_LIST,
    VERB_READ,
    VERB_START,
    VERB_STEER,
    VERB_STOP,
    AccessUnavailable,
    Caller,
    KubeAccess,
)
from tflow_listeners.metrics import ListenerMetrics, TemporalHealth, ops_routes
from tflow_listeners.openapi import ApiModel, declared, document
from tflow_listeners.problems import Handler, Refusal, RefusalBody, problem_middleware
from tflow_workers import run_operations as ops
from tflow_workers.run_operations import NamespaceRule, RunRefused
from tflow_workers.temporal_namespaces import TemporalNamespaces, client_for, locate_run

log = logging.getLogger("tflow.runapi")

PREFIX = "/v1/namespaces/{namespace}"
DEFINITION_RUNS = PREFIX + "/workflowdefinitions/{name}/runs"
RUN = PREFIX + "/runs/{workflowId:.+}"
Problem = RefusalBody
_CALLER = web.RequestKey("tflow.run-api-caller", Caller)
route = declared()


# ---- what the routes take and answer ------------------------------------------------------


class _Body(ApiModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class StartRequest(_Body):
    input: Any = Field(default=None, description="The run's input, checked against input.schema.")
    workflow_id: str | None = Field(
        default=None,
        description="An idempotency key: the same key starts one run and answers with it. "
        "The run's id is <namespace>:<definition>:<key>.",
    )


class TerminateRequest(_Body):
    reason: str | None = None


class SignalPayload(RootModel[Any]):
    """The signal's argument: any JSON (null for none)."""


class EventRequest(_Body):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    type: str = Field(min_length=1, description="The event type a listen waits for.")
    source: str | None = None
    id: str | None = None
    data: Any = None


# The operations' answers, described for the OpenAPI document (see tflow_listeners.openapi).
class StartedRun(ApiModel, ops.StartedRun):
    model_config = ConfigDict(title="StartedRun")


class RunPage(ApiModel, ops.RunPage):
    model_config = ConfigDict(title="RunPage")


class RunDetail(ApiModel, ops.RunDetail):
    model_config = ConfigDict(title="RunDetail")


class HistoryPage(ApiModel, ops.HistoryPage):
    model_config = ConfigDict(title="HistoryPage")


class Steered(ApiModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    workflow_id: str
    run_id: str
    action: str


# ---- the service ------------------------------------------------------------------------


class RunApi:
    def __init__(
        self,
        client: Client,
        access: KubeAccess,
        metrics: ListenerMetrics | None = None,
        temporal_namespaces: TemporalNamespaces | None = None,
    ) -> None:
        self.client = client
        self.access = access
        self.metrics = metrics or ListenerMetrics("run-api")
        self.health = TemporalHealth(client)
        # Which Temporal namespaces each Kubernetes namespace's runs live in.
        self.temporal = temporal_namespaces or TemporalNamespaces(shared=client.namespace)

    def client_of(self, namespace: str, found: ops.Definition | None = None) -> Client:
        """The client of the Temporal namespace a definition's runs live in: the one its
        status names, else its Kubernetes namespace's home."""
        target = (found.temporal_namespace if found else None) or self.temporal.home(namespace)
        return client_for(self.client, target)

    async def run_client(self, namespace: str, workflow_id: str) -> Client:
        """The client of whichever of the namespace's Temporal namespaces holds the run."""
        home = self.client_of(namespace)
        return await locate_run(home, self.temporal.of(namespace), workflow_id)

    async def definition(self, namespace: str, name: str) -> ops.Definition | None:
        try:
            return await self.access.definition(namespace, name)
        except AccessUnavailable as err:
            raise Refusal(503, "kubernetes-unavailable", str(err), {"Retry-After": "5"}) from None

    def app(self) -> web.Application:
        app = web.Application(
            middlewares=[
                problem_middleware(self.metrics.rejected, self._answered),
                self._authenticate,
            ]
        )
        app[_SERVICE] = self
        # A run's own routes before the bare run route: its id may hold '/'.
        app.add_routes(
            [
                web.post(DEFINITION_RUNS, start),
                web.get(DEFINITION_RUNS, list_runs, allow_head=False),
                web.get(RUN + "/history", history, allow_head=False),
                web.post(RUN + "/signals/{signal}", post_signal),
                web.post(RUN + "/events", send_event),
                web.post(RUN + "/cancel", cancel),
                web.post(RUN + "/terminate", terminate),
                web.get(RUN, describe, allow_head=False),
                web.get("/openapi.json", openapi),
                *ops_routes(self.metrics, self.health),
            ]
        )
        return app

    def _answered(self, request: web.Request, response: web.StreamResponse) -> None:
        resource = request.match_info.route.resource
        self.metrics.request(
            resource.canonical if resource is not None else "unmatched",
            request.method,
            response.status,
        )

    @web.middleware
    async def _authenticate(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Every /v1 request carries a Kubernetes token the cluster accepts (401 else),
        checked before anything of the request is read."""
        if not request.path.startswith("/v1/"):
            return await handler(request)
        challenge = {"WWW-Authenticate": 'Bearer realm="tflow-run-api"'}
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Refusal(
                401, "missing-token", "send Authorization: Bearer <Kubernetes token>", challenge
            )
        try:
            caller = await self.access.authenticate(token.strip())
        except AccessUnavailable as err:
            raise Refusal(503, "kubernetes-unavailable", str(err), {"Retry-After": "5"}) from None
        if caller is None:
            raise Refusal(401, "bad-token", "the cluster does not accept this token", challenge)
        request[_CALLER] = caller
        return await handler(request)

    async def authorize(
        self, request: web.Request, verb: str, namespace: str, name: str = ""
    ) -> None:
        caller = request[_CALLER]
        try:
            allowed = await self.access.allowed(caller, verb, namespace, name)
        except AccessUnavailable as err:
            raise Refusal(503, "kubernetes-unavailable", str(err), {"Retry-After": "5"}) from None
        if not allowed:
            what = f"workflowdefinitions/runs{f' of {name}' if name else ''}"
            raise Refusal(
                403,
                "forbidden",
                f"{caller.username} may not {verb} {what} in namespace {namespace!r}",
            )


_SERVICE = web.AppKey("tflow.run-api", RunApi)


def _service(request: web.Request) -> RunApi:
    service: RunApi = request.app[_SERVICE]
    return service


def _refusal(err: RunRefused) -> Refusal:
    headers = {"Retry-After": "5"} if err.status == 503 else None
    return Refusal(err.status, err.reason, err.detail, headers)


def _json(model: BaseModel, status: int = 200) -> web.Response:
    return web.json_response(model.model_dump(mode="json", by_alias=True), status=status)


def _plain(value: Any, what: str) -> Any:
    """A value Temporal's JSON converter can carry (no NaN, no infinities)."""
    try:
        json.dumps(value, allow_nan=False)
    except ValueError as err:
        raise Refusal(400, "invalid-json", f"{what}: {err}") from None
    return value


# ---- routes -------------------------------------------------------------------------------


@route
async def start(
    request: web.Request, namespace: str, name: str, /, body: StartRequest
) -> (
    r201[StartedRun]
    | r200[StartedRun]
    | r400[Problem]
    | r401[Problem]
    | r403[Problem]
    | r404[Problem]
    | r409[Problem]
    | r503[Problem]
):
    """Start a run of a WorkflowDefinition with an input.

    Tags: runs
    Security: bearer
    Status Codes:
        201: The run started.
        200: A run with this workflowId had started before: it is answered, nothing starts.
        400: The input does not match the definition's input.schema (the JSON pointer is named).
        401: No token, or one the cluster does not accept.
        403: RBAC does not let the caller create workflowdefinitions/runs here.
        404: There is no such WorkflowDefinition.
        409: The definition is not Ready (its reason and message are named).
    """
    service = _service(request)
    await service.authorize(request, VERB_START, namespace, name)
    found = await service.definition(namespace, name)
    if found is None:
        raise Refusal(
            404, "no-such-definition", f"there is no WorkflowDefinition {namespace}/{name}"
        )
    try:
        started = await ops.start_run(
            service.client_of(namespace, found),
            found,
            _plain(body.input, "input"),
            body.workflow_id,
        )
    except RunRefused as err:
        raise _refusal(err) from None
    log.info(
        "run %s of %s/%s %s by %s",
        started.workflow_id,
        namespace,
        name,
        "started" if started.started else "already started",
        request[_CALLER].username,
    )
    return _json(started, 201 if started.started else 200)


@route
async def list_runs(
    request: web.Request,
    namespace: str,
    name: str,
    /,
    status: str | None = None,
    pageSize: int = ops.DEFAULT_PAGE_SIZE,
    pageToken: str | None = None,
) -> r200[RunPage] | r400[Problem] | r401[Problem] | r403[Problem]:
    """The runs of a WorkflowDefinition, newest first, one page at a time.

    status filters on the run's state: running, completed, failed, cancelled,
    terminated, timedout, continuedasnew. Pass nextPageToken back as pageToken for the
    next page (pageSize 1 to 1000).

    Tags: runs
    Security: bearer
    """
    service = _service(request)
    await service.authorize(request, VERB_LIST, namespace, name)
    # The runs are listed where the definition runs now (a definition moved to another
    # Temporal namespace leaves its older runs behind, found through their ids).
    client = service.client_of(namespace, await service.definition(namespace, name))
    try:
        page = await ops.list_runs(
            client,
            NamespaceRule.only(namespace),
            f"{namespace}/{name}",
            status,
            pageToken,
            pageSize,
        )
    except RunRefused as err:
        raise _refusal(err) from None
    return _json(page)


@route
async def describe(
    request: web.Request, namespace: str, workflowId: str, /
) -> r200[RunDetail] | r401[Problem] | r403[Problem] | r404[Problem]:
    """A run's state, output or error, and task log.

    Tags: runs
    Security: bearer
    Status Codes:
        404: No such run in this namespace (a run of another namespace is answered the same).
    """
    service = _service(request)
    await service.authorize(request, VERB_READ, namespace)
    try:
        detail = await ops.describe_run(
            await service.run_client(namespace, workflowId),
            NamespaceRule.only(namespace),
            workflowId,
        )
    except RunRefused as err:
        raise _refusal(err) from None
    return _json(detail)


@route
async def history(
    request: web.Request,
    namespace: str,
    workflowId: str,
    /,
    pageSize: int = ops.DEFAULT_HISTORY_PAGE_SIZE,
    pageToken: str | None = None,
) -> r200[HistoryPage] | r400[Problem] | r401[Problem] | r403[Problem] | r404[Problem]:
    """A run's Temporal events, one page at a time; the first page carries the task log.

    Tags: runs
    Security: bearer
    """
    service = _service(request)
    await service.authorize(request, VERB_READ, namespace)
    try:
        page = await ops.run_history(
            await service.run_client(namespace, workflowId),
            NamespaceRule.only(namespace),
            workflowId,
            pageToken,
            pageSize,
        )
    except RunRefused as err:
        raise _refusal(err) from None
    return _json(page)


@route
async def post_signal(
    request: web.Request, namespace: str, workflowId: str, signal: str, /, body: SignalPayload
) -> r202[Steered] | r401[Problem] | r403[Problem] | r404[Problem] | r409[Problem]:
    """Send a signal; the body (any JSON, null for none) is its argument. A flow run
    takes any signal as an event of that type.

    Tags: runs
    Security: bearer
    Status Codes:
        409: The run has closed.
    """
    service = _service(request)
    await service.authorize(request, VERB_STEER, namespace)
    try:
        run_id = await ops.signal_run(
            await service.run_client(namespace, workflowId),
            NamespaceRule.only(namespace),
            workflowId,
            signal,
            _plain(body.root, "the signal's argument"),
        )
    except RunRefused as err:
        raise _refusal(err) from None
    return _json(Steered(workflow_id=workflowId, run_id=run_id, action=f"signal {signal}"), 202)


@route
async def send_event(
    request: web.Request, namespace: str, workflowId: str, /, body: EventRequest
) -> r202[Steered] | r400[Problem] | r401[Problem] | r403[Problem] | r404[Problem] | r409[Problem]:
    """Deliver a CloudEvent to the run, as the router delivers events a listen waits for.

    Tags: runs
    Security: bearer
    """
    service = _service(request)
    await service.authorize(request, VERB_STEER, namespace)
    event = _plain(body.model_dump(mode="json", exclude_none=True), "the event")
    try:
        run_id = await ops.send_event(
            await service.run_client(namespace, workflowId),
            NamespaceRule.only(namespace),
            workflowId,
            event,
        )
    except RunRefused as err:
        raise _refusal(err) from None
    return _json(Steered(workflow_id=workflowId, run_id=run_id, action="event"), 202)


@route
async def cancel(
    request: web.Request, namespace: str, workflowId: str, /
) -> r202[Steered] | r401[Problem] | r403[Problem] | r404[Problem] | r409[Problem]:
    """Request the run's cancellation (its cleanup still runs).

    Tags: runs
    Security: bearer
    """
    service = _service(request)
    await service.authorize(request, VERB_STOP, namespace)
    try:
        run_id = await ops.cancel_run(
            await service.run_client(namespace, workflowId),
            NamespaceRule.only(namespace),
            workflowId,
        )
    except RunRefused as err:
        raise _refusal(err) from None
    return _json(Steered(workflow_id=workflowId, run_id=run_id, action="cancel"), 202)


@route
async def terminate(
    request: web.Request, namespace: str, workflowId: str, /, body: TerminateRequest
) -> r202[Steered] | r401[Problem] | r403[Problem] | r404[Problem] | r409[Problem]:
    """Stop the run at once, without cleanup.

    Tags: runs
    Security: bearer
    """
    service = _service(request)
    await service.authorize(request, VERB_STOP, namespace)
    reason = body.reason or f"terminated through the run API by {request[_CALLER].username}"
    try:
        run_id = await ops.terminate_run(
            await service.run_client(namespace, workflowId),
            NamespaceRule.only(namespace),
            workflowId,
            reason,
        )
    except RunRefused as err:
        raise _refusal(err) from None
    return _json(Steered(workflow_id=workflowId, run_id=run_id, action="terminate"), 202)


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(document(request.app, "Temporal Flow run API"))
