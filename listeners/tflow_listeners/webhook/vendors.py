"""What the webhook does for particular senders: the CloudEvents abuse-protection
handshake (`OPTIONS`), SharePoint's webhook (its validation token echoed; its
`clientState` standing for the bearer token it cannot send) and Azure Event Grid (its
subscription validation answered without credentials, since it starts nothing)."""

from __future__ import annotations

import uuid

from aiohttp import web

from tflow_listeners.envelopes import EventFormatError, sharepoint_notifications
from tflow_listeners.problems import Refusal, is_json, parse_json
from tflow_listeners.webhook.decode import bad_event, decode, validation_code
from tflow_listeners.webhook.listener import WebhookListener


def abuse_protection(listener: WebhookListener, request: web.Request) -> web.Response:
    headers = {"Allow": "POST, OPTIONS"}
    origin = request.headers.get("WebHook-Request-Origin")
    if origin:
        headers["WebHook-Allowed-Origin"] = origin
        rate = listener.settings.rate_limit
        # The spec counts requests per minute, as a whole number.
        headers["WebHook-Allowed-Rate"] = str(max(1, int(rate * 60))) if rate else "*"
    return web.Response(status=200, headers=headers)


async def sharepoint(listener: WebhookListener, request: web.Request) -> web.Response:
    token = request.query.get("validationToken")
    if token is not None:
        # The subscription handshake: echo the token, as text, within five seconds.
        return web.Response(
            text=token, content_type="text/plain", headers={"X-Content-Type-Options": "nosniff"}
        )
    listener.rate_limit()
    body = await listener.read_body(request)
    auth = listener.auth
    problem = auth.check_signature(request, body) or auth.claim(request)
    if problem is not None:
        raise problem
    client_state: str | None = None
    if auth.check_bearer(request) is not None:
        # SharePoint cannot send headers: the subscription's clientState, carried in
        # every notification, stands for the bearer token.
        assert listener.settings.bearer_token is not None
        client_state = listener.settings.bearer_token.value().decode("utf-8", "replace")
    if not is_json(request.content_type):
        raise Refusal(
            415,
            "unsupported-media-type",
            f"Content-Type {request.content_type} is not accepted; SharePoint sends "
            "application/json",
        )
    value = parse_json(body)
    try:
        events = sharepoint_notifications(value, uuid.uuid4().hex, client_state)
    except EventFormatError as err:
        if "clientState" in str(err):
            raise Refusal(401, "bad-client-state", str(err)) from None
        raise bad_event(err) from None
    return await listener.hand_off(events)


async def eventgrid(listener: WebhookListener, request: web.Request) -> web.Response:
    accepted = await listener.accept(request)
    code = validation_code(request, accepted.body)
    if code is not None:
        # The subscription handshake starts nothing, so it needs no credentials.
        return web.json_response({"validationResponse": code})
    if accepted.auth_error is not None:
        raise accepted.auth_error
    return await listener.hand_off(decode(request, accepted.body, generic=False))
