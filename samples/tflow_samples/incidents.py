"""The incident flow's functions: tell the team, page the on-call engineer. Messages go to
the webhook in `INCIDENT_WEBHOOK_URL`."""

from __future__ import annotations

from typing import Any

from tflow_samples.webhook import post

URL = "INCIDENT_WEBHOOK_URL"


def notify_team(args: dict[str, Any]) -> dict[str, Any]:
    return post(URL, "team", {"incidentId": args["incidentId"], "text": args["text"]})


def page_oncall(args: dict[str, Any]) -> dict[str, Any]:
    return post(
        URL,
        "pager",
        {
            "incidentId": args["incidentId"],
            "summary": args.get("summary", ""),
            "urgency": args.get("urgency", "high"),
            "escalation": bool(args.get("escalation", False)),
        },
    )
