"""The operator's settings, read once from the environment.

Every knob has a default that works in a cluster where the operator runs next to a
Temporal frontend reachable as ``temporal-frontend:7233``; the tests and the dev stack
point the same variables at loopback servers.

======================================  =====================================================
Variable                                Meaning
======================================  =====================================================
``TEMPORAL_ADDRESS``                    Temporal frontend the operator talks to (schedules,
                                        run statistics, search attributes).
``TEMPORAL_NAMESPACE``                  The shared Temporal namespace: of every run whose
                                        Kubernetes namespace is not mapped to its own.
``TFLOW_TEMPORAL_NAMESPACES``           JSON: Kubernetes namespace -> its Temporal
                                        namespace, or a list of them, the first its home
                                        (see ``tflow_workers.temporal_namespaces``).
``TFLOW_WORKER_TEMPORAL_ADDRESS``       Frontend address the worker pods and KEDA's
                                        ``temporal`` trigger use; ``TEMPORAL_ADDRESS`` when
                                        unset (they differ when the operator runs outside
                                        the cluster).
``TFLOW_SYSTEM_NAMESPACE``              Where the cluster-wide routing table and published
                                        definitions live; the operator's own namespace by
                                        default.
``TFLOW_WORKER_IMAGE``                  Worker image when a definition sets none.
``TFLOW_LISTENER_IMAGE``                Listener image when a Listener sets none.
``TFLOW_WORKER_FUNCTIONS``              ``TFLOW_FUNCTIONS`` given to every worker (custom
                                        functions, ``name=module:callable,...``).
``TFLOW_WORKER_SERVICE_ACCOUNT``        Service account of the worker pods (none: default).
``TFLOW_TEMPORAL_CLIENT_SECRET``        A Secret of ``TEMPORAL_*`` client settings (API key,
                                        TLS) that worker and listener Deployments load with
                                        ``envFrom`` from their own namespace (optional).
``TFLOW_ROUTER_TASK_QUEUE``             The root orchestrator's task queue; no definition
                                        may use it.
``TFLOW_RESYNC_SECONDS``                Period of the shared resync loop (default 30).
``TFLOW_STATS_SECONDS``                 How often a definition's lastRun/nextRun/running are
                                        refreshed from Temporal (default: the resync period).
``TFLOW_STATS_RATE``                    Most run-statistics refreshes per second, all
                                        definitions together (default 20), so a thousand
                                        definitions do not flood Temporal's visibility store.
``TFLOW_ROUTING_DEBOUNCE_SECONDS``      Quiet time before a routing table recompile (0.3).
``TFLOW_ROUTING_MAX_DELAY_SECONDS``     Longest a pending recompile waits under a steady
                                        stream of changes (2).
``TFLOW_HEALTH_PORT``                   Port of kopf's liveness endpoint (0: none).
``TFLOW_METRICS_PORT``                  Port of the Prometheus metrics endpoint (0: none).
``TFLOW_LOG_FORMAT``                    The operator's log format (auto, text, json), also
                                        given to the worker and listener pods it makes.
``TFLOW_WORKER_POLLING_SECONDS``        How often KEDA reads a worker queue's backlog (10).
``TFLOW_WORKER_COOLDOWN_SECONDS``       How long a worker queue must be idle before its
                                        Deployment goes back to zero (300).
======================================  =====================================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from tflow_workers.cloudevents import DEFAULT_ROUTER_TASK_QUEUE
from tflow_workers.logs import LOG_FORMATS
from tflow_workers.temporal_namespaces import TemporalNamespaceError, TemporalNamespaces

DEFAULT_SYSTEM_NAMESPACE: Final = "temporal-flow"
DEFAULT_WORKER_IMAGE: Final = "ghcr.io/temporal-flow/worker:0.1.0"
DEFAULT_LISTENER_IMAGE: Final = "ghcr.io/temporal-flow/listener:0.1.0"
SERVICE_ACCOUNT_NAMESPACE_FILE: Final = Path(
    "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
)


class ConfigError(ValueError):
    """An environment variable holds a value the operator cannot use."""


@dataclass(frozen=True)
class Config:
    temporal_address: str = "temporal-frontend:7233"
    temporal_namespace: str = "default"
    # Which Temporal namespace each Kubernetes namespace's runs live in (the shared one,
    # temporal_namespace, unless mapped).
    temporal_namespaces: TemporalNamespaces = field(default_factory=TemporalNamespaces)
    worker_temporal_address: str = "temporal-frontend:7233"
    system_namespace: str = DEFAULT_SYSTEM_NAMESPACE
    worker_image: str = DEFAULT_WORKER_IMAGE
    listener_image: str = DEFAULT_LISTENER_IMAGE
    worker_functions: str = ""
    worker_service_account: str = ""
    # A Secret of TEMPORAL_* client settings (API key, TLS) that every worker and listener
    # Deployment loads with envFrom, from its own namespace, when it exists there.
    temporal_client_secret: str = ""
    router_task_queue: str = DEFAULT_ROUTER_TASK_QUEUE
    resync_seconds: float = 30.0
    stats_seconds: float = 30.0
    stats_rate: float = 20.0
    routing_debounce_seconds: float = 0.3
    routing_max_delay_seconds: float = 2.0
    health_port: int = 0
    metrics_port: int = 0
    # Handed on to the worker and listener pods; empty: they pick their own (auto).
    log_format: str = ""
    worker_polling_seconds: int = 10
    worker_cooldown_seconds: int = 300

    def home_temporal_namespace(self, namespace: str) -> str:
        """Where a Kubernetes namespace's Listeners hand their events and its definitions
        run unless they pick another: its own Temporal namespace, else the shared one."""
        if self.temporal_namespaces.enabled:
            return self.temporal_namespaces.home(namespace)
        return self.temporal_namespace

    def temporal_client_env_from(self) -> list[dict[str, Any]]:
        """``envFrom`` for a worker or listener container: the Temporal client Secret
        (``TEMPORAL_API_KEY``, ``TEMPORAL_TLS_*``) of the workload's own namespace,
        optional, so a namespace without it connects in plain text as before."""
        if not self.temporal_client_secret:
            return []
        return [{"secretRef": {"name": self.temporal_client_secret, "optional": True}}]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        source = os.environ if env is None else env

        def get(name: str, default: str) -> str:
            value = source.get(name, "").strip()
            return value or default

        address = get("TEMPORAL_ADDRESS", cls.temporal_address)
        shared = get("TEMPORAL_NAMESPACE", cls.temporal_namespace)
        try:
            namespaces = TemporalNamespaces.parse(
                source.get("TFLOW_TEMPORAL_NAMESPACES", ""), shared
            )
        except TemporalNamespaceError as err:
            raise ConfigError(str(err)) from None
        resync = _positive(source, "TFLOW_RESYNC_SECONDS", cls.resync_seconds)
        return cls(
            temporal_address=address,
            temporal_namespace=shared,
            temporal_namespaces=namespaces,
            worker_temporal_address=get("TFLOW_WORKER_TEMPORAL_ADDRESS", address),
            system_namespace=get("TFLOW_SYSTEM_NAMESPACE", _own_namespace(source)),
            worker_image=get("TFLOW_WORKER_IMAGE", cls.worker_image),
            listener_image=get("TFLOW_LISTENER_IMAGE", cls.listener_image),
            worker_functions=get("TFLOW_WORKER_FUNCTIONS", ""),
            worker_service_account=get("TFLOW_WORKER_SERVICE_ACCOUNT", ""),
            temporal_client_secret=get("TFLOW_TEMPORAL_CLIENT_SECRET", ""),
            router_task_queue=get("TFLOW_ROUTER_TASK_QUEUE", cls.router_task_queue),
            resync_seconds=resync,
            stats_seconds=_positive(source, "TFLOW_STATS_SECONDS", resync),
            stats_rate=_positive(source, "TFLOW_STATS_RATE", cls.stats_rate),
            routing_debounce_seconds=_positive(
                source, "TFLOW_ROUTING_DEBOUNCE_SECONDS", cls.routing_debounce_seconds
            ),
            routing_max_delay_seconds=_positive(
                source, "TFLOW_ROUTING_MAX_DELAY_SECONDS", cls.routing_max_delay_seconds
            ),
            health_port=int(_number(source, "TFLOW_HEALTH_PORT", 0)),
            metrics_port=int(_number(source, "TFLOW_METRICS_PORT", 0)),
            log_format=_log_format(source),
            worker_polling_seconds=max(
                1, int(_number(source, "TFLOW_WORKER_POLLING_SECONDS", cls.worker_polling_seconds))
            ),
            worker_cooldown_seconds=int(
                _number(source, "TFLOW_WORKER_COOLDOWN_SECONDS", cls.worker_cooldown_seconds)
            ),
        )


def _own_namespace(env: Mapping[str, str]) -> str:
    """The namespace the operator runs in: POD_NAMESPACE (downward API), else the
    service account's namespace file, else ``temporal-flow``."""
    if env.get("POD_NAMESPACE"):
        return env["POD_NAMESPACE"]
    try:
        return SERVICE_ACCOUNT_NAMESPACE_FILE.read_text().strip() or DEFAULT_SYSTEM_NAMESPACE
    except OSError:
        return DEFAULT_SYSTEM_NAMESPACE


def _log_format(env: Mapping[str, str]) -> str:
    value = env.get("TFLOW_LOG_FORMAT", "").strip()
    if value and value not in LOG_FORMATS:
        raise ConfigError(f"TFLOW_LOG_FORMAT={value!r}: expected one of {', '.join(LOG_FORMATS)}")
    return value


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None


def _positive(env: Mapping[str, str], name: str, default: float) -> float:
    value = _number(env, name, default)
    if value <= 0:
        raise ConfigError(f"{name} must be greater than 0, not {value}")
    return value
