"""The abandoned-cart flow's nodes (seed 003): message the client, notify the cart's
creator, call the CRM webhook. Messages go to the webhook in `CART_WEBHOOK_URL`."""

from __future__ import annotations

from typing import Any

from tflow_samples.webhook import post

URL = "CART_WEBHOOK_URL"


def send_message(args: dict[str, Any]) -> dict[str, Any]:
    return post(URL, "messages", {"cartId": args.get("cartId"), "text": "Still thinking it over?"})


def notify_creator(args: dict[str, Any]) -> dict[str, Any]:
    return post(URL, "creator", {"cartId": args.get("cartId"), "text": "The client answered"})


def webhook(args: dict[str, Any]) -> dict[str, Any]:
    return post(URL, "crm", {"cartId": args.get("cartId"), "event": "no-answer"})
