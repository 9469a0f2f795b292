"""The webhook's limits: a token bucket for its request rate, and the cache of Standard
Webhooks ids that refuses a replayed request within the signature's tolerance."""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable


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
