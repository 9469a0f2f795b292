"""The webhook's routes, each declared once: its path, its path and query parameters, what
it answers with which status (the return annotation) and its description (the
docstring). `/openapi.json` is generated from these declarations by aiohttp-pydantic;
the handlers hand the work to the listener, its vendors and its run control.

Event bodies are read raw (signatures are computed over the bytes, binary-mode
CloudEvents carry any content type), so the event routes declare no body model: their
docstrings say what they take.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp_pydantic.oas.typing import (
    r200,
    r202,
    r400,
    r401,
    r403,
    r404,
    r409,
    r413,
    r415,
    r429,
    r503,
)
from pydantic import ConfigDict, Field

from tflow_listeners.handoff import DirectHandOff
from tflow_listeners.metrics import ops_routes
from tflow_listeners.openapi import ApiModel, declared
from tflow_listeners.openapi import document as openapi_document
from tflow_listeners.problems import RefusalBody
from tflow_listeners.webhook import runcontrol, vendors
from tflow_listeners.webhook.decode import decode
from tflow_listeners.webhook.listener import LISTENER_KEY, WebhookListener
from tflow_listeners.webhook.settings import (
    EVENTGRID_ROUTE,
    RUN_ROUTE,
    SHAREPOINT_ROUTE,
    SIGNAL_ROUTE,
)
from tflow_workers.engine.model import RunStatus

route = declared()
Problem = RefusalBody


class _Camel(ApiModel):
    model_config = ConfigDict(populate_by_name=True)


class AcceptedEvent(_Camel):
    id: str
    source: str
    type: str
    workflow_id: str = Field(alias="workflowId")
    outcome: str = Field(
        description="started, duplicate for a redelivery, or (routing directly) unroutable"
    )


class Accepted(_Camel):
    accepted: int
    events: list[AcceptedEvent]


class ValidationAnswer(_Camel):
    validation_response: str = Field(alias="validationResponse")


class SignalSent(_Camel):
    workflow_id: str = Field(alias="workflowId")
    signal: str


class RunState(_Camel):
    workflow_id: str = Field(alias="workflowId")
    run_id: str = Field(alias="runId")
    workflow_type: str = Field(alias="workflowType")
    execution: str | None = None
    task_queue: str = Field(alias="taskQueue")
    start_time: str = Field(alias="startTime")
    close_time: str | None = Field(default=None, alias="closeTime")
    status: RunStatus | None = Field(
        default=None, description="The flow run's status query (null for other workflow types)."
    )
    note: str | None = None


def _listener(request: web.Request) -> WebhookListener:
    return request.app[LISTENER_KEY]


@route
async def post_events(
    request: web.Request,
) -> (
    r202[Accepted]
    | r400[Problem]
    | r401[Problem]
    | r413[Problem]
    | r415[Problem]
    | r429[Problem]
    | r503[Problem]
):
    """Hand events to Temporal: one RootOrchestrator run each, or, on a Listener with
    routing direct, the flow runs their routes start.

    The body: a structured CloudEvent (application/cloudevents+json), a batch
    (application/cloudevents-batch+json), a binary-mode CloudEvent (ce-* headers, the
    body is its data), or JSON: the seed's {eventType, source, ...}, an S3, Event Grid or
    SharePoint body, or an array of these. Signed with webhook-id, webhook-timestamp and
    webhook-signature (Standard Webhooks) or X-Hub-Signature-256 (GitHub) when an HMAC
    secret is set; Authorization: Bearer when a token is.

    Tags: events
    Status Codes:
        202: Temporal accepted the start of every event (started, duplicate, unroutable).
        400: Bad input: malformed JSON, no type, an invalid attribute.
        401: A configured credential (signature, bearer token) is missing or wrong.
        413: The body is over maxBodyBytes, or an event over Temporal's limit.
        415: The Content-Type is not one this route accepts.
        429: Over the rate limit (Retry-After).
        503: Temporal did not accept the events; nothing was claimed, retry (Retry-After).
    """
    listener = _listener(request)
    accepted = await listener.accept(request)
    if accepted.auth_error is not None:
        raise accepted.auth_error
    return await listener.hand_off(decode(request, accepted.body, generic=True))


@route
async def abuse_protection(request: web.Request) -> r200[None]:
    """CloudEvents webhook abuse-protection handshake: WebHook-Allowed-Origin echoes
    WebHook-Request-Origin, WebHook-Allowed-Rate says the rate per minute.

    Tags: events
    """
    return vendors.abuse_protection(_listener(request), request)


@route
async def post_sharepoint(
    request: web.Request, validationToken: str | None = None
) -> r200[str] | r202[Accepted] | r400[Problem] | r401[Problem] | r503[Problem]:
    """SharePoint webhook notifications ({value: [notification]}) and the subscription's
    validation (validationToken echoed as text). Each notification's clientState stands
    for the bearer token.

    Tags: events
    Status Codes:
        200: The validation token, echoed.
        202: Temporal accepted the start of every notification's event.
    """
    return await vendors.sharepoint(_listener(request), request)


@route
async def post_eventgrid(
    request: web.Request,
) -> r200[ValidationAnswer] | r202[Accepted] | r400[Problem] | r401[Problem] | r503[Problem]:
    """Azure Event Grid deliveries (Event Grid or CloudEvents schema) and its
    subscription validation handshake (answered without credentials: it starts nothing).

    Tags: events
    Status Codes:
        200: The validation handshake's answer.
        202: Temporal accepted the start of every event.
    """
    return await vendors.eventgrid(_listener(request), request)


@route
async def post_signal(
    request: web.Request, workflowId: str, name: str, /
) -> r202[SignalSent] | r401[Problem] | r403[Problem] | r404[Problem] | r409[Problem]:
    """Send a signal to a run: the body (any JSON, or empty) is its argument.

    Tags: runs
    Security: bearer
    Status Codes:
        202: Temporal took the signal.
        403: Not a run of the Listener's namespace; a run that does not exist gets the same.
        404: The run-control API is off on this listener.
        409: The run has closed.
    """
    answer = await runcontrol.signal(_listener(request), request, workflowId, name)
    return web.json_response(answer, status=202)


@route
async def get_run(
    request: web.Request, workflowId: str, /
) -> r200[RunState] | r401[Problem] | r403[Problem] | r404[Problem] | r503[Problem]:
    """A run's execution state and, for flow runs, its status query (task log, output).

    Tags: runs
    Security: bearer
    Status Codes:
        403: Not a run of the Listener's namespace; a run that does not exist gets the same.
        404: The run-control API is off on this listener.
    """
    return web.json_response(await runcontrol.status(_listener(request), request, workflowId))


async def health_alias(_: web.Request) -> web.Response:
    """The seed's name for /healthz."""
    return web.json_response({"status": "ok"})


def openapi(app: web.Application) -> dict[str, Any]:
    """The OpenAPI document of the listener's HTTP API, from the declared routes."""
    return openapi_document(app, "Temporal Flow webhook listener")


async def get_openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi(request.app))


def add_routes(app: web.Application, listener: WebhookListener) -> None:
    path = listener.settings.path
    fixed = {SHAREPOINT_ROUTE, EVENTGRID_ROUTE, "/healthz", "/readyz", "/metrics"}
    if path in fixed | {"/openapi.json", "/health"} or path.startswith("/runs/"):
        raise ValueError(f"webhook path {path!r} collides with a built-in route")
    assert listener.health is not None
    routes = [
        web.post(path, post_events),
        web.options(path, abuse_protection),
        web.post(SHAREPOINT_ROUTE, post_sharepoint),
        web.post(EVENTGRID_ROUTE, post_eventgrid),
        web.options(EVENTGRID_ROUTE, abuse_protection),
        web.post(SIGNAL_ROUTE, post_signal),
        web.get(RUN_ROUTE, get_run, allow_head=False),
        web.get("/openapi.json", get_openapi),
        *ops_routes(
            listener.metrics,
            listener.health,
            listener.handoff if isinstance(listener.handoff, DirectHandOff) else None,
        ),
        web.get("/health", health_alias),
    ]
    if path != "/webhook":  # the seed's generic endpoint
        routes.append(web.post("/webhook", post_events))
    app.add_routes(routes)
