"""A worker interceptor that heartbeats every activity scheduled with a heartbeat timeout
while it runs, so that a worker which dies in the middle of a call (killed, out of memory,
its node gone) is noticed within that timeout and the call is retried on another worker,
instead of the run waiting out the task's whole timeout and then failing.

It lives in an interceptor, not in each activity, so that every activity the worker serves
(the engine's, the SQL functions, a team's own functions) beats the same way without
knowing about it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import activity
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

# Beats this many times per heartbeat timeout: one late beat (a busy event loop) must not
# make a live worker look dead. The SDK throttles what it sends to the server anyway.
BEATS_PER_TIMEOUT = 4


class HeartbeatInterceptor(Interceptor):
    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Heartbeating(next)


class _Heartbeating(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        timeout = activity.info().heartbeat_timeout
        if not timeout:
            return await super().execute_activity(input)
        beats = asyncio.create_task(_beat(timeout.total_seconds() / BEATS_PER_TIMEOUT))
        try:
            return await super().execute_activity(input)
        finally:
            beats.cancel()


async def _beat(every: float) -> None:
    while True:
        activity.heartbeat()
        await asyncio.sleep(every)
