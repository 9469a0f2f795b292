"""Who may send to the webhook: an HMAC signature over the body (Standard Webhooks, with
its replay protection, or GitHub's scheme), a bearer token, or both; every configured
check must pass. Secrets are compared in constant time."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass

from aiohttp import web

from tflow_listeners.problems import Refusal
from tflow_listeners.webhook.limits import ReplayCache
from tflow_listeners.webhook.settings import (
    SIGNATURE_HEADERS,
    STANDARD_WEBHOOKS,
    WEBHOOK_ID,
    WEBHOOK_SIGNATURE,
    WEBHOOK_TIMESTAMP,
    WebhookSettings,
    hmac_key,
)

# The Standard Webhooks id a request claimed, so a request that fails on our side (5xx)
# can give it back.
CLAIM = web.RequestKey("tflow.webhook-claim", str)


@dataclass
class Authenticator:
    settings: WebhookSettings
    replays: ReplayCache

    def check(self, request: web.Request, body: bytes) -> Refusal | None:
        """The first configured check the request fails, or None when it passes them all."""
        return (
            self.check_signature(request, body) or self.check_bearer(request) or self.claim(request)
        )

    def claim(self, request: web.Request) -> Refusal | None:
        """Remember a Standard Webhooks request's id once every check passed (never
        before: an unauthenticated caller must not be able to burn ids)."""
        if self.settings.hmac_secret is None or self.settings.hmac_scheme != STANDARD_WEBHOOKS:
            return None
        key = request.headers[WEBHOOK_ID]
        why = self.replays.claim(key, float(request.headers[WEBHOOK_TIMESTAMP]))
        if why == "replayed":
            return Refusal(
                401,
                "replayed",
                f"{WEBHOOK_ID} {key!r} was already accepted within the last "
                f"{self.settings.hmac_tolerance:g} s: a replayed request is refused",
            )
        if why is not None:
            return Refusal(
                401,
                "stale-timestamp",
                f"{WEBHOOK_TIMESTAMP} is older than this replica can check for replays "
                "under its current load; sign the request again",
            )
        request[CLAIM] = key
        return None

    def check_signature(self, request: web.Request, body: bytes) -> Refusal | None:
        secret = self.settings.hmac_secret
        if secret is None:
            return None
        if self.settings.hmac_scheme == STANDARD_WEBHOOKS:
            return self.check_standard_webhooks(request, body, hmac_key(secret.value()))
        header = next((h for h in SIGNATURE_HEADERS if h in request.headers), None)
        if header is None:
            return Refusal(
                401,
                "missing-signature",
                "the request is not signed: send X-Hub-Signature-256: sha256=<hex HMAC-SHA256 "
                "of the body>",
            )
        given = request.headers[header].strip()
        if not re.fullmatch(r"sha256=[0-9a-fA-F]{64}", given):
            return Refusal(
                401, "bad-signature", f"{header} must be sha256= followed by 64 hex digits"
            )
        expected = hmac.new(secret.value(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), given[7:].lower().encode()):
            return Refusal(401, "bad-signature", f"{header} does not match the body's HMAC-SHA256")
        return None

    def check_standard_webhooks(
        self, request: web.Request, body: bytes, key: bytes
    ) -> Refusal | None:
        """`webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">` (any
        of several space-separated signatures may match: senders rotating a secret send
        both), with `webhook-timestamp` within the tolerance of this replica's clock."""
        missing = [
            h
            for h in (WEBHOOK_ID, WEBHOOK_TIMESTAMP, WEBHOOK_SIGNATURE)
            if h not in request.headers
        ]
        if missing:
            return Refusal(
                401,
                "missing-signature",
                f"the request is not signed (Standard Webhooks): {', '.join(missing)} missing; "
                f"send {WEBHOOK_ID}, {WEBHOOK_TIMESTAMP} (Unix seconds) and {WEBHOOK_SIGNATURE}: "
                "v1,<base64 HMAC-SHA256 of id.timestamp.body>",
            )
        webhook_id = request.headers[WEBHOOK_ID]
        stamp_text = request.headers[WEBHOOK_TIMESTAMP].strip()
        if not webhook_id or len(webhook_id) > 256 or "." in webhook_id:
            return Refusal(
                401, "bad-signature", f"{WEBHOOK_ID} must be 1 to 256 characters without '.'"
            )
        if not re.fullmatch(r"[0-9]{1,12}", stamp_text):
            return Refusal(
                401, "bad-signature", f"{WEBHOOK_TIMESTAMP} must be whole seconds since the epoch"
            )
        tolerance = self.settings.hmac_tolerance
        skew = self.replays.clock() - int(stamp_text)
        if abs(skew) > tolerance:
            when = "old" if skew > 0 else "in the future"
            return Refusal(
                401,
                "stale-timestamp",
                f"{WEBHOOK_TIMESTAMP} is {abs(skew):.0f} s {when}, outside the tolerance of "
                f"{tolerance:g} s: sign the request when sending it (and check the clocks)",
            )
        signed = f"{webhook_id}.{stamp_text}.".encode() + body
        expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
        offered = [
            given[3:].encode()
            for given in request.headers[WEBHOOK_SIGNATURE].split()
            if given.startswith("v1,")
        ]
        if not offered:
            return Refusal(
                401, "bad-signature", f"{WEBHOOK_SIGNATURE} holds no v1,<base64> signature"
            )
        # Every candidate is compared, so the time taken does not say which one matched.
        matches = [hmac.compare_digest(expected, given) for given in offered]
        if not any(matches):
            return Refusal(
                401,
                "bad-signature",
                f"{WEBHOOK_SIGNATURE} does not match the HMAC-SHA256 of id.timestamp.body",
            )
        return None

    def check_bearer(self, request: web.Request) -> Refusal | None:
        token = self.settings.bearer_token
        if token is None:
            return None
        challenge = {"WWW-Authenticate": 'Bearer realm="tflow-listener"'}
        authorization = request.headers.get("Authorization", "")
        if not authorization:
            return Refusal(401, "missing-token", "send Authorization: Bearer <token>", challenge)
        scheme, _, given = authorization.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode("utf-8", "replace"), token.value()
        ):
            return Refusal(401, "bad-token", "the bearer token is not valid", challenge)
        return None

    # -- hand-off --
