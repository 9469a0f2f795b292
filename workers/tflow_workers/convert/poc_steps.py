"""Converter for the Go "Temporal POC" step map (seed 003) into an SW 1.0 document.

Input shape (the POC's JSON tags)::

    {"start_step": "step_1",
     "steps": {"step_1": {"node": "send_message", "go_to": "step_2"},
               "step_2": {"node": "wait_answer",
                          "condition": {"satisfied": "step_3", "timeout": "step_4"}}}}

The POC's runtime rule is: after a node runs, take the condition's target for the event
type the node returned (`condition_satisfied` / `condition_not_satisfied` /
`condition_timeout`); if there is none, take `go_to`; if there is none either, the
workflow ends. Every step becomes a task named after the step, with an explicit `then`,
so task order only matters for the start step, which always comes first.

The POC hard-codes what a node does in Go. Nodes that wait for a signal are known from
`SIGNAL_NODES` (the seed's `wait_answer`: signal `client-answered`, 1 minute), or declared
per step with the extension fields `signal` and `timeout`; a node that only sleeps (the
POC's `workflow.Sleep`, e.g. `explicity_wait`) is declared with the extension field
`sleep: <ISO 8601 duration>` and becomes a durable `wait`; every other node is a custom
function call (`call: <node>`, arguments from the extension field `with`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from tflow_workers.convert._common import (
    ROOT,
    ConversionError,
    check_label,
    child,
    find_cycle,
    header,
    iso_duration,
    optional_string,
    pick_name,
    pick_version,
    reject_unknown,
    require_mapping,
    require_string,
    unique_name,
)

SOURCE_FORMAT: Final = "poc-steps"
TIMEOUT_ERROR_TYPE: Final = "https://serverlessworkflow.io/spec/1.0.0/errors/timeout"

# The POC's event types, in the order its Condition struct declares them.
SATISFIED: Final = "condition_satisfied"
NOT_SATISFIED: Final = "condition_not_satisfied"
TIMED_OUT: Final = "condition_timeout"
CONDITION_EVENTS: Final[Mapping[str, str]] = {
    "satisfied": SATISFIED,
    "not_satisfied": NOT_SATISFIED,
    "timeout": TIMED_OUT,
}
# The data field the converted document uses to carry a node's event type to the switch.
EVENT_FIELD: Final = "eventType"

_TOP_FIELDS: Final = ("start_step", "steps", "name", "version")
_STEP_FIELDS: Final = ("node", "go_to", "condition", "with", "signal", "timeout", "sleep")


@dataclass(frozen=True)
class SignalWait:
    """A node that blocks until a signal arrives or `timeout` (ISO 8601) elapses.

    A `timeout` of None waits forever, so that node can only report `condition_satisfied`.
    """

    signal: str
    timeout: str | None = None


SIGNAL_NODES: Final[Mapping[str, SignalWait]] = {
    # seed 003: wait_answer selects on the `client-answered` channel and a 1 minute timer.
    "wait_answer": SignalWait(signal="client-answered", timeout="PT1M"),
}


@dataclass(frozen=True)
class _Step:
    name: str
    node: str
    go_to: str | None
    condition: dict[str, str]  # condition key -> target step, only the keys that are set
    args: dict[str, Any] | None
    wait: SignalWait | None
    sleep: str | None = None

    def successors(self) -> list[tuple[str, str]]:
        """(field path suffix, target) pairs in the order the runtime would consider them."""
        found = [(f"condition.{key}", target) for key, target in self.condition.items()]
        if self.go_to is not None:
            found.append(("go_to", self.go_to))
        return found


def convert_poc_steps(
    data: Mapping[str, Any],
    *,
    name: str | None = None,
    namespace: str = "default",
    signal_nodes: Mapping[str, SignalWait] | None = None,
) -> dict[str, Any]:
    """Convert a POC step map into an SW 1.0 document dict.

    Raises ConversionError naming the step and field for unknown fields, unknown `go_to`
    or condition targets, unknown condition keys, a missing or unknown start step, and
    cycles (the POC refuses to revisit a step).
    """
    data = require_mapping(data, ROOT)
    reject_unknown(data, _TOP_FIELDS, ROOT, "step map")
    known_waits = SIGNAL_NODES if signal_nodes is None else signal_nodes
    steps_path = child(ROOT, "steps")
    raw_steps = require_mapping(data.get("steps"), steps_path)
    if not raw_steps:
        raise ConversionError(steps_path, "the step map has no steps")
    steps = {
        step_name: _parse_step(step_name, raw, child(steps_path, step_name), known_waits)
        for step_name, raw in raw_steps.items()
    }
    for step in steps.values():
        for suffix, target in step.successors():
            if target not in steps:
                raise ConversionError(
                    f"{child(steps_path, step.name)}.{suffix}",
                    f"step {step.name!r} goes to unknown step {target!r}",
                )
    start = _start_step(data, steps)
    _reject_cycles(steps, start, steps_path)

    taken = set(steps)
    tasks: list[dict[str, Any]] = []
    for step in _ordered(steps, start):
        tasks.extend(_tasks_for(step, taken))
    return {
        "document": header(
            name=pick_name(name, data.get("name"), "steps-workflow"),
            namespace=check_label(namespace, "namespace"),
            version=pick_version(data.get("version"), child(ROOT, "version")),
            source_format=SOURCE_FORMAT,
            summary=f"Converted from a POC step map starting at step {start!r}.",
        ),
        "do": tasks,
    }


def _parse_step(
    step_name: str, raw: object, path: str, known_waits: Mapping[str, SignalWait]
) -> _Step:
    step = require_mapping(raw, path)
    reject_unknown(step, _STEP_FIELDS, path, "step")
    node = require_string(step.get("node"), child(path, "node"))
    go_to = optional_string(step.get("go_to"), child(path, "go_to"))

    condition: dict[str, str] = {}
    raw_condition = step.get("condition")
    if raw_condition is not None:
        condition_path = child(path, "condition")
        mapping = require_mapping(raw_condition, condition_path)
        for key, value in mapping.items():
            if key not in CONDITION_EVENTS:
                raise ConversionError(
                    child(condition_path, key),
                    f"step {step_name!r} has unknown condition key {key!r} "
                    f"(expected one of {', '.join(CONDITION_EVENTS)})",
                )
            target = optional_string(value, child(condition_path, key))
            if target is not None:
                condition[key] = target
        # Keep the runtime's order whatever order the document used.
        condition = {key: condition[key] for key in CONDITION_EVENTS if key in condition}

    args: dict[str, Any] | None = None
    if step.get("with") is not None:
        args = copy.deepcopy(dict(require_mapping(step["with"], child(path, "with"))))

    wait = known_waits.get(node)
    signal = optional_string(step.get("signal"), child(path, "signal"))
    if signal is not None:
        wait = SignalWait(signal=signal, timeout=wait.timeout if wait else None)
    if step.get("timeout") is not None:
        timeout_path = child(path, "timeout")
        if wait is None:
            raise ConversionError(
                timeout_path,
                f"step {step_name!r}: a timeout applies only to a signal-wait step; "
                "set 'signal' too, or use a node listed as a signal wait",
            )
        wait = SignalWait(signal=wait.signal, timeout=iso_duration(step["timeout"], timeout_path))
    if wait is not None and args is not None:
        raise ConversionError(
            child(path, "with"),
            f"step {step_name!r} waits for signal {wait.signal!r}; a listen takes no arguments",
        )
    sleep = None
    if step.get("sleep") is not None:
        sleep_path = child(path, "sleep")
        if wait is not None or args is not None:
            raise ConversionError(
                sleep_path,
                f"step {step_name!r}: a sleep step only waits; it takes no signal or arguments",
            )
        sleep = iso_duration(step["sleep"], sleep_path)
    return _Step(step_name, node, go_to, condition, args, wait, sleep)


def _start_step(data: Mapping[str, Any], steps: Mapping[str, _Step]) -> str:
    path = child(ROOT, "start_step")
    start = optional_string(data.get("start_step"), path)
    if start is not None:
        if start not in steps:
            raise ConversionError(path, f"start step {start!r} is not in the step map")
        return start
    # The POC requires start_step; inferring it is safe only when exactly one step is
    # not the target of another.
    targeted = {target for step in steps.values() for _, target in step.successors()}
    roots = [name for name in steps if name not in targeted]
    if len(roots) == 1:
        return roots[0]
    found = f"candidates: {', '.join(roots)}" if roots else "every step is a target"
    raise ConversionError(path, f"missing start step and it cannot be inferred ({found})")


def _reject_cycles(steps: Mapping[str, _Step], start: str, path: str) -> None:
    # The POC stops with "circular workflow detected" when a step comes round again;
    # refuse that here instead of emitting a document that loops.
    successors = {name: [t for _, t in step.successors()] for name, step in steps.items()}
    cycle = find_cycle([start, *steps], successors)
    if cycle is not None:
        raise ConversionError(path, f"steps form a cycle: {' -> '.join(cycle)}")


def _ordered(steps: Mapping[str, _Step], start: str) -> list[_Step]:
    """Depth-first from the start step, so a flow reads top-down; unreachable steps keep
    their document order at the end (converted, not dropped: they are part of the input)."""
    seen: dict[str, None] = {}
    for root in [start, *steps]:
        pending = [root]
        while pending:
            name = pending.pop()
            if name in seen:
                continue
            seen[name] = None
            pending.extend(reversed([t for _, t in steps[name].successors()]))
    return [steps[name] for name in seen]


def _default_then(step: _Step) -> str:
    return step.go_to if step.go_to is not None else "end"


def _tasks_for(step: _Step, taken: set[str]) -> list[dict[str, Any]]:
    route = unique_name(f"{step.name}_route", taken) if step.condition else None
    after = route if route is not None else _default_then(step)

    if step.sleep is not None:
        task: dict[str, Any] = {"wait": step.sleep}
        event_expr = f'(.{EVENT_FIELD} // "{SATISFIED}")'
    elif step.wait is None:
        task = {"call": step.node}
        if step.args:
            task["with"] = step.args
        # A plain node's function result decides the branch; the POC's plain nodes always
        # report success, so a result without an event type counts as satisfied.
        event_expr = f'(.{EVENT_FIELD} // "{SATISFIED}")'
    else:
        task = _signal_wait_task(step.node, step.wait)
        event_expr = f".{EVENT_FIELD}"
    task["then"] = after
    tasks: list[dict[str, Any]] = [{step.name: task}]

    if route is not None:
        cases: list[dict[str, Any]] = [
            {key: {"when": f'${{ {event_expr} == "{CONDITION_EVENTS[key]}" }}', "then": target}}
            for key, target in step.condition.items()
        ]
        cases.append({"default": {"then": _default_then(step)}})
        tasks.append({route: {"switch": cases}})
    return tasks


def _signal_wait_task(node: str, wait: SignalWait) -> dict[str, Any]:
    listen: dict[str, Any] = {"listen": {"to": {"one": {"with": {"type": wait.signal}}}}}
    if wait.timeout is not None:
        listen["timeout"] = {"after": wait.timeout}
    # The consumed events replace the data; keep the first one next to the marker.
    listen["output"] = {"as": f'${{ {{{EVENT_FIELD}: "{SATISFIED}", event: .[0]}} }}'}
    if wait.timeout is None:
        return listen
    return {
        "try": [{node: listen}],
        "catch": {
            "errors": {"with": {"type": TIMEOUT_ERROR_TYPE}},
            "do": [{"timed_out": {"set": {EVENT_FIELD: TIMED_OUT}}}],
        },
    }
