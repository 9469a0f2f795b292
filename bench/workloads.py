"""The benchmarks' workloads: the Serverless Workflow documents the interpreter runs and
the custom function their `call` tasks use. `bench.handwritten` spells the same steps out
in Python; both sides read the step plan from here so they cannot drift apart.

This module is imported inside the Temporal workflow sandbox (by `bench.handwritten`), so
it holds plain, deterministic Python only.
"""

from __future__ import annotations

from typing import Any, Literal

COUNTER_FUNCTION = "bump"
APPROVAL_EVENT = "approve"
OVERFLOW_LIMIT = 1_000_000

StepKind = Literal["call", "set", "switch"]


def plan(tasks: int) -> list[StepKind]:
    """The kind of each top-level task: mostly calls, a set every fifth task, and one
    switch half-way. For 20 tasks: 15 calls, 4 sets, 1 switch."""
    switch_at = max(tasks // 2 - 1, 0)
    kinds: list[StepKind] = []
    for i in range(tasks):
        if i == switch_at:
            kinds.append("switch")
        elif i % 5 == 3:
            kinds.append("set")
        else:
            kinds.append("call")
    return kinds


def step_name(index: int, kind: StepKind) -> str:
    return f"{kind}{index:02d}"


def increment(index: int) -> int:
    """How much the call at `index` adds to the counter (1, 2 or 3)."""
    return index % 3 + 1


def initial_data() -> dict[str, Any]:
    return {"count": 0, "total": 0, "checkpoints": 0, "label": "start", "last": None}


async def bump(args: dict[str, Any]) -> dict[str, Any]:
    """The custom function every `call` task runs: adds `by` to the state's counter."""
    state = dict(args["state"])
    state["count"] = state["count"] + args["by"]
    state["last"] = f"+{args['by']}"
    return state


# The two forms a `set` task takes, alternating: a whole-object jq expression, and an
# object whose fields are expressions.
SET_MERGE = "${ . + {total: (.total + .count), checkpoints: (.checkpoints + 1)} }"
SET_FIELDS: dict[str, Any] = {
    "count": "${ .count }",
    "total": "${ .total }",
    "checkpoints": "${ .checkpoints + 1 }",
    "label": '${ "checkpoint-" + (.checkpoints + 1 | tostring) }',
    "last": "${ .last }",
}


def _task(index: int, kind: StepKind, kinds: list[StepKind], set_ordinal: int) -> dict[str, Any]:
    if kind == "call":
        return {
            "call": COUNTER_FUNCTION,
            "with": {"state": "${ . }", "by": increment(index)},
        }
    if kind == "set":
        return {"set": SET_MERGE if set_ordinal % 2 == 0 else dict(SET_FIELDS)}
    following = step_name(index + 1, kinds[index + 1]) if index + 1 < len(kinds) else "continue"
    return {
        "switch": [
            {"overflow": {"when": f".count > {OVERFLOW_LIMIT}", "then": "end"}},
            {"proceed": {"then": following}},
        ]
    }


def steps_document(tasks: int) -> dict[str, Any]:
    """A `tasks`-task document following `plan(tasks)`."""
    kinds = plan(tasks)
    body: list[dict[str, Any]] = []
    set_ordinal = 0
    for index, kind in enumerate(kinds):
        body.append({step_name(index, kind): _task(index, kind, kinds, set_ordinal)})
        if kind == "set":
            set_ordinal += 1
    return {
        "document": {
            "dsl": "1.0.0",
            "namespace": "bench",
            "name": f"steps-{tasks}",
            "version": "1.0.0",
        },
        "do": body,
    }


def approval_document() -> dict[str, Any]:
    """A small document that records the request, waits for an `approve` event, then
    records the decision: what a run parked on a human approval looks like."""
    return {
        "document": {"dsl": "1.0.0", "namespace": "bench", "name": "approval", "version": "1.0.0"},
        "do": [
            {"receive": {"set": {"request": "${ . }", "state": "pending"}}},
            {
                "waitForApproval": {
                    "listen": {"to": {"one": {"with": {"type": APPROVAL_EVENT}}}},
                    "output": {"as": "${ $input + {decision: .[0]} }"},
                }
            },
            {"record": {"set": {"request": "${ .request }", "approved": "${ .decision.ok }"}}},
        ],
    }
