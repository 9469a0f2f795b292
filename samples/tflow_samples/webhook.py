"""Posting a sample function's message to a webhook named by an environment variable (a
chat, paging or CRM service; a local one in tests); without one, the message is logged."""

from __future__ import annotations

import logging
import os
from typing import Any

import httpx

from tflow_workers.engine.catalog import FunctionError

COMMUNICATION = "https://serverlessworkflow.io/spec/1.0.0/errors/communication"
log = logging.getLogger("tflow.samples")


def post(url_variable: str, channel: str, message: dict[str, Any]) -> dict[str, Any]:
    url = os.environ.get(url_variable)
    sent = {"channel": channel, **message}
    if not url:
        log.info("%s (no %s set): %s", channel, url_variable, sent)
        return {**sent, "delivered": False}
    try:
        response = httpx.post(f"{url.rstrip('/')}/{channel}", json=sent, timeout=10)
    except httpx.HTTPError as err:
        raise FunctionError(
            f"{channel} webhook unreachable: {err}", type=COMMUNICATION, status=503
        ) from None
    if response.status_code >= 300:
        raise FunctionError(
            f"{channel} webhook answered {response.status_code}",
            type=COMMUNICATION,
            status=response.status_code,
        )
    return {**sent, "delivered": True}
