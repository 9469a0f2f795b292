"""The webhook's run control: signal a run, read its status. Off unless the Listener
enables it, behind the listener's credentials, and only for runs of the Listener's own
Kubernetes namespace (`tflow_workers.run_operations` checks the run's `TflowNamespace`).
A run of another namespace and a run that does not exist get the very same 403."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from aiohttp import web
from temporalio.client import Client

from tflow_listeners.problems import Refusal, is_json, parse_json
from tflow_listeners.webhook.listener import Accepted, WebhookListener
from tflow_workers.run_operations import (
    NamespaceRule,
    RunRefused,
    own_run,
    run_status,
    signal_run,
)
from tflow_workers.temporal_namespaces import TemporalNamespaces, locate_run


async def gate(listener: WebhookListener, request: web.Request) -> Accepted:
    """Enabled, then the usual limits and credentials (which the settings guarantee
    exist when it is enabled)."""
    if not listener.settings.run_control:
        raise Refusal(
            404,
            "run-control-disabled",
            "the run-control API is off on this listener (spec.webhook.runControl.enabled)",
        )
    accepted = await listener.accept(request)
    if accepted.auth_error is not None:
        raise accepted.auth_error
    return accepted


def _refusal(listener: WebhookListener, err: RunRefused, workflow_id: str) -> Refusal:
    if err.status == 404:
        return Refusal(
            403,
            "forbidden-run",
            f"no run {workflow_id!r} of namespace {listener.settings.namespace!r} is "
            "reachable from this listener",
        )
    if err.status == 503:
        return listener.unavailable(err.detail)
    return Refusal(err.status, err.reason, err.detail)


def _rule(listener: WebhookListener) -> NamespaceRule:
    namespace = listener.settings.namespace
    return NamespaceRule.only(namespace) if namespace else NamespaceRule(())


async def _client(listener: WebhookListener, workflow_id: str) -> Client:
    """The client of the Temporal namespace holding the run: the Listener's namespace may
    use several (its pod's TFLOW_TEMPORAL_NAMESPACES), its client is in the first."""
    namespace = listener.settings.namespace
    if not namespace:
        return listener.client
    own = TemporalNamespaces.from_env(listener.client.namespace).of(namespace)
    return await locate_run(listener.client, own, workflow_id)


async def signal(
    listener: WebhookListener, request: web.Request, workflow_id: str, name: str
) -> dict[str, Any]:
    accepted = await gate(listener, request)
    payload: Any = None
    if accepted.body.strip():
        if not is_json(request.content_type):
            raise Refusal(
                415,
                "unsupported-media-type",
                f"Content-Type {request.content_type} is not accepted; a signal's "
                "argument is JSON (application/json)",
            )
        payload = parse_json(accepted.body)
        try:
            json.dumps(payload, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            raise Refusal(400, "invalid-text", "the body is not valid Unicode") from None
    try:
        client = await _client(listener, workflow_id)
        await signal_run(client, _rule(listener), workflow_id, name, payload)
    except RunRefused as err:
        raise _refusal(listener, err, workflow_id) from None
    return {"workflowId": workflow_id, "signal": name}


async def status(
    listener: WebhookListener, request: web.Request, workflow_id: str
) -> dict[str, Any]:
    await gate(listener, request)
    client = await _client(listener, workflow_id)
    try:
        described = await own_run(client, _rule(listener), workflow_id)
    except RunRefused as err:
        raise _refusal(listener, err, workflow_id) from None
    timeout = timedelta(seconds=listener.settings.query_timeout)
    found, note = await run_status(client, described, timeout)
    return {
        "workflowId": workflow_id,
        "runId": described.run_id,
        "workflowType": described.workflow_type,
        "execution": described.status.name if described.status else None,
        "taskQueue": described.task_queue,
        "startTime": described.start_time.isoformat(),
        "closeTime": described.close_time.isoformat() if described.close_time else None,
        "status": found.model_dump(mode="json") if found else None,
        "note": note,
    }
