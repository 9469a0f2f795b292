"""Leader election on a Lease: one holder at a time, takeover only after the lease period
as seen by the standby's own clock, optimistic concurrency, renew deadline, release."""

from __future__ import annotations

import copy
import datetime
from typing import Any

import pytest

from tflow_operator.kube import KubeError
from tflow_operator.leader import LeaderElector, LeadershipLost, LeaseTiming

TIMING = LeaseTiming(duration=15, renew_deadline=10, retry_period=2)
WALL = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


class FakeLeases:
    """An apiserver's view of one Lease: resourceVersion preconditions, 409s."""

    def __init__(self) -> None:
        self.lease: dict[str, Any] | None = None
        self.version = 0
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise KubeError(503, "unavailable")

    async def read(self) -> dict[str, Any] | None:
        self._check()
        return copy.deepcopy(self.lease)

    async def create(self, lease: dict[str, Any]) -> dict[str, Any]:
        self._check()
        if self.lease is not None:
            raise KubeError(409, "exists")
        return self._store(lease)

    async def write(self, lease: dict[str, Any]) -> dict[str, Any]:
        self._check()
        assert self.lease is not None
        if lease["metadata"].get("resourceVersion") != self.lease["metadata"]["resourceVersion"]:
            raise KubeError(409, "conflict")
        return self._store(lease)

    def _store(self, lease: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        self.lease = copy.deepcopy(lease)
        self.lease["metadata"]["resourceVersion"] = str(self.version)
        return copy.deepcopy(self.lease)

    @property
    def holder(self) -> str | None:
        return None if self.lease is None else self.lease["spec"].get("holderIdentity")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def elector(store: FakeLeases, identity: str, clock: Clock) -> LeaderElector:
    return LeaderElector(store, "sys", identity, TIMING, clock=clock, wall=lambda: WALL)


async def test_one_holder_until_the_lease_runs_out_on_the_standbys_clock() -> None:
    store, clock = FakeLeases(), Clock()
    a, b = elector(store, "a", clock), elector(store, "b", clock)
    assert await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    assert store.holder == "a"
    # a keeps renewing: b never gets it, however long it waits.
    for _ in range(20):
        clock.now += TIMING.retry_period
        assert await a.try_acquire_or_renew()
        assert not await b.try_acquire_or_renew()
    # a stops renewing (killed): b waits a full lease period from its last sight of a
    # change, then takes over, counting a transition.
    clock.now += TIMING.duration - 1
    assert not await b.try_acquire_or_renew()
    clock.now += 2
    assert await b.try_acquire_or_renew()
    assert store.holder == "b"
    assert store.lease is not None
    assert store.lease["spec"]["leaseTransitions"] == 1
    # a, back, is now the standby.
    assert not await a.try_acquire_or_renew()


async def test_two_standbys_racing_for_an_expired_lease_one_wins() -> None:
    store, clock = FakeLeases(), Clock()
    assert await elector(store, "gone", clock).try_acquire_or_renew()
    b, c = elector(store, "b", clock), elector(store, "c", clock)
    assert not await b.try_acquire_or_renew()
    assert not await c.try_acquire_or_renew()
    clock.now += TIMING.duration + 1
    # c read the expired Lease at the same version as b, but writes after b.
    seen_by_c = await store.read()
    assert await b.try_acquire_or_renew()

    async def stale_read() -> dict[str, Any] | None:
        return copy.deepcopy(seen_by_c)

    store.read = stale_read  # type: ignore[method-assign]
    assert not await c.try_acquire_or_renew()
    assert store.holder == "b"


async def test_a_leader_that_cannot_renew_gives_up_after_the_deadline() -> None:
    store = FakeLeases()
    timing = LeaseTiming(duration=0.5, renew_deadline=0.2, retry_period=0.05)
    a = LeaderElector(store, "sys", "a", timing)
    await a.acquire()
    store.down = True
    with pytest.raises(LeadershipLost):
        await a.hold()
    assert not a.leading


async def test_release_lets_the_next_replica_lead_without_waiting() -> None:
    store, clock = FakeLeases(), Clock()
    a, b = elector(store, "a", clock), elector(store, "b", clock)
    await a.acquire()
    assert not await b.try_acquire_or_renew()
    await a.release()
    assert store.holder is None
    assert await b.try_acquire_or_renew()
    assert store.holder == "b"


def test_timing_must_leave_room_to_renew() -> None:
    with pytest.raises(ValueError, match="renew_deadline"):
        LeaseTiming(duration=10, renew_deadline=10, retry_period=2)
    env = {"TFLOW_LEASE_DURATION_SECONDS": "6", "TFLOW_LEASE_RENEW_DEADLINE_SECONDS": "4"}
    assert LeaseTiming.from_env(env) == LeaseTiming(6, 4, 2)
