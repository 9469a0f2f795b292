"""The benchmarks' baselines: the same steps as the Serverless Workflow documents in
`bench.workloads`, written by hand as plain Temporal Python workflows. Same activities,
same order, same timeouts and retry policy as the interpreter gives a `call`, and the
jq data transformations done in Python.

It lives in its own module, not in a benchmark script, so the workflow sandbox imports
plain code rather than `__main__`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bench.workloads import (
    APPROVAL_EVENT,
    COUNTER_FUNCTION,
    OVERFLOW_LIMIT,
    increment,
    plan,
    step_name,
)
from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy

HANDWRITTEN_STEPS = "HandwrittenSteps"
HANDWRITTEN_APPROVAL = "HandwrittenApproval"

# What the interpreter uses for a `call` with no timeout and no try/retry.
# What the interpreter gives every call it schedules (`tflow_workers.engine.interpreter`):
# the timeouts, the heartbeat timeout, the attempts for a lost worker, and the task's
# reference as the activity's summary in the Temporal UI. The baseline schedules the
# same commands, so the comparison is of the walk, not of the options.
CALL_TIMEOUT = timedelta(minutes=5)
CALL_HEARTBEAT = timedelta(seconds=20)
CALL_RETRY = RetryPolicy(maximum_attempts=5)


class StepsInput(BaseModel):
    tasks: int
    data: dict[str, Any]


@workflow.defn(name=HANDWRITTEN_STEPS)
class HandwrittenSteps:
    @workflow.run
    async def run(self, params: StepsInput) -> dict[str, Any]:
        data = params.data
        set_ordinal = 0
        for index, kind in enumerate(plan(params.tasks)):
            if kind == "call":
                data = await workflow.execute_activity(
                    COUNTER_FUNCTION,
                    {"state": data, "by": increment(index)},
                    schedule_to_close_timeout=CALL_TIMEOUT,
                    start_to_close_timeout=CALL_TIMEOUT,
                    heartbeat_timeout=CALL_HEARTBEAT,
                    retry_policy=CALL_RETRY,
                    result_type=dict,
                    summary=f"/do/{index}/{step_name(index, kind)}",
                )
            elif kind == "set":
                if set_ordinal % 2 == 0:
                    data = {
                        **data,
                        "total": data["total"] + data["count"],
                        "checkpoints": data["checkpoints"] + 1,
                    }
                else:
                    data = {
                        "count": data["count"],
                        "total": data["total"],
                        "checkpoints": data["checkpoints"] + 1,
                        "label": f"checkpoint-{data['checkpoints'] + 1}",
                        "last": data["last"],
                    }
                set_ordinal += 1
            elif data["count"] > OVERFLOW_LIMIT:
                return data
        return data


@workflow.defn(name=HANDWRITTEN_APPROVAL)
class HandwrittenApproval:
    """Records the request, waits for an `approve` signal, records the decision."""

    def __init__(self) -> None:
        self._decision: Any = None
        self._waiting = False

    @workflow.run
    async def run(self, request: Any) -> dict[str, Any]:
        self._waiting = True
        await workflow.wait_condition(lambda: self._decision is not None)
        self._waiting = False
        return {"request": request, "approved": self._decision.get("ok")}

    @workflow.signal(name=APPROVAL_EVENT)
    def approve(self, decision: dict[str, Any]) -> None:
        self._decision = decision

    @workflow.query(name="status")
    def status(self) -> dict[str, Any]:
        return {"phase": "waiting" if self._waiting else "running"}
