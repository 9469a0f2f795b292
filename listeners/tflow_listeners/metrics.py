"""What every listener shows its operators: Prometheus metrics, a liveness probe and a
readiness probe that says whether Temporal is reachable; the hand-off wrapper that feeds
the metrics and the ops server the queue listeners run.

Metrics (each with a `listener` label: webhook, sqs, servicebus):

- `tflow_listener_requests_total{route, method, status}`: HTTP requests answered (route
  is the route's template, so ids in paths do not multiply series);
- `tflow_listener_events_total{outcome}`: events handed to Temporal, by outcome:
  `started`, `duplicate` (a redelivery), `unroutable` (routing directly, nothing matched
  it), `unavailable` (Temporal did not accept it);
- `tflow_listener_rejections_total{reason}`: requests or messages refused, by reason
  (`bad-signature`, `too-large`, `rate-limited`, `malformed-json`, ...);
- `tflow_listener_handoff_seconds`: how long Temporal took to accept (or refuse) a start.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from aiohttp import web
from aiohttp_pydantic.oas.typing import r200, r503
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest
from temporalio.client import Client
from temporalio.service import RPCError

from tflow_listeners.handoff import Outcome
from tflow_listeners.openapi import declared
from tflow_listeners.problems import RefusalBody
from tflow_workers.cloudevents import CloudEvent
from tflow_workers.connection import TemporalUnavailable


class Submitter(Protocol):
    """What hands an event to Temporal (`HandOff`, or a stand-in in tests)."""

    async def submit(self, event: CloudEvent) -> Outcome: ...


_HANDOFF_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ListenerMetrics:
    """The metrics of one listener process, in a registry of its own."""

    def __init__(self, listener: str, registry: CollectorRegistry | None = None) -> None:
        self.listener = listener
        self.registry = registry if registry is not None else CollectorRegistry()
        self._requests = Counter(
            "tflow_listener_requests",
            "HTTP requests answered, by route template, method and status code.",
            ["listener", "route", "method", "status"],
            registry=self.registry,
        )
        self._events = Counter(
            "tflow_listener_events",
            "Events handed to Temporal, by outcome (started, duplicate, unroutable, unavailable).",
            ["listener", "outcome"],
            registry=self.registry,
        )
        self._rejections = Counter(
            "tflow_listener_rejections",
            "Requests or messages refused, by reason.",
            ["listener", "reason"],
            registry=self.registry,
        )
        self._handoff = Histogram(
            "tflow_listener_handoff_seconds",
            "Seconds Temporal took to accept or refuse the start of an event's run.",
            ["listener"],
            buckets=_HANDOFF_BUCKETS,
            registry=self.registry,
        )

    def request(self, route: str, method: str, status: int) -> None:
        self._requests.labels(self.listener, route, method, str(status)).inc()

    def event(self, outcome: str) -> None:
        self._events.labels(self.listener, outcome).inc()

    def rejected(self, reason: str) -> None:
        self._rejections.labels(self.listener, reason).inc()

    async def submit(self, handoff: Submitter, event: CloudEvent) -> Outcome:
        """`handoff.submit(event)`, timed and counted by outcome."""
        started = time.perf_counter()
        try:
            outcome = await handoff.submit(event)
        except TemporalUnavailable:
            self.event("unavailable")
            raise
        finally:
            self._handoff.labels(self.listener).observe(time.perf_counter() - started)
        self.event(outcome)
        return outcome

    def value(self, name: str, **labels: str) -> float:
        """A sample's current value (0 when it has none yet): for tests and debugging."""
        found = self.registry.get_sample_value(name, {"listener": self.listener, **labels})
        return found if found is not None else 0.0

    def render(self) -> bytes:
        return generate_latest(self.registry)


class TemporalHealth:
    """Whether Temporal answers its health check, asked at most once per `ttl` seconds so
    that probes cannot load the frontend. A failed hand-off forgets the cached answer."""

    def __init__(self, client: Client, ttl: float = 5.0, timeout: float = 2.0) -> None:
        self.client = client
        self.ttl = ttl
        self.timeout = timeout
        self._answer: bool | None = None
        self._asked_at = 0.0
        self._lock = asyncio.Lock()

    async def ready(self) -> bool:
        async with self._lock:
            now = time.monotonic()
            if self._answer is None or now - self._asked_at >= self.ttl:
                self._answer = await self._check()
                self._asked_at = time.monotonic()
            return self._answer

    def forget(self) -> None:
        self._answer = None

    async def _check(self) -> bool:
        try:
            return await self.client.service_client.check_health(
                timeout=timedelta(seconds=self.timeout)
            )
        except (RPCError, RuntimeError):  # RuntimeError: a lazy client could not connect
            return False


class RoutingReadiness(Protocol):
    """A hand-off that may not be able to route yet (`DirectHandOff` before its table is
    mounted): why not, or None."""

    def not_ready(self) -> str | None: ...


def ops_routes(
    metrics: ListenerMetrics, health: TemporalHealth, routing: RoutingReadiness | None = None
) -> list[web.RouteDef]:
    """`GET /healthz` (the process answers), `GET /readyz` (Temporal is reachable and,
    routing directly, the routing table is loaded: 200, or 503 with Retry-After) and
    `GET /metrics` (Prometheus text format)."""

    # Declared routes, so the API documents list them too (tflow_listeners.openapi).
    route = declared()

    @route
    async def healthz(request: web.Request) -> r200[None]:
        """The process answers.

        Tags: operations
        """
        return web.json_response({"status": "ok"})

    @route
    async def readyz(request: web.Request) -> r200[None] | r503[RefusalBody]:
        """Temporal is reachable and, for a listener routing directly, its routing table is
        loaded (503 with Retry-After when not).

        Tags: operations
        """
        retry = {"Retry-After": str(max(1, round(health.ttl)))}
        if not await health.ready():
            return web.json_response(
                {
                    "status": 503,
                    "reason": "temporal-unavailable",
                    "detail": "Temporal does not answer its health check",
                },
                status=503,
                headers=retry,
            )
        # Not Ready until it can route: a rollout keeps the old pods serving meanwhile, and
        # a new Listener is not Ready until its first pod can route.
        problem = routing.not_ready() if routing is not None else None
        if problem is not None:
            return web.json_response(
                {"status": 503, "reason": "no-routing-table", "detail": problem},
                status=503,
                headers=retry,
            )
        return web.json_response({"status": "ready", "temporal": "reachable"})

    @route
    async def metrics_page(request: web.Request) -> r200[str]:
        """Prometheus text format.

        Tags: operations
        """
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    return [
        web.get("/healthz", healthz, allow_head=True),
        web.get("/readyz", readyz, allow_head=True),
        web.get("/metrics", metrics_page, allow_head=True),
    ]


@dataclass
class MeteredHandOff:
    """A hand-off counted and timed in the listener metrics; a refusal makes the next
    readiness probe ask Temporal again."""

    handoff: Submitter
    metrics: ListenerMetrics
    health: TemporalHealth

    async def submit(self, event: CloudEvent) -> Outcome:
        try:
            return await self.metrics.submit(self.handoff, event)
        except TemporalUnavailable:
            self.health.forget()
            raise


async def serve_ops(
    port: int,
    metrics: ListenerMetrics,
    health: TemporalHealth,
    routing: RoutingReadiness | None = None,
) -> web.AppRunner:
    """/healthz, /readyz (Temporal reachable, the table loaded) and /metrics, as the
    webhook serves them."""
    app = web.Application()
    app.add_routes(ops_routes(metrics, health, routing))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", port).start()
    return runner
