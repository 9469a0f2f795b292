"""Which Temporal namespace each Kubernetes namespace's runs live in.

By default every run shares one Temporal namespace (``TEMPORAL_NAMESPACE``).
``TFLOW_TEMPORAL_NAMESPACES`` (JSON, from the chart's ``temporal.namespaces``) gives a
Kubernetes namespace Temporal namespaces of its own::

    {"team-a": "team-a", "team-b": ["team-b", "team-b-batch"]}

The first one is the Kubernetes namespace's home: its Listeners hand their events there
and its WorkflowDefinitions run there. A definition may pick another of its list with
``spec.temporalNamespace``; nothing else may. A Kubernetes namespace that is not in the
map keeps the shared namespace. Every process that needs the map (operator, root
orchestrator, workers and listeners) reads it with `TemporalNamespaces.from_env`; the
operator hands workers and listeners only their own namespace's entry.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

ENV: Final = "TFLOW_TEMPORAL_NAMESPACES"
# Temporal's own rule for a namespace name is looser; this one also keeps a name usable
# in a label, an env value and a visibility query without quoting.
TEMPORAL_NAMESPACE_PATTERN: Final = r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,253}[A-Za-z0-9])?$"
_KUBE_NAMESPACE: Final = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_TEMPORAL_NAMESPACE: Final = re.compile(TEMPORAL_NAMESPACE_PATTERN)


class TemporalNamespaceError(ValueError):
    """A mapping that cannot be used, or a Temporal namespace a Kubernetes namespace may
    not use. The message says which and why."""


class TemporalNamespaces(BaseModel):
    """The shared Temporal namespace and the Kubernetes namespaces mapped to their own."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    shared: str = "default"
    # Kubernetes namespace -> its Temporal namespaces, the home first.
    mapped: dict[str, tuple[str, ...]] = Field(default_factory=dict)

    @field_validator("shared")
    @classmethod
    def _shared_name(cls, value: str) -> str:
        _check_temporal_name(value, "the shared Temporal namespace")
        return value

    @field_validator("mapped", mode="before")
    @classmethod
    def _lists(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            raise ValueError("expected an object of Kubernetes namespace -> Temporal namespace")
        out: dict[str, tuple[str, ...]] = {}
        for kube, temporal in value.items():
            if not isinstance(kube, str) or not _KUBE_NAMESPACE.fullmatch(kube):
                raise ValueError(f"{kube!r} is not a Kubernetes namespace name")
            names = [temporal] if isinstance(temporal, str) else temporal
            if not isinstance(names, list | tuple) or not names:
                raise ValueError(f"{kube}: expected a Temporal namespace or a non-empty list")
            for name in names:
                _check_temporal_name(name, kube)
            if len(set(names)) != len(names):
                raise ValueError(f"{kube}: a Temporal namespace is listed twice")
            out[kube] = tuple(names)
        return out

    @classmethod
    def parse(cls, text: str, shared: str = "default") -> TemporalNamespaces:
        """From the JSON of ``TFLOW_TEMPORAL_NAMESPACES`` (empty: nothing mapped)."""
        try:
            raw = json.loads(text) if text.strip() else {}
        except json.JSONDecodeError as err:
            raise TemporalNamespaceError(f"{ENV} is not JSON: {err}") from None
        try:
            return cls(shared=shared, mapped=raw)
        except ValidationError as err:
            first = err.errors()[0]
            message = first["msg"].removeprefix("Value error, ")
            raise TemporalNamespaceError(f"{ENV}: {message}") from None

    @classmethod
    def from_env(
        cls, shared: str | None = None, env: Mapping[str, str] | None = None
    ) -> TemporalNamespaces:
        source = os.environ if env is None else env
        return cls.parse(
            source.get(ENV, ""), shared or source.get("TEMPORAL_NAMESPACE") or "default"
        )

    @property
    def enabled(self) -> bool:
        """Whether any Kubernetes namespace has Temporal namespaces of its own."""
        return bool(self.mapped)

    def of(self, kube_namespace: str) -> tuple[str, ...]:
        """The Temporal namespaces a Kubernetes namespace may use, its home first."""
        return self.mapped.get(kube_namespace) or (self.shared,)

    def clients(self, client: Client, kube_namespace: str | None) -> list[Client]:
        """Clients (over ``client``'s connection) for every Temporal namespace
        ``kube_namespace`` may use, since its runs may live in several; ``client`` alone
        when none are mapped or there is no Kubernetes namespace."""
        if kube_namespace is None or not self.enabled:
            return [client]
        return [client_for(client, ns) for ns in self.of(kube_namespace)]

    def home(self, kube_namespace: str) -> str:
        return self.of(kube_namespace)[0]

    def resolve(self, kube_namespace: str, requested: str | None = None) -> str:
        """Where a definition of ``kube_namespace`` runs: ``requested`` (its
        ``spec.temporalNamespace``) if the namespace may use it, else its home."""
        allowed = self.of(kube_namespace)
        if not requested:
            return allowed[0]
        if requested not in allowed:
            raise TemporalNamespaceError(
                f"spec.temporalNamespace: Temporal namespace {requested!r} is not one that "
                f"namespace {kube_namespace!r} may use ({', '.join(allowed)}; set by the "
                "operator's temporal.namespaces)"
            )
        return requested

    def all(self) -> tuple[str, ...]:
        """Every Temporal namespace in use: the shared one, then the mapped ones."""
        seen = dict.fromkeys([self.shared, *(n for names in self.mapped.values() for n in names)])
        return tuple(seen)

    def only(self, kube_namespace: str) -> TemporalNamespaces:
        """The map as one Kubernetes namespace's pods get it: their own entry alone."""
        own = self.mapped.get(kube_namespace)
        return self.model_copy(update={"mapped": {kube_namespace: own} if own else {}})

    def to_env(self) -> str:
        """``TFLOW_TEMPORAL_NAMESPACES``'s value (the shared one travels separately)."""
        return json.dumps({k: list(v) for k, v in sorted(self.mapped.items())}, sort_keys=True)


def _check_temporal_name(name: Any, where: str) -> None:
    if not isinstance(name, str) or not _TEMPORAL_NAMESPACE.fullmatch(name):
        raise ValueError(f"{where}: {name!r} is not a Temporal namespace name")


def client_for(client: Client, namespace: str) -> Client:
    """A client for another Temporal namespace over the same connection, with the same
    data converter (payload encryption) and interceptors; ``client`` itself when it
    already is in that namespace."""
    if client.namespace == namespace:
        return client
    config = client.config()
    config["namespace"] = namespace
    return Client(**config)


async def locate_run(client: Client, namespaces: Sequence[str], workflow_id: str) -> Client:
    """The client of the Temporal namespace, among ``client``'s own and ``namespaces``,
    that holds workflow ``workflow_id`` (a Kubernetes namespace may use several); else
    ``client``, so a caller answers a missing run, or an unreachable Temporal, exactly as
    it would with one namespace. Where the run is says nothing about whose it is: the
    caller still checks its ``TflowNamespace``."""
    ordered = [client.namespace, *(n for n in namespaces if n != client.namespace)]
    if len(ordered) == 1:
        return client
    for namespace in ordered:
        candidate = client_for(client, namespace)
        try:
            await candidate.get_workflow_handle(workflow_id).describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                continue
            return client
        except RuntimeError:  # not connected: the caller's own call reports it
            return client
        return candidate
    return client
