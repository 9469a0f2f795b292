"""The webhook's configuration: its settings, the secrets it reads from mounted files, the
HMAC schemes and header names, and the fixed routes."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

LISTENER = "webhook"
# HMAC schemes: Standard Webhooks (https://www.standardwebhooks.com: the id, a timestamp
# and the body signed together, replays refused) by default; GitHub's body-only signature
# for senders that can do nothing else.
STANDARD_WEBHOOKS = "standard-webhooks"
GITHUB = "github"
HMAC_SCHEMES = (STANDARD_WEBHOOKS, GITHUB)
SIGNATURE_HEADERS = ("X-Hub-Signature-256", "X-Signature-256")
WEBHOOK_ID = "webhook-id"
WEBHOOK_TIMESTAMP = "webhook-timestamp"
WEBHOOK_SIGNATURE = "webhook-signature"
# Standard Webhooks secrets are usually handed out as `whsec_<base64 key>`.
_WHSEC_PREFIX = b"whsec_"
SHAREPOINT_ROUTE = "/webhook/sharepoint"
EVENTGRID_ROUTE = "/webhook/azure-eventgrid"
RUN_ROUTE = "/runs/{workflowId}"
SIGNAL_ROUTE = "/runs/{workflowId}/signal/{name}"


class Secret:
    """A secret's value, from a file (a mounted Kubernetes Secret: re-read when the file
    changes, so a rotated Secret takes effect without a restart) or given directly."""

    def __init__(self, value: bytes | None = None, path: Path | None = None) -> None:
        if (value is None) == (path is None):
            raise ValueError("a Secret has either a value or a path")
        self.path = path
        self._value = value or b""
        self._stamp: tuple[int, int, int] | None = None
        if path is not None:
            self.value()

    @classmethod
    def from_file(cls, path: str | Path) -> Secret:
        return cls(path=Path(path))

    def value(self) -> bytes:
        if self.path is None:
            return self._value
        try:
            stat = self.path.stat()
        except OSError:
            if self._stamp is None:
                raise
            return self._value  # gone for a moment while Kubernetes swaps it: keep the last
        stamp = (stat.st_mtime_ns, stat.st_ino, stat.st_size)
        if stamp != self._stamp:
            value = self.path.read_bytes().strip()
            if not value:
                raise ValueError(f"secret file {self.path} is empty")
            self._value, self._stamp = value, stamp
        return self._value


def hmac_key(secret: bytes) -> bytes:
    """The key a secret stands for: `whsec_<base64>` is decoded, as Standard Webhooks
    senders mean it; anything else is used as the bytes it is."""
    if not secret.startswith(_WHSEC_PREFIX):
        return secret
    try:
        return base64.b64decode(secret[len(_WHSEC_PREFIX) :], validate=True)
    except ValueError:
        raise ValueError("the HMAC secret starts with whsec_ but the rest is not base64") from None


@dataclass
class WebhookSettings:
    path: str = "/events"
    hmac_secret: Secret | None = None
    hmac_scheme: str = STANDARD_WEBHOOKS
    # Seconds a Standard Webhooks timestamp may be off the listener's clock, either way.
    hmac_tolerance: float = 300.0
    replay_cache_size: int = 100_000
    bearer_token: Secret | None = None
    max_body_bytes: int = 1048576
    rate_limit: float | None = None  # requests per second; unlimited when None
    retry_after: int = 5  # seconds, on 503
    query_timeout: float = 10.0  # seconds a worker has to answer the status query
    # The Listener's Kubernetes namespace: the only one whose runs `/runs` reaches.
    namespace: str | None = None
    # `/runs/...` (signal a run, read its status); never without authentication.
    run_control: bool = False
    # Namespaces whose routes may see this listener's events (see HandOff.share_with).
    share_with: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.hmac_scheme not in HMAC_SCHEMES:
            raise ValueError(
                f"HMAC scheme {self.hmac_scheme!r} is not known; use {' or '.join(HMAC_SCHEMES)}"
            )
        if self.hmac_tolerance <= 0:
            raise ValueError("the HMAC timestamp tolerance must be positive")
        if self.run_control and self.hmac_secret is None and self.bearer_token is None:
            raise ValueError(
                "the run-control API needs authentication: set an HMAC secret or a bearer "
                "token (spec.webhook.auth) to enable it"
            )
        if self.run_control and self.bearer_token is None and self.hmac_scheme == GITHUB:
            raise ValueError(
                "the run-control API cannot rest on a GitHub signature alone: it carries no "
                "timestamp, so a captured request could be replayed forever; add a bearer "
                "token or use the Standard Webhooks scheme"
            )
        if self.run_control and not self.namespace:
            raise ValueError(
                "the run-control API needs the Listener's Kubernetes namespace "
                "(--kube-namespace): it only reaches runs of that namespace"
            )
