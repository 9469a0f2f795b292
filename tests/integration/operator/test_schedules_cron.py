"""The operator's own cron check agrees with Temporal's: whatever it accepts, the dev server
accepts, and whatever the dev server refuses, it refuses first, with a reason."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleSpec,
)
from temporalio.service import RPCError, RPCStatusCode

from tflow_operator.schedules import cron_problem

pytestmark = pytest.mark.integration

VALID = [
    "0 * * * *",
    "*/15 9-17 * * MON-FRI",
    "0 0 1 jan,jul *",
    "5,35 */2 1-31/3 * sun",
    "0 12 * * 7",
    "0 0 * * * 2030",
    "30 0 0 * * * *",
    "@hourly",
    "@daily",
    "@weekly",
    "@monthly",
    "@yearly",
    "@every 90m",
    "CRON_TZ=Asia/Tokyo 0 9 * * *",
    "0 9 * * Tu",
]
INVALID = [
    "0 * * *",
    "0 * * * * * * *",
    "60 * * * *",
    "0 24 * * *",
    "0 0 0 * *",
    "0 0 * 13 *",
    "0 0 * * 8",
    "0 0 * * * 1999",
    "*/0 * * * *",
    "5-2 * * * *",
    "1-2-3 * * * *",
    "a * * * *",
    "0 0 * * FUNDAY",
    "0 0 * ja *",
    "@often",
]


async def server_accepts(client: Client, expression: str) -> bool:
    sid = f"cron-check-{uuid.uuid4().hex[:8]}"
    schedule = Schedule(
        action=ScheduleActionStartWorkflow("Nothing", id=sid, task_queue="cron-check"),
        spec=ScheduleSpec(cron_expressions=[expression]),
    )
    try:
        handle = await client.create_schedule(sid, schedule)
    except RPCError as err:
        refused = err
    else:
        await handle.delete(rpc_timeout=timedelta(seconds=10))
        return True
    assert refused.status == RPCStatusCode.INVALID_ARGUMENT, refused
    return False


@pytest.mark.parametrize("expression", VALID)
async def test_valid_everywhere(temporal_client: Client, expression: str) -> None:
    assert cron_problem(expression) is None
    assert await server_accepts(temporal_client, expression)


@pytest.mark.parametrize("expression", INVALID)
async def test_refused_first_with_a_reason(temporal_client: Client, expression: str) -> None:
    problem = cron_problem(expression)
    assert problem, expression
    assert not await server_accepts(temporal_client, expression)
