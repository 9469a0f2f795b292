"""The incident flow's functions: tell the team, page the on-call engineer.

Each posts a JSON message to the webhook in `INCIDENT_WEBHOOK_URL` (a chat or paging
service; in tests, a local one) and returns what it sent; without a webhook it only logs.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import httpx

from tflow_workers.engine.catalog import FunctionError

log = logging.getLogger("tflow.samples.incidents")


def _post(channel: str, message: dict[str, Any]) -> dict[str, Any]:
    url = os.environ.get("INCIDENT_WEBHOOK_URL")
    sent = {"channel": channel, **message}
    if not url:
        log.info("incident %s (no INCIDENT_WEBHOOK_URL set): %s", channel, sent)
        return {**sent, "delivered": False}
    try:
        response = httpx.post(f"{url.rstrip('/')}/{channel}", json=sent, timeout=10)
    except httpx.HTTPError as err:
        raise FunctionError(
            f"{channel} webhook unreachable: {err}",
            type="https://serverlessworkflow.io/spec/1.0.0/errors/communication",
            status=503,
        ) from None
    if response.status_code >= 300:
        raise FunctionError(
            f"{channel} webhook answered {response.status_code}",
            type="https://serverlessworkflow.io/spec/1.0.0/errors/communication",
            status=response.status_code,
        )
    return {**sent, "delivered": True}


def notify_team(args: dict[str, Any]) -> dict[str, Any]:
    return _post("team", {"incidentId": args["incidentId"], "text": args["text"]})


def page_oncall(args: dict[str, Any]) -> dict[str, Any]:
    return _post(
        "pager",
        {
            "incidentId": args["incidentId"],
            "summary": args.get("summary", ""),
            "urgency": args.get("urgency", "high"),
            "escalation": bool(args.get("escalation", False)),
        },
    )
