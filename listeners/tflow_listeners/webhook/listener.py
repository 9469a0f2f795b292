"""The webhook listener itself: what every event route does first (rate limit, size limit,
credentials), the hand-off of a request's events to Temporal (202 only once Temporal
accepted every start, else 503 with Retry-After and nothing claimed), and the aiohttp
application its routes (`tflow_listeners.webhook.routes`) are mounted on."""

from __future__ import annotations

import asyncio
import json
import logging
import math
from dataclasses import dataclass, field

from aiohttp import web
from temporalio.client import Client

from tflow_listeners.handoff import HandOff, Outcome
from tflow_listeners.metrics import ListenerMetrics, Submitter, TemporalHealth
from tflow_listeners.problems import Refusal, problem_middleware
from tflow_listeners.webhook.auth import CLAIM, Authenticator
from tflow_listeners.webhook.limits import ReplayCache, TokenBucket
from tflow_listeners.webhook.settings import LISTENER, WebhookSettings
from tflow_workers.cloudevents import DEFAULT_ROUTER_TASK_QUEUE, CloudEvent, event_workflow_id
from tflow_workers.connection import TemporalUnavailable
from tflow_workers.engine.errors import PAYLOAD_LIMIT_BYTES

log = logging.getLogger("tflow_listeners.webhook")

_HANDOFF_CONCURRENCY = 16


@dataclass
class Accepted:
    """A request past the limits: its body, and why its credentials fail (if they do)."""

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
        self.auth = Authenticator(self.settings, self.replays)
        self._semaphore = asyncio.Semaphore(_HANDOFF_CONCURRENCY)

    def app(self) -> web.Application:
        from tflow_listeners.webhook.routes import add_routes

        app = web.Application(
            middlewares=[problem_middleware(self.metrics.rejected, self._answered)]
        )
        app[LISTENER_KEY] = self
        add_routes(app, self)
        return app

    def _answered(self, request: web.Request, response: web.StreamResponse) -> None:
        claim = request.get(CLAIM)
        if claim is not None and response.status >= 500:
            self.replays.release(claim)
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        self.metrics.request(route, request.method, response.status)

    # -- what every event route does first --

    async def accept(self, request: web.Request) -> Accepted:
        """Rate limit, size limit, then authentication; the body, read."""
        self.rate_limit()
        body = await self.read_body(request)
        return Accepted(body, self.auth.check(request, body))

    def rate_limit(self) -> None:
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

    async def read_body(self, request: web.Request) -> bytes:
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

    # -- hand-off --

    async def hand_off(self, events: list[CloudEvent]) -> web.Response:
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
            raise self.unavailable(
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

    def unavailable(self, detail: str) -> Refusal:
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


LISTENER_KEY = web.AppKey("tflow.webhook-listener", WebhookListener)
