"""The operator's Prometheus metrics and the ``/metrics`` endpoint that serves them
(``TFLOW_METRICS_PORT``; the chart's ``operator.metrics``).

- ``tflow_operator_reconciles_total{kind, outcome}``: reconciles of a WorkflowDefinition
  or Listener (by its change handlers or the resync loop); ``outcome`` is ``ok``,
  ``retry`` (a temporary error: retried with back-off) or ``error``;
- ``tflow_operator_reconcile_duration_seconds{kind}``: how long each took;
- ``tflow_operator_objects_not_ready{kind}``: objects whose ``Ready`` is not True
  (WorkflowDefinitions and Listeners as of the last resync pass, EventRoutes as of the
  last routing table compile);
- ``tflow_operator_routing_table_bytes`` and ``tflow_operator_routing_table_routes``:
  the stored size (gzip, every shard) and route count of the routing table;
- ``tflow_operator_routing_publishes_total{outcome}`` and
  ``tflow_operator_routing_publish_duration_seconds``: publishing passes (routing table,
  published definitions, route statuses), ``ok`` or ``error``, and their duration;
- ``tflow_operator_temporal_errors_total{operation}``: Temporal failures: ``connect``,
  ``health`` (the frontend's health probe), ``call`` (a call the handlers made).

Plus the client library's process metrics (CPU, memory, open files, GC). One registry per
process: kopf runs one operator per process.
"""

from __future__ import annotations

import base64
import functools
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Final, ParamSpec, TypeVar

import kopf
from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    gc_collector,
    generate_latest,
    platform_collector,
    process_collector,
)

KINDS: Final = ("WorkflowDefinition", "EventRoute", "Listener")
OUTCOMES: Final = ("ok", "retry", "error")
TEMPORAL_OPERATIONS: Final = ("connect", "health", "call")
_LATENCY_BUCKETS: Final = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

REGISTRY: Final = CollectorRegistry()
process_collector.ProcessCollector(registry=REGISTRY)
platform_collector.PlatformCollector(registry=REGISTRY)
gc_collector.GCCollector(registry=REGISTRY)

RECONCILES: Final = Counter(
    "tflow_operator_reconciles",
    "Reconciles of an object, by kind and outcome (ok, retry, error).",
    ["kind", "outcome"],
    registry=REGISTRY,
)
RECONCILE_SECONDS: Final = Histogram(
    "tflow_operator_reconcile_duration_seconds",
    "Seconds one reconcile of an object took, by kind.",
    ["kind"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
NOT_READY: Final = Gauge(
    "tflow_operator_objects_not_ready",
    "Objects whose Ready condition is not True, by kind.",
    ["kind"],
    registry=REGISTRY,
)
ROUTING_TABLE_BYTES: Final = Gauge(
    "tflow_operator_routing_table_bytes",
    "Stored size of the routing table (gzip, all its ConfigMaps), in bytes.",
    registry=REGISTRY,
)
ROUTING_TABLE_ROUTES: Final = Gauge(
    "tflow_operator_routing_table_routes",
    "Routes in the routing table.",
    registry=REGISTRY,
)
PUBLISHES: Final = Counter(
    "tflow_operator_routing_publishes",
    "Publishing passes (routing table, published definitions, route statuses), by outcome.",
    ["outcome"],
    registry=REGISTRY,
)
PUBLISH_SECONDS: Final = Histogram(
    "tflow_operator_routing_publish_duration_seconds",
    "Seconds one publishing pass took.",
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
TEMPORAL_ERRORS: Final = Counter(
    "tflow_operator_temporal_errors",
    "Temporal failures, by operation (connect, health, call).",
    ["operation"],
    registry=REGISTRY,
)

# Every series exists from the start at zero, so a rate() over the first failure works.
for _kind in KINDS:
    NOT_READY.labels(_kind)
    if _kind != "EventRoute":
        RECONCILE_SECONDS.labels(_kind)
        for _outcome in OUTCOMES:
            RECONCILES.labels(_kind, _outcome)
for _outcome in ("ok", "error"):
    PUBLISHES.labels(_outcome)
for _operation in TEMPORAL_OPERATIONS:
    TEMPORAL_ERRORS.labels(_operation)

P = ParamSpec("P")
R = TypeVar("R")


def outcome_of(error: BaseException | None) -> str:
    if error is None:
        return "ok"
    return "retry" if isinstance(error, kopf.TemporaryError) else "error"


def reconciler(kind: str) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Count and time every call of a reconcile function of ``kind``."""

    def wrap(function: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @functools.wraps(function)
        async def timed(*args: P.args, **kwargs: P.kwargs) -> R:
            started = time.perf_counter()
            error: BaseException | None = None
            try:
                return await function(*args, **kwargs)
            except Exception as err:
                error = err
                raise
            finally:
                RECONCILE_SECONDS.labels(kind).observe(time.perf_counter() - started)
                RECONCILES.labels(kind, outcome_of(error)).inc()

        return timed

    return wrap


def is_ready(body: Mapping[str, Any]) -> bool:
    for condition in (body.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True")
    return False


def set_not_ready(kind: str, count: int) -> None:
    NOT_READY.labels(kind).set(count)


def configmaps_bytes(configmaps: Iterable[Mapping[str, Any]]) -> int:
    """What the ConfigMaps hold, decoded: binaryData is base64 in the object."""
    size = 0
    for cm in configmaps:
        size += sum(len(base64.b64decode(v)) for v in (cm.get("binaryData") or {}).values())
        size += sum(len(str(v).encode()) for v in (cm.get("data") or {}).values())
    return size


def render() -> bytes:
    return generate_latest(REGISTRY)


def value(name: str, **labels: str) -> float:
    """A sample's current value (0 when it has none yet): for tests and debugging."""
    found = REGISTRY.get_sample_value(name, labels)
    return found if found is not None else 0.0


async def serve(port: int, host: str = "0.0.0.0") -> web.AppRunner:
    """``GET /metrics`` in Prometheus' text format, on aiohttp as the listeners' ops
    server and the workers' health endpoint."""

    async def metrics_page(_: web.Request) -> web.Response:
        return web.Response(body=render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.add_routes([web.get("/metrics", metrics_page, allow_head=True)])
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
