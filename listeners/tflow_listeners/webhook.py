"""The HTTP webhook listener: events in by POST, one RootOrchestrator run per event.

Routes (docs/listeners.md has the details, `/openapi.json` the schema):

- `POST /events` (the configured path; `/webhook` too): structured CloudEvents, binary-mode
  CloudEvents (`ce-*` headers), batches, plain JSON, and the shapes `envelopes` knows;
- `POST /webhook/sharepoint`, `POST|OPTIONS /webhook/azure-eventgrid`: the Microsoft
  senders, with their subscription handshakes;
- `POST /runs/{workflowId}/signal/{name}`, `GET /runs/{workflowId}`: signal a run, read
  its status; off unless enabled, authenticated, and only for runs of the Listener's own
  Kubernetes namespace (read from the run's `TflowNamespace` search attribute);
- `GET /healthz`, `/readyz`, `/metrics`, `/openapi.json`.

A request is answered 202 only once Temporal accepted the start of every event in it
(`started`, or `duplicate` for a redelivery); 503 with Retry-After when it did not, so the
sender retries and nothing is lost. Every other refusal is a 4xx whose JSON body names the
problem: `{"status": 400, "reason": "malformed-json", "detail": "..."}`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import heapq
import hmac
import json
import logging
import math
import re
import time
import urllib.parse
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ValidationError
from temporalio.client import Client, WorkflowExecutionDescription, WorkflowQueryFailedError
from temporalio.service import RPCError, RPCStatusCode

from tflow_listeners.envelopes import (
    EventFormatError,
    cloudevent,
    eventgrid_events,
    eventgrid_validation_code,
    parse_events,
    sharepoint_notifications,
)
from tflow_listeners.handoff import HandOff, Outcome
from tflow_listeners.metrics import ListenerMetrics, Submitter, TemporalHealth, ops_routes
from tflow_listeners.source import add_flag, connect_temporal
from tflow_workers.cloudevents import DEFAULT_ROUTER_TASK_QUEUE, CloudEvent, event_workflow_id
from tflow_workers.connection import TemporalUnavailable
from tflow_workers.engine.errors import PAYLOAD_LIMIT_BYTES
from tflow_workers.engine.model import SA_NAMESPACE, WORKFLOW_TYPE, RunStatus

log = logging.getLogger(__name__)

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
_CLAIM = web.RequestKey("tflow.webhook-claim", str)
SHAREPOINT_ROUTE = "/webhook/sharepoint"
EVENTGRID_ROUTE = "/webhook/azure-eventgrid"
RUN_ROUTE = "/runs/{workflowId}"
SIGNAL_ROUTE = "/runs/{workflowId}/signal/{name}"
# Deeper JSON than this cannot travel through Temporal's payload converter.
MAX_JSON_DEPTH = 100
_CE_ATTRIBUTE = re.compile(r"^[a-z0-9]{1,20}$")
_HANDOFF_CONCURRENCY = 16


# ---- configuration ----------------------------------------------------------------------


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


class ReplayCache:
    """The webhook-ids accepted within the tolerance window, so a captured request cannot
    be sent again while its timestamp is still acceptable. Kept in memory per replica.

    Bounded: when `capacity` ids are held, the one with the oldest timestamp is dropped
    and from then on nothing signed at or before that timestamp is accepted (`floor`), so
    a full cache shrinks the window instead of forgetting ids it still has to refuse.
    """

    def __init__(
        self, window: float, capacity: int = 100_000, clock: Callable[[], float] = time.time
    ) -> None:
        if capacity < 1:
            raise ValueError("the replay cache needs room for at least one id")
        self.window = window
        self.capacity = capacity
        self.clock = clock
        self.floor = -math.inf
        self._seen: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []

    def __len__(self) -> int:
        return len(self._seen)

    def _pop_oldest(self) -> tuple[float, str] | None:
        while self._heap:
            stamp, key = heapq.heappop(self._heap)
            if self._seen.get(key) == stamp:
                del self._seen[key]
                return stamp, key
        return None

    def _expire(self) -> None:
        horizon = self.clock() - self.window
        while self._heap and self._heap[0][0] < horizon:
            self._pop_oldest()
        if len(self._heap) > 2 * self.capacity:  # released ids leave stale heap entries
            self._heap = [(stamp, key) for key, stamp in self._seen.items()]
            heapq.heapify(self._heap)

    def claim(self, key: str, stamp: float) -> str | None:
        """None when the id is new (it is remembered), else why it is refused."""
        self._expire()
        if key in self._seen:
            return "replayed"
        if stamp <= self.floor:
            return "evicted"
        while len(self._seen) >= self.capacity:
            oldest = self._pop_oldest()
            if oldest is None:
                break
            self.floor = max(self.floor, oldest[0])
        if stamp <= self.floor:
            return "evicted"
        self._seen[key] = stamp
        heapq.heappush(self._heap, (stamp, key))
        return None

    def release(self, key: str) -> None:
        """Forget an id whose request failed on our side (5xx), so the sender's retry,
        which keeps its webhook-id, is not taken for a replay."""
        self._seen.pop(key, None)


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


# ---- problems ---------------------------------------------------------------------------


class Refusal(Exception):
    """A refusal: HTTP status, a reason slug (the metrics label) and a sentence."""

    def __init__(
        self, status: int, reason: str, detail: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.reason = reason
        self.detail = detail
        self.headers = dict(headers or {})

    def response(self) -> web.Response:
        return web.json_response(
            {"status": self.status, "reason": self.reason, "detail": self.detail},
            status=self.status,
            headers=self.headers,
        )


def _format_error(err: Exception) -> str:
    if isinstance(err, ValidationError):
        first = err.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "event"
        return f"{where}: {first.get('msg')}"
    return str(err)


def _bad_event(err: Exception) -> Refusal:
    message = _format_error(err)
    head, _, rest = message.partition(": ")
    missing = "missing" in rest or "Field required" in rest
    no_type = "missing event type" in message or (head.split(".")[-1] == "type" and missing)
    return Refusal(400, "missing-type" if no_type else "invalid-event", message)


# ---- rate limit -------------------------------------------------------------------------


class TokenBucket:
    """`rate` requests per second on average, bursts of up to `burst`."""

    def __init__(
        self, rate: float, burst: float | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0:
            raise ValueError("the rate limit must be positive")
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self.clock = clock
        self._tokens = self.burst
        self._at = clock()

    def take(self) -> float:
        """0 when a request may go ahead, else the seconds until one may."""
        now = self.clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self.rate


# ---- JSON -------------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text} is out of range for a JSON number")
    return value


def parse_json(body: bytes, what: str = "the body") -> Any:
    if not body.strip():
        raise Refusal(400, "empty-body", f"{what} is empty; send a JSON event")
    try:
        value = json.loads(body, parse_constant=_reject_constant, parse_float=_finite)
    except RecursionError:
        raise Refusal(
            400, "too-deep", f"{what} nests deeper than {MAX_JSON_DEPTH} levels"
        ) from None
    except ValueError as err:  # JSONDecodeError, UnicodeDecodeError, NaN
        raise Refusal(400, "malformed-json", f"{what} is not valid JSON: {err}") from None
    _check_depth(value, what)
    return value


def _check_depth(value: Any, what: str) -> None:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise Refusal(400, "too-deep", f"{what} nests deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)


def _is_json(mime: str) -> bool:
    return mime == "application/json" or mime == "text/json" or mime.endswith("+json")


def _validation_code(request: web.Request, body: bytes) -> str | None:
    """The code of an Event Grid subscription validation request, or None when the request
    is anything else (then it is read, and refused if need be, as a delivery)."""
    mime = request.content_type
    if not _is_json(mime) or mime.startswith("application/cloudevents"):
        return None
    try:
        return eventgrid_validation_code(parse_json(body))
    except (Refusal, EventFormatError):
        return None


# ---- the app ----------------------------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class _Accepted:
    body: bytes
    auth_error: Refusal | None = None


@dataclass
class WebhookListener:
    client: Client
    settings: WebhookSettings = field(default_factory=WebhookSettings)
    handoff: Submitter | None = None
    metrics: ListenerMetrics = field(default_factory=lambda: ListenerMetrics(LISTENER))
    health: TemporalHealth | None = None
    task_queue: str | None = None

    def __post_init__(self) -> None:
        if self.handoff is None:
            self.handoff = HandOff(
                self.client,
                self.task_queue or DEFAULT_ROUTER_TASK_QUEUE,
                namespace=self.settings.namespace,
                share_with=self.settings.share_with,
            )
        if self.health is None:
            self.health = TemporalHealth(self.client)
        rate = self.settings.rate_limit
        self._bucket = TokenBucket(rate) if rate else None
        self.replays = ReplayCache(self.settings.hmac_tolerance, self.settings.replay_cache_size)
        self._semaphore = asyncio.Semaphore(_HANDOFF_CONCURRENCY)

    # -- assembly --

    def app(self) -> web.Application:
        path = self.settings.path
        fixed = {SHAREPOINT_ROUTE, EVENTGRID_ROUTE, "/healthz", "/readyz", "/metrics"}
        if path in fixed | {"/openapi.json", "/health"} or path.startswith("/runs/"):
            raise ValueError(f"webhook path {path!r} collides with a built-in route")
        app = web.Application(middlewares=[self._middleware])
        assert self.health is not None
        routes = [
            web.post(path, self._events),
            web.options(path, self._abuse_protection),
            web.post(SHAREPOINT_ROUTE, self._sharepoint),
            web.post(EVENTGRID_ROUTE, self._eventgrid),
            web.options(EVENTGRID_ROUTE, self._abuse_protection),
            web.post(SIGNAL_ROUTE, self._signal),
            web.get(RUN_ROUTE, self._run_status),
            web.get("/openapi.json", self._openapi),
            *ops_routes(self.metrics, self.health),
            web.get("/health", self._healthz_alias),  # the seed's name
        ]
        if path != "/webhook":  # the seed's generic endpoint
            routes.append(web.post("/webhook", self._events))
        app.add_routes(routes)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except Refusal as problem:
            self.metrics.rejected(problem.reason)
            response = problem.response()
        except web.HTTPException as err:
            if err.status < 400:
                raise
            reason = re.sub(r"[^a-z0-9]+", "-", (err.reason or "error").lower()).strip("-")
            detail = {
                404: f"no route {request.method} {request.path}",
                405: f"{request.method} is not allowed on {request.path}",
            }.get(err.status, err.reason or "refused")
            headers = {k: v for k, v in err.headers.items() if k.lower() == "allow"}
            self.metrics.rejected(reason)
            response = Refusal(err.status, reason, detail, headers).response()
        except Exception:
            log.exception("unexpected error answering %s %s", request.method, request.path)
            response = Refusal(500, "internal-error", "the listener failed; see its log").response()
        claim = request.get(_CLAIM)
        if claim is not None and response.status >= 500:
            self.replays.release(claim)
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        self.metrics.request(route, request.method, response.status)
        return response

    # -- what every event route does first --

    async def _accept(self, request: web.Request) -> _Accepted:
        """Rate limit, size limit, then authentication; the body, read."""
        self._rate_limit()
        body = await self._read_body(request)
        return _Accepted(body, self._authenticate(request, body))

    def _rate_limit(self) -> None:
        if self._bucket is None:
            return
        wait = self._bucket.take()
        if wait > 0:
            raise Refusal(
                429,
                "rate-limited",
                f"over the limit of {self._bucket.rate:g} requests per second",
                {"Retry-After": str(max(1, math.ceil(wait)))},
            )

    async def _read_body(self, request: web.Request) -> bytes:
        limit = self.settings.max_body_bytes
        too_large = Refusal(
            413,
            "too-large",
            f"the body is over the listener's limit of {limit} bytes (maxBodyBytes)",
        )
        if request.content_length is not None and request.content_length > limit:
            raise too_large
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.content.iter_chunked(65536):
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)
        return b"".join(chunks)

    def _authenticate(self, request: web.Request, body: bytes) -> Refusal | None:
        """The first configured check the request fails, or None when it passes them all."""
        return (
            self._check_signature(request, body)
            or self._check_bearer(request)
            or self._claim(request)
        )

    def _claim(self, request: web.Request) -> Refusal | None:
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
        request[_CLAIM] = key
        return None

    def _check_signature(self, request: web.Request, body: bytes) -> Refusal | None:
        secret = self.settings.hmac_secret
        if secret is None:
            return None
        if self.settings.hmac_scheme == STANDARD_WEBHOOKS:
            return self._check_standard_webhooks(request, body, hmac_key(secret.value()))
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

    def _check_standard_webhooks(
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

    def _check_bearer(self, request: web.Request) -> Refusal | None:
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

    async def _hand_off(self, events: list[CloudEvent]) -> web.Response:
        """202 once Temporal accepted every event's start, else 503 (nothing claimed)."""
        for i, event in enumerate(events):
            self._check_size(event, i)
        assert self.handoff is not None
        handoff = self.handoff

        async def one(event: CloudEvent) -> Outcome:
            async with self._semaphore:
                return await self.metrics.submit(handoff, event)

        results = await asyncio.gather(*(one(e) for e in events), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            unavailable = [f for f in failures if isinstance(f, TemporalUnavailable)]
            if len(unavailable) < len(failures):
                raise next(f for f in failures if not isinstance(f, TemporalUnavailable))
            if self.health is not None:
                self.health.forget()
            log.warning("Temporal did not accept %d event(s): %s", len(failures), failures[0])
            raise self._unavailable(
                f"Temporal did not accept {len(failures)} of {len(events)} event(s); "
                "retry: the ones it did accept are recognised as duplicates"
            )
        accepted = []
        for event, outcome in zip(events, results, strict=True):
            workflow_id = event_workflow_id(event.source, event.id, self.settings.namespace)
            log.debug("event %s from %s: %s (%s)", event.id, event.source, outcome, workflow_id)
            accepted.append(
                {
                    "id": event.id,
                    "source": event.source,
                    "type": event.type,
                    "workflowId": workflow_id,
                    "outcome": outcome,
                }
            )
        return web.json_response({"accepted": len(accepted), "events": accepted}, status=202)

    def _unavailable(self, detail: str) -> Refusal:
        return Refusal(
            503,
            "temporal-unavailable",
            detail,
            {"Retry-After": str(self.settings.retry_after)},
        )

    def _check_size(self, event: CloudEvent, index: int) -> None:
        try:
            size = len(json.dumps(event.as_data(), ensure_ascii=False).encode())
        except UnicodeEncodeError:
            raise Refusal(
                400, "invalid-text", f"event {index} holds text that is not valid Unicode"
            ) from None
        if size > PAYLOAD_LIMIT_BYTES:
            raise Refusal(
                413,
                "event-too-large",
                f"event {index} is {size} bytes, over Temporal's payload limit of "
                f"{PAYLOAD_LIMIT_BYTES} bytes",
            )

    # -- POST /events --

    async def _events(self, request: web.Request) -> web.Response:
        accepted = await self._accept(request)
        if accepted.auth_error is not None:
            raise accepted.auth_error
        return await self._hand_off(self._decode(request, accepted.body, generic=True))

    def _decode(self, request: web.Request, body: bytes, generic: bool) -> list[CloudEvent]:
        """The events of a request, by content mode: structured, batch, binary, or JSON."""
        mime = request.content_type
        try:
            if mime == "application/cloudevents+json":
                return [cloudevent(parse_json(body))]
            if mime == "application/cloudevents-batch+json":
                batch = parse_json(body)
                if not isinstance(batch, list):
                    raise Refusal(
                        400, "not-a-batch", "a CloudEvents batch must be a JSON array of events"
                    )
                return [cloudevent(item, f"[{i}]") for i, item in enumerate(batch)]
            if generic and "ce-specversion" in request.headers:
                return [self._binary(request, body)]
            if "Content-Type" not in request.headers:
                raise Refusal(
                    415,
                    "unsupported-media-type",
                    "the request has no Content-Type; send application/json, "
                    "application/cloudevents+json or application/cloudevents-batch+json",
                )
            if _is_json(mime):
                value = parse_json(body)
                if generic:
                    return parse_events(value, delivery_id=uuid.uuid4().hex)
                return eventgrid_events(value)
        except (EventFormatError, ValidationError) as err:
            raise _bad_event(err) from None
        kinds = "application/json, application/cloudevents+json, application/cloudevents-batch+json"
        if generic:
            kinds += " or a binary-mode CloudEvent (ce-* headers)"
        raise Refusal(
            415, "unsupported-media-type", f"Content-Type {mime} is not accepted; send {kinds}"
        )

    def _binary(self, request: web.Request, body: bytes) -> CloudEvent:
        """A binary-mode CloudEvent: attributes in `ce-*` headers, the body is the data."""
        attributes: dict[str, Any] = {}
        for name, value in request.headers.items():
            lower = name.lower()
            if not lower.startswith("ce-"):
                continue
            attribute = lower[3:]
            if not _CE_ATTRIBUTE.match(attribute) or attribute in ("data", "datacontenttype"):
                raise Refusal(
                    400,
                    "invalid-attribute",
                    f"{name}: not a CloudEvents attribute name (lowercase letters and digits)",
                )
            attributes[attribute] = urllib.parse.unquote(value)
        for required in ("id", "source", "type"):
            if not attributes.get(required):
                reason = "missing-type" if required == "type" else "invalid-event"
                raise Refusal(400, reason, f"ce-{required}: missing (binary-mode CloudEvent)")
        if attributes["specversion"] != "1.0":
            raise Refusal(
                400,
                "invalid-event",
                f"ce-specversion: {attributes['specversion']!r} is not supported; send 1.0",
            )
        content_type = request.headers.get("Content-Type")
        mime = request.content_type
        if content_type:
            attributes["datacontenttype"] = content_type
        if not body:
            pass
        elif _is_json(mime):
            attributes["data"] = parse_json(body, "the event's data")
        elif mime.startswith("text/") or mime in ("application/xml", "application/yaml"):
            try:
                attributes["data"] = body.decode(request.charset or "utf-8")
            except (UnicodeDecodeError, LookupError) as err:
                raise Refusal(400, "invalid-text", f"the body is not valid text: {err}") from None
        else:
            attributes["data_base64"] = base64.b64encode(body).decode()
        return cloudevent(attributes)

    # -- OPTIONS: CloudEvents webhook abuse protection --

    async def _abuse_protection(self, request: web.Request) -> web.Response:
        headers = {"Allow": "POST, OPTIONS"}
        origin = request.headers.get("WebHook-Request-Origin")
        if origin:
            headers["WebHook-Allowed-Origin"] = origin
            rate = self.settings.rate_limit
            # The spec counts requests per minute, as a whole number.
            headers["WebHook-Allowed-Rate"] = str(max(1, int(rate * 60))) if rate else "*"
        return web.Response(status=200, headers=headers)

    # -- SharePoint --

    async def _sharepoint(self, request: web.Request) -> web.Response:
        token = request.query.get("validationToken")
        if token is not None:
            # The subscription handshake: echo the token, as text, within five seconds.
            return web.Response(
                text=token, content_type="text/plain", headers={"X-Content-Type-Options": "nosniff"}
            )
        self._rate_limit()
        body = await self._read_body(request)
        problem = self._check_signature(request, body) or self._claim(request)
        if problem is not None:
            raise problem
        client_state: str | None = None
        if self._check_bearer(request) is not None:
            # SharePoint cannot send headers: the subscription's clientState, carried in
            # every notification, stands for the bearer token.
            assert self.settings.bearer_token is not None
            client_state = self.settings.bearer_token.value().decode("utf-8", "replace")
        if not _is_json(request.content_type):
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
            raise _bad_event(err) from None
        return await self._hand_off(events)

    # -- Azure Event Grid --

    async def _eventgrid(self, request: web.Request) -> web.Response:
        accepted = await self._accept(request)
        code = _validation_code(request, accepted.body)
        if code is not None:
            # The subscription handshake starts nothing, so it needs no credentials.
            return web.json_response({"validationResponse": code})
        if accepted.auth_error is not None:
            raise accepted.auth_error
        return await self._hand_off(self._decode(request, accepted.body, generic=False))

    # -- runs --

    async def _run_control(self, request: web.Request) -> _Accepted:
        """The gate in front of `/runs`: enabled, then the usual limits and credentials
        (which the settings guarantee exist when it is enabled)."""
        if not self.settings.run_control:
            raise Refusal(
                404,
                "run-control-disabled",
                "the run-control API is off on this listener (spec.webhook.runControl.enabled)",
            )
        accepted = await self._accept(request)
        if accepted.auth_error is not None:
            raise accepted.auth_error
        return accepted

    async def _own_run(self, workflow_id: str) -> WorkflowExecutionDescription:
        """The run, if it belongs to the Listener's namespace.

        A run of another namespace and a run that does not exist get the very same 403:
        a different answer for either would tell a caller which ids exist elsewhere.
        """
        namespace = self.settings.namespace
        forbidden = Refusal(
            403,
            "forbidden-run",
            f"no run {workflow_id!r} of namespace {namespace!r} is reachable from this listener",
        )
        try:
            described = await self.client.get_workflow_handle(workflow_id).describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                raise forbidden from None
            raise self._rpc_problem(err, workflow_id) from None
        except RuntimeError as err:
            raise self._unavailable(f"Temporal is not reachable: {err}") from None
        if namespace is None or described.typed_search_attributes.get(SA_NAMESPACE) != namespace:
            raise forbidden
        return described

    async def _signal(self, request: web.Request) -> web.Response:
        accepted = await self._run_control(request)
        workflow_id = request.match_info["workflowId"]
        name = request.match_info["name"]
        payload: Any = None
        if accepted.body.strip():
            if not _is_json(request.content_type):
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
        described = await self._own_run(workflow_id)
        # Bound to the run that was checked: a later run reusing the id is not signalled.
        handle = self.client.get_workflow_handle(workflow_id, run_id=described.run_id)
        try:
            await handle.signal(name, payload)
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                raise Refusal(
                    409, "run-closed", f"run {workflow_id!r} has closed: it takes no signals"
                ) from None
            raise self._rpc_problem(err, workflow_id) from None
        except RuntimeError as err:
            raise self._unavailable(f"Temporal is not reachable: {err}") from None
        return web.json_response({"workflowId": workflow_id, "signal": name}, status=202)

    async def _run_status(self, request: web.Request) -> web.Response:
        await self._run_control(request)
        workflow_id = request.match_info["workflowId"]
        described = await self._own_run(workflow_id)
        handle = self.client.get_workflow_handle(workflow_id, run_id=described.run_id)
        try:
            status: RunStatus | None = None
            if described.workflow_type == WORKFLOW_TYPE:
                status = await handle.query(
                    "status",
                    result_type=RunStatus,
                    rpc_timeout=timedelta(seconds=self.settings.query_timeout),
                )
        except WorkflowQueryFailedError as err:
            raise Refusal(409, "status-query-failed", f"the status query failed: {err}") from None
        except RPCError as err:
            raise self._rpc_problem(err, workflow_id) from None
        except RuntimeError as err:
            raise self._unavailable(f"Temporal is not reachable: {err}") from None
        return web.json_response(
            {
                "workflowId": workflow_id,
                "runId": described.run_id,
                "workflowType": described.workflow_type,
                "execution": described.status.name if described.status else None,
                "taskQueue": described.task_queue,
                "startTime": described.start_time.isoformat(),
                "closeTime": described.close_time.isoformat() if described.close_time else None,
                "status": status.model_dump(mode="json") if status else None,
            }
        )

    def _rpc_problem(self, err: RPCError, workflow_id: str) -> Refusal:
        if err.status == RPCStatusCode.NOT_FOUND:
            return Refusal(404, "no-such-run", f"no run {workflow_id!r}: {err.message}")
        if err.status == RPCStatusCode.INVALID_ARGUMENT:
            return Refusal(400, "invalid-argument", f"Temporal refused it: {err.message}")
        if err.status == RPCStatusCode.DEADLINE_EXCEEDED:
            return self._unavailable(
                f"no worker answered for run {workflow_id!r} in time; is its worker running?"
            )
        return self._unavailable(f"Temporal did not answer: {err.message}")

    # -- the rest --

    async def _healthz_alias(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _openapi(self, _: web.Request) -> web.Response:
        return web.json_response(openapi(self.settings))


# ---- OpenAPI ----------------------------------------------------------------------------


def _schemas(*models: type[BaseModel]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for model in models:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        found.update(schema.pop("$defs", {}))
        found[model.__name__] = schema
    return found


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


def _json_body(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def openapi(settings: WebhookSettings) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the listener's HTTP API."""
    ref = "#/components/schemas/"
    retry_after = {
        "Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}
    }
    refusals: dict[str, Any] = {
        "400": _problem("Bad input: malformed JSON, no type, an invalid attribute."),
        "401": _problem("A configured credential (signature, bearer token) is missing or wrong."),
        "413": _problem("The body is over maxBodyBytes, or an event over Temporal's limit."),
        "415": _problem("The Content-Type is not one this route accepts."),
        "429": {**_problem("Over the rate limit."), "headers": retry_after},
        "503": {
            **_problem("Temporal did not accept the events; nothing was claimed, retry."),
            "headers": retry_after,
        },
    }
    run_refusals = {
        "403": _problem(
            "Not a run of the Listener's namespace; a run that does not exist gets the same."
        ),
        "404": _problem("The run-control API is off on this listener."),
    }
    accepted = _json_body(
        {"$ref": ref + "Accepted"},
        "Temporal accepted the start of every event (started, or duplicate).",
    )
    event_body = {
        "required": True,
        "content": {
            "application/cloudevents+json": {"schema": {"$ref": ref + "CloudEvent"}},
            "application/cloudevents-batch+json": {
                "schema": {"type": "array", "items": {"$ref": ref + "CloudEvent"}}
            },
            "application/json": {
                "schema": {
                    "description": "A CloudEvent, the seed's plain JSON "
                    "({eventType, source, ...}), an S3, Event Grid or SharePoint body, "
                    "or an array of these.",
                    "oneOf": [{"type": "object"}, {"type": "array"}],
                }
            },
            "*/*": {"schema": {"description": "Binary mode: the event's data; ce-* headers."}},
        },
    }
    signature_headers: list[dict[str, Any]] = [
        {
            "name": WEBHOOK_ID,
            "in": "header",
            "required": False,
            "description": "Standard Webhooks: the message id (refused when seen again).",
            "schema": {"type": "string"},
        },
        {
            "name": WEBHOOK_TIMESTAMP,
            "in": "header",
            "required": False,
            "description": "Standard Webhooks: Unix seconds, within the tolerance.",
            "schema": {"type": "string", "pattern": "^[0-9]+$"},
        },
        {
            "name": WEBHOOK_SIGNATURE,
            "in": "header",
            "required": False,
            "description": "Standard Webhooks: v1,<base64 HMAC-SHA256 of id.timestamp.body>.",
            "schema": {"type": "string"},
        },
        {
            "name": "X-Hub-Signature-256",
            "in": "header",
            "required": False,
            "description": "GitHub scheme: sha256=<hex HMAC-SHA256 of the raw body>.",
            "schema": {"type": "string", "pattern": "^sha256=[0-9a-fA-F]{64}$"},
        },
    ]
    abuse = {
        "summary": "CloudEvents webhook abuse-protection handshake",
        "parameters": [
            {"name": "WebHook-Request-Origin", "in": "header", "schema": {"type": "string"}}
        ],
        "responses": {"200": {"description": "WebHook-Allowed-Origin echoes the origin."}},
    }
    workflow_id = {
        "name": "workflowId",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
    }
    events_post = {
        "summary": "Hand events to Temporal, one RootOrchestrator run each",
        "parameters": signature_headers,
        "requestBody": event_body,
        "responses": {"202": accepted, **refusals},
    }
    schemas = _schemas(CloudEvent, RunStatus)
    schemas["Problem"] = {
        "type": "object",
        "required": ["status", "reason", "detail"],
        "properties": {
            "status": {"type": "integer"},
            "reason": {"type": "string", "description": "A slug, also the metrics label."},
            "detail": {"type": "string"},
        },
    }
    schemas["Accepted"] = {
        "type": "object",
        "required": ["accepted", "events"],
        "properties": {
            "accepted": {"type": "integer"},
            "events": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id", "source", "type", "workflowId", "outcome"],
                    "properties": {
                        "id": {"type": "string"},
                        "source": {"type": "string"},
                        "type": {"type": "string"},
                        "workflowId": {"type": "string"},
                        "outcome": {"enum": ["started", "duplicate"]},
                    },
                },
            },
        },
    }
    schemas["Run"] = {
        "type": "object",
        "properties": {
            "workflowId": {"type": "string"},
            "runId": {"type": "string"},
            "workflowType": {"type": "string"},
            "execution": {"type": ["string", "null"]},
            "taskQueue": {"type": "string"},
            "startTime": {"type": "string", "format": "date-time"},
            "closeTime": {"type": ["string", "null"], "format": "date-time"},
            "status": {
                "description": "The flow run's status query (null for other workflow types).",
                "oneOf": [{"$ref": ref + "RunStatus"}, {"type": "null"}],
            },
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Temporal Flow webhook listener",
            "version": "v1alpha1",
            "description": "CloudEvents in, one RootOrchestrator run per event.",
        },
        "paths": {
            settings.path: {"post": events_post, "options": abuse},
            SHAREPOINT_ROUTE: {
                "post": {
                    "summary": "SharePoint webhook notifications and their validation",
                    "parameters": [
                        {
                            "name": "validationToken",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string"},
                        }
                    ],
                    "requestBody": _json_body({"type": "object"}, "{value: [notification]}"),
                    "responses": {
                        "200": {
                            "description": "The validation token, echoed.",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        },
                        "202": accepted,
                        **refusals,
                    },
                }
            },
            EVENTGRID_ROUTE: {
                "post": {
                    "summary": "Azure Event Grid deliveries (either schema) and validation",
                    "requestBody": event_body,
                    "responses": {
                        "200": _json_body(
                            {
                                "type": "object",
                                "properties": {"validationResponse": {"type": "string"}},
                            },
                            "The subscription validation handshake's answer.",
                        ),
                        "202": accepted,
                        **refusals,
                    },
                },
                "options": abuse,
            },
            SIGNAL_ROUTE: {
                "post": {
                    "summary": "Send a signal (a JSON argument) to a run",
                    "parameters": [
                        workflow_id,
                        {"name": "name", "in": "path", "required": True, "schema": {}},
                    ],
                    "requestBody": _json_body({}, "The signal's argument (any JSON)."),
                    "security": [{"bearer": []}],
                    "responses": {
                        "202": _json_body({"type": "object"}, "Temporal took the signal."),
                        **run_refusals,
                        "409": _problem("The run has closed."),
                        **refusals,
                    },
                }
            },
            RUN_ROUTE: {
                "get": {
                    "summary": "A run's execution state and, for flow runs, its status query",
                    "parameters": [workflow_id],
                    "security": [{"bearer": []}],
                    "responses": {
                        "200": _json_body({"$ref": ref + "Run"}, "The run."),
                        **run_refusals,
                        "409": _problem("The status query failed."),
                        **refusals,
                    },
                }
            },
            "/healthz": {"get": {"responses": {"200": {"description": "Alive."}}}},
            "/readyz": {
                "get": {
                    "responses": {
                        "200": {"description": "Temporal is reachable."},
                        "503": _problem("Temporal is not reachable."),
                    }
                }
            },
            "/metrics": {
                "get": {
                    "responses": {
                        "200": {
                            "description": "Prometheus text format.",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    }
                }
            },
            "/openapi.json": {"get": {"responses": {"200": {"description": "This document."}}}},
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


# ---- the command line -------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    env = "TFLOW_LISTENER_"
    add_flag(parser, "--host", env + "HOST", default="0.0.0.0", help="address to listen on")
    add_flag(parser, "--port", env + "PORT", type=int, default=8080, help="port to listen on")
    add_flag(parser, "--path", env + "PATH", default="/events", help="path events are POSTed to")
    add_flag(
        parser,
        "--hmac-secret-file",
        env + "HMAC_SECRET_FILE",
        help="file holding the HMAC-SHA256 secret requests are signed with",
    )
    add_flag(
        parser,
        "--hmac-scheme",
        env + "HMAC_SCHEME",
        default=STANDARD_WEBHOOKS,
        choices=HMAC_SCHEMES,
        help="how requests are signed: standard-webhooks (webhook-id, webhook-timestamp, "
        "webhook-signature; replays refused) or github (X-Hub-Signature-256 over the body)",
    )
    add_flag(
        parser,
        "--hmac-tolerance-seconds",
        env + "HMAC_TOLERANCE_SECONDS",
        type=float,
        default=300.0,
        help="how far a Standard Webhooks timestamp may be from this clock, either way",
    )
    add_flag(
        parser,
        "--replay-cache-size",
        env + "REPLAY_CACHE_SIZE",
        type=int,
        default=100_000,
        help="webhook-ids remembered per replica to refuse replays within the tolerance",
    )
    add_flag(
        parser,
        "--bearer-token-file",
        env + "BEARER_TOKEN_FILE",
        help="file holding the token requests send as Authorization: Bearer",
    )
    add_flag(
        parser,
        "--max-body-bytes",
        env + "MAX_BODY_BYTES",
        type=int,
        default=1048576,
        help="largest request body accepted",
    )
    add_flag(
        parser,
        "--rate-limit",
        env + "RATE_LIMIT",
        type=float,
        help="requests per second accepted before 429 (unlimited when unset)",
    )
    add_flag(
        parser,
        "--run-control",
        env + "RUN_CONTROL",
        type=_flag_bool,
        nargs="?",
        const=True,
        default=False,
        help="serve /runs/... (signal a run, read its status) for runs of --kube-namespace; "
        "needs --hmac-secret-file or --bearer-token-file",
    )
    add_flag(
        parser,
        "--retry-after",
        env + "RETRY_AFTER",
        type=int,
        default=5,
        help="seconds a sender is told to wait when Temporal is unavailable",
    )


def _flag_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not a boolean (true or false)")


def settings_from(args: argparse.Namespace) -> WebhookSettings:
    def secret(path: str | None) -> Secret | None:
        return Secret.from_file(path) if path else None

    if args.max_body_bytes < 1:
        raise ValueError("--max-body-bytes must be at least 1")
    if args.rate_limit is not None and args.rate_limit <= 0:
        raise ValueError("--rate-limit must be positive")
    if args.hmac_tolerance_seconds <= 0:
        raise ValueError("--hmac-tolerance-seconds must be positive")
    if args.replay_cache_size < 1:
        raise ValueError("--replay-cache-size must be at least 1")
    hmac_secret = secret(args.hmac_secret_file)
    if hmac_secret is not None:
        hmac_key(hmac_secret.value())  # a malformed whsec_ secret fails at start, not per request
    return WebhookSettings(
        path=args.path,
        hmac_secret=hmac_secret,
        hmac_scheme=args.hmac_scheme,
        hmac_tolerance=args.hmac_tolerance_seconds,
        replay_cache_size=args.replay_cache_size,
        bearer_token=secret(args.bearer_token_file),
        max_body_bytes=args.max_body_bytes,
        rate_limit=args.rate_limit,
        retry_after=args.retry_after,
        namespace=args.kube_namespace,
        share_with=tuple(args.share_with),
        run_control=bool(args.run_control),
    )


async def run(args: argparse.Namespace) -> None:
    settings = settings_from(args)
    client = await connect_temporal(args)
    listener = WebhookListener(client, settings, task_queue=args.task_queue)
    runner = web.AppRunner(listener.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port)
    await site.start()
    auth = [
        name
        for name, on in (
            (f"hmac ({settings.hmac_scheme})", settings.hmac_secret),
            ("bearer", settings.bearer_token),
        )
        if on
    ]
    log.info(
        "webhook listener on %s:%s%s (auth: %s; run control: %s) -> %s/%s, task queue %s",
        args.host,
        args.port,
        settings.path,
        ", ".join(auth) or "none",
        f"namespace {settings.namespace}" if settings.run_control else "off",
        args.address,
        args.namespace,
        args.task_queue,
    )
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
