"""Leader election on a ``coordination.k8s.io`` Lease, so several operator replicas can
run with exactly one reconciling.

A replica that is not the leader waits before kopf starts (no watch, no handler, no
resync loop, no publisher): only its liveness endpoint answers. It takes the Lease when
the holder has not renewed it for ``leaseDurationSeconds``, judged by its own clock from
the moment it last *saw* the record change (as client-go does), so clock skew between
nodes does not matter. The leader renews every ``retry_period``; one that could not renew
for ``renew_deadline`` (shorter than the lease) stops at once, before anyone else may
take over. A leader that shuts down cleanly hands the Lease back, so a rolling update
does not wait a lease period.

Writes carry the ``resourceVersion`` they were computed from, so two replicas racing for
an expired Lease cannot both win: the apiserver refuses the second with 409.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
import socket
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from tflow_operator.kube import KubeClient, KubeError

log = logging.getLogger(__name__)

API_VERSION: Final = "coordination.k8s.io/v1"
# The only Lease the operator's Role lets it read and write (tflow_operator.rbac).
LEASE_NAME: Final = "temporal-flow-operator"


class LeadershipLost(RuntimeError):
    """The leader could not renew its Lease within the renew deadline."""


@dataclass(frozen=True)
class LeaseTiming:
    """``duration``: how long a Lease not renewed stays the holder's. ``renew_deadline``:
    how long a leader keeps going without a successful renewal. ``retry_period``: how
    often the leader renews and a standby looks."""

    duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.retry_period < self.renew_deadline < self.duration:
            raise ValueError("need 0 < retry_period < renew_deadline < duration")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> LeaseTiming:
        def seconds(name: str, default: float) -> float:
            raw = env.get(name, "").strip()
            return float(raw) if raw else default

        return cls(
            duration=seconds("TFLOW_LEASE_DURATION_SECONDS", cls.duration),
            renew_deadline=seconds("TFLOW_LEASE_RENEW_DEADLINE_SECONDS", cls.renew_deadline),
            retry_period=seconds("TFLOW_LEASE_RETRY_SECONDS", cls.retry_period),
        )


def own_identity(env: Mapping[str, str]) -> str:
    """The pod's name (``POD_NAME``, from the downward API), else host and a random part:
    two processes on one host must not share an identity."""
    return env.get("POD_NAME", "").strip() or f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"


def micro_time(now: datetime.datetime) -> str:
    """A Kubernetes MicroTime."""
    return now.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaseStore(Protocol):
    async def read(self) -> dict[str, Any] | None: ...

    async def create(self, lease: dict[str, Any]) -> dict[str, Any]: ...

    async def write(self, lease: dict[str, Any]) -> dict[str, Any]:
        """Replace the Lease; ``metadata.resourceVersion`` is a precondition (409)."""
        ...


class KubeLeaseStore:
    def __init__(self, kube: KubeClient, namespace: str, name: str = LEASE_NAME) -> None:
        self.kube, self.namespace, self.name = kube, namespace, name

    async def read(self) -> dict[str, Any] | None:
        return await self.kube.get(API_VERSION, "Lease", self.namespace, self.name)

    async def create(self, lease: dict[str, Any]) -> dict[str, Any]:
        return await self.kube.create(lease)

    async def write(self, lease: dict[str, Any]) -> dict[str, Any]:
        # A resourceVersion in an applied object is checked like an update's.
        return await self.kube.apply(lease)


class LeaderElector:
    def __init__(
        self,
        store: LeaseStore,
        namespace: str,
        identity: str,
        timing: LeaseTiming = LeaseTiming(),
        *,
        name: str = LEASE_NAME,
        clock: Callable[[], float] | None = None,
        wall: Callable[[], datetime.datetime] | None = None,
    ) -> None:
        self.store, self.namespace, self.name = store, namespace, name
        self.identity, self.timing = identity, timing
        loop_clock = clock or (lambda: asyncio.get_running_loop().time())
        self._clock = loop_clock
        self._wall = wall or (lambda: datetime.datetime.now(datetime.UTC))
        self._observed: tuple[Any, ...] | None = None
        self._observed_at = 0.0
        self._last_renewal: float | None = None
        self.leading = False

    def _lease(self, spec: dict[str, Any], resource_version: str | None) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if resource_version is not None:
            meta["resourceVersion"] = resource_version
        return {"apiVersion": API_VERSION, "kind": "Lease", "metadata": meta, "spec": spec}

    def _observe(self, lease: Mapping[str, Any]) -> None:
        spec = lease.get("spec") or {}
        record = (
            (lease.get("metadata") or {}).get("resourceVersion"),
            spec.get("holderIdentity"),
            spec.get("renewTime"),
            spec.get("leaseDurationSeconds"),
        )
        if record != self._observed:
            self._observed, self._observed_at = record, self._clock()

    @property
    def holder(self) -> str:
        """The holder this replica last saw."""
        return str((self._observed or (None, ""))[1] or "")

    async def try_acquire_or_renew(self) -> bool:
        """One attempt: True when this replica holds the Lease afterwards."""
        now = micro_time(self._wall())
        duration = max(1, round(self.timing.duration))
        try:
            lease = await self.store.read()
            if lease is None:
                fresh: dict[str, Any] = {
                    "holderIdentity": self.identity,
                    "leaseDurationSeconds": duration,
                    "acquireTime": now,
                    "renewTime": now,
                    "leaseTransitions": 0,
                }
                created = await self.store.create(self._lease(fresh, None))
                self._observe(created)
                return True
            self._observe(lease)
            spec: dict[str, Any] = dict(lease.get("spec") or {})
            holder = spec.get("holderIdentity") or ""
            held_for = float(spec.get("leaseDurationSeconds") or duration)
            others = bool(holder) and holder != self.identity
            if others and self._clock() < self._observed_at + held_for:
                return False
            if holder != self.identity:
                spec["acquireTime"] = now
                spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
            spec.update(holderIdentity=self.identity, leaseDurationSeconds=duration, renewTime=now)
            written = await self.store.write(
                self._lease(spec, lease["metadata"].get("resourceVersion"))
            )
            self._observe(written)
            return True
        except KubeError as err:
            # 409: another replica wrote first; anything else: try again next period.
            if err.status != 409:
                log.warning("Lease %s/%s: %s", self.namespace, self.name, err)
            return False

    async def acquire(self) -> None:
        """Wait until this replica leads."""
        announced = False
        while not await self.try_acquire_or_renew():
            if not announced:
                log.info(
                    "Standby: Lease %s/%s is held by %s", self.namespace, self.name, self.holder
                )
                announced = True
            await asyncio.sleep(self.timing.retry_period)
        self.leading = True
        self._last_renewal = self._clock()
        log.info("Leading as %s (Lease %s/%s)", self.identity, self.namespace, self.name)

    async def hold(self) -> None:
        """Renew until cancelled; raises LeadershipLost past the renew deadline."""
        while True:
            await asyncio.sleep(self.timing.retry_period)
            if await self.try_acquire_or_renew():
                self._last_renewal = self._clock()
            elif self._clock() - (self._last_renewal or 0.0) > self.timing.renew_deadline:
                self.leading = False
                raise LeadershipLost(
                    f"Lease {self.namespace}/{self.name} not renewed for "
                    f"{self.timing.renew_deadline:g}s"
                )

    async def release(self) -> None:
        """Hand the Lease back (a clean shutdown): the next replica need not wait."""
        if not self.leading:
            return
        self.leading = False
        try:
            lease = await self.store.read()
            spec = dict((lease or {}).get("spec") or {})
            if lease is None or spec.get("holderIdentity") != self.identity:
                return
            # Left out, the field goes: every write is an apply by the same field manager.
            spec.pop("holderIdentity", None)
            spec.update(leaseDurationSeconds=1, renewTime=micro_time(self._wall()))
            await self.store.write(self._lease(spec, lease["metadata"].get("resourceVersion")))
            log.info("Released Lease %s/%s", self.namespace, self.name)
        except KubeError as err:
            log.warning("Could not release Lease %s/%s: %s", self.namespace, self.name, err)


def enabled(env: Mapping[str, str] | None = None) -> bool:
    source = os.environ if env is None else env
    return source.get("TFLOW_LEADER_ELECTION", "").strip().lower() in {"1", "true", "yes"}
