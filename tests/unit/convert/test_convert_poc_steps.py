"""The POC step-map converter: the seed's abandoned-cart flow, the signal-wait mapping, and
every rejection naming the step and field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tflow_workers.convert import ConversionError, SignalWait, convert_poc_steps
from tflow_workers.dsl.yamlio import load_yaml

INPUTS = Path(__file__).parent / "inputs"
REPO = Path(__file__).resolve().parents[3]
TIMEOUT_ERROR = "https://serverlessworkflow.io/spec/1.0.0/errors/timeout"


def _load(path: Path) -> dict[str, Any]:
    data = load_yaml(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _tasks(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Top-level tasks by name, checking each entry is a single-key map."""
    tasks: dict[str, dict[str, Any]] = {}
    for entry in document["do"]:
        assert len(entry) == 1
        ((name, task),) = entry.items()
        assert name not in tasks
        tasks[name] = task
    return tasks


def _cases(switch_task: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: case for entry in switch_task["switch"] for name, case in entry.items()}


@pytest.fixture
def cart() -> dict[str, Any]:
    data = _load(INPUTS / "abandoned-cart.steps.json")
    return convert_poc_steps(data, name="abandoned-cart", namespace="samples")


def test_abandoned_cart_converts_to_the_expected_document(cart: dict[str, Any]) -> None:
    assert cart == _load(INPUTS / "abandoned-cart.sw.yaml")


def test_abandoned_cart_header(cart: dict[str, Any]) -> None:
    assert cart["document"] == {
        "dsl": "1.0.0",
        "namespace": "samples",
        "name": "abandoned-cart",
        "version": "1.0.0",
        "summary": "Converted from a POC step map starting at step 'step_1'.",
        "tags": {"converted-from": "poc-steps"},
    }


def test_abandoned_cart_wait_step_listens_for_the_signal_with_a_timeout(
    cart: dict[str, Any],
) -> None:
    wait = _tasks(cart)["step_2"]
    (listen_entry,) = wait["try"]
    listen = listen_entry["wait_answer"]
    assert listen["listen"]["to"]["one"]["with"]["type"] == "client-answered"
    assert listen["timeout"] == {"after": "PT1M"}
    assert listen["output"]["as"] == '${ {eventType: "condition_satisfied", event: .[0]} }'
    assert wait["catch"]["errors"]["with"]["type"] == TIMEOUT_ERROR
    assert wait["catch"]["do"] == [{"timed_out": {"set": {"eventType": "condition_timeout"}}}]
    assert wait["then"] == "step_2_route"


def test_abandoned_cart_branches_on_the_event_type(cart: dict[str, Any]) -> None:
    cases = _cases(_tasks(cart)["step_2_route"])
    assert list(cases) == ["satisfied", "timeout", "default"]
    assert cases["satisfied"] == {
        "when": '${ .eventType == "condition_satisfied" }',
        "then": "step_3",
    }
    assert cases["timeout"] == {"when": '${ .eventType == "condition_timeout" }', "then": "step_4"}
    # No condition target and no go_to: the POC ends the workflow.
    assert cases["default"] == {"then": "end"}


def test_abandoned_cart_plain_steps_become_custom_calls(cart: dict[str, Any]) -> None:
    tasks = _tasks(cart)
    assert list(tasks) == [
        "step_1",
        "step_2",
        "step_2_route",
        "step_3",
        "step_4",
        "step_5",
        "step_6",
    ]
    assert tasks["step_1"] == {
        "call": "send_message",
        "with": {"cartId": "${ .cartId }"},
        "then": "step_2",
    }
    assert tasks["step_3"] == {
        "call": "notify_creator",
        "with": {"cartId": "${ $workflow.input.cartId }"},
        "then": "end",
    }
    assert tasks["step_4"] == {
        "call": "webhook",
        "with": {"cartId": "${ $workflow.input.cartId }"},
        "then": "step_5",
    }
    # The sample declares the POC's sleep, so it becomes a durable timer, not a call.
    assert tasks["step_5"] == {"wait": "PT30S", "then": "step_6"}
    assert tasks["step_6"] == {
        "call": "send_message",
        "with": {"cartId": "${ $workflow.input.cartId }"},
        "then": "end",
    }


def test_yaml_sample_and_json_input_give_the_same_document() -> None:
    sample = _load(REPO / "manifests" / "samples" / "seed-formats" / "abandoned-cart.steps.yaml")
    data = json.loads((INPUTS / "abandoned-cart.steps.json").read_text(encoding="utf-8"))
    assert convert_poc_steps(sample) == convert_poc_steps(data)


def test_start_step_comes_first_whatever_the_map_order() -> None:
    data = {
        "start_step": "b",
        "steps": {"a": {"node": "two"}, "b": {"node": "one", "go_to": "a"}},
    }
    assert [next(iter(entry)) for entry in convert_poc_steps(data)["do"]] == ["b", "a"]


def test_start_step_is_inferred_when_exactly_one_step_is_not_a_target() -> None:
    data = {"steps": {"later": {"node": "two"}, "first": {"node": "one", "go_to": "later"}}}
    document = convert_poc_steps(data)
    assert list(document["do"][0]) == ["first"]
    assert document["document"]["summary"].endswith("step 'first'.")


def test_go_zero_values_mean_not_set() -> None:
    data = {
        "start_step": "s1",
        "steps": {
            "s1": {"node": "send_message", "go_to": "s2", "condition": None},
            "s2": {"node": "notify_creator", "go_to": "", "condition": {"satisfied": ""}},
        },
    }
    assert _tasks(convert_poc_steps(data)) == {
        "s1": {"call": "send_message", "then": "s2"},
        "s2": {"call": "notify_creator", "then": "end"},
    }


def test_plain_node_with_a_condition_branches_on_its_result() -> None:
    data = {
        "start_step": "check",
        "steps": {
            "check": {
                "node": "check_stock",
                "with": {"sku": "A-1"},
                "condition": {"not_satisfied": "restock", "satisfied": "ship"},
                "go_to": "ship",
            },
            "restock": {"node": "restock"},
            "ship": {"node": "ship"},
        },
    }
    tasks = _tasks(convert_poc_steps(data))
    assert tasks["check"] == {"call": "check_stock", "with": {"sku": "A-1"}, "then": "check_route"}
    cases = _cases(tasks["check_route"])
    # The runtime's order (satisfied, not_satisfied, timeout), not the document's.
    assert list(cases) == ["satisfied", "not_satisfied", "default"]
    assert cases["not_satisfied"] == {
        "when": '${ (.eventType // "condition_satisfied") == "condition_not_satisfied" }',
        "then": "restock",
    }
    # Without a matching condition the POC falls back to go_to.
    assert cases["default"] == {"then": "ship"}


def test_wait_step_without_condition_goes_to_its_go_to() -> None:
    data = {
        "start_step": "wait",
        "steps": {"wait": {"node": "wait_answer", "go_to": "next"}, "next": {"node": "notify"}},
    }
    tasks = _tasks(convert_poc_steps(data))
    assert "try" in tasks["wait"]
    assert tasks["wait"]["then"] == "next"
    assert "wait_route" not in tasks


def test_signal_and_timeout_declared_on_the_step() -> None:
    data = {
        "start_step": "approve",
        "steps": {
            "approve": {
                "node": "await_approval",
                "signal": "order-approved",
                "timeout": "1m30s",
                "condition": {"satisfied": "ship", "timeout": "cancel"},
            },
            "ship": {"node": "ship"},
            "cancel": {"node": "cancel"},
        },
    }
    approve = _tasks(convert_poc_steps(data))["approve"]
    listen = approve["try"][0]["await_approval"]
    assert listen["listen"] == {"to": {"one": {"with": {"type": "order-approved"}}}}
    assert listen["timeout"] == {"after": "PT1M30S"}


def test_signal_without_timeout_is_a_plain_listen() -> None:
    data = {
        "start_step": "wait",
        "steps": {"wait": {"node": "wait_forever", "signal": "go"}},
    }
    wait = _tasks(convert_poc_steps(data))["wait"]
    assert "try" not in wait
    assert "timeout" not in wait
    assert wait["listen"] == {"to": {"one": {"with": {"type": "go"}}}}
    assert wait["then"] == "end"


def test_signal_nodes_can_be_supplied() -> None:
    data = {"start_step": "w", "steps": {"w": {"node": "wait_payment"}}}
    nodes = {"wait_payment": SignalWait(signal="payment-received", timeout="PT10M")}
    wait = _tasks(convert_poc_steps(data, signal_nodes=nodes))["w"]
    listen = wait["try"][0]["wait_payment"]
    assert listen["listen"]["to"]["one"]["with"]["type"] == "payment-received"
    assert listen["timeout"] == {"after": "PT10M"}
    # Without the catalogue entry it is an ordinary function.
    assert _tasks(convert_poc_steps(data))["w"] == {"call": "wait_payment", "then": "end"}


def test_route_name_never_clashes_with_a_step() -> None:
    data = {
        "start_step": "a",
        "steps": {
            "a": {"node": "wait_answer", "condition": {"satisfied": "a_route"}},
            "a_route": {"node": "notify"},
        },
    }
    tasks = _tasks(convert_poc_steps(data))
    assert tasks["a"]["then"] == "a_route_2"
    assert _cases(tasks["a_route_2"])["satisfied"]["then"] == "a_route"


def test_unreachable_steps_are_kept_after_the_flow() -> None:
    data = {
        "start_step": "a",
        "steps": {"orphan": {"node": "x"}, "a": {"node": "y", "go_to": "b"}, "b": {"node": "z"}},
    }
    assert [next(iter(entry)) for entry in convert_poc_steps(data)["do"]] == ["a", "b", "orphan"]


# ---------------------------------------------------------------------------- rejections


def test_unknown_go_to_is_rejected_with_the_step_name() -> None:
    data = _load(INPUTS / "unknown-goto.steps.yaml")
    with pytest.raises(ConversionError) as caught:
        convert_poc_steps(data)
    assert caught.value.path == "$.steps.step_2.go_to"
    assert str(caught.value) == (
        "$.steps.step_2.go_to: step 'step_2' goes to unknown step 'step_9'"
    )


def test_unknown_condition_target_is_rejected() -> None:
    data = {
        "start_step": "s",
        "steps": {"s": {"node": "wait_answer", "condition": {"timeout": "nowhere"}}},
    }
    with pytest.raises(ConversionError, match=r"^\$\.steps\.s\.condition\.timeout: .*'nowhere'"):
        convert_poc_steps(data)


def test_unknown_condition_key_is_rejected() -> None:
    data = {
        "start_step": "s",
        "steps": {"s": {"node": "wait_answer", "condition": {"maybe": "s"}}},
    }
    with pytest.raises(ConversionError) as caught:
        convert_poc_steps(data)
    assert caught.value.path == "$.steps.s.condition.maybe"
    assert "step 's' has unknown condition key 'maybe'" in str(caught.value)
    assert "satisfied, not_satisfied, timeout" in str(caught.value)


def test_unknown_start_step_is_rejected() -> None:
    data = {"start_step": "step_0", "steps": {"step_1": {"node": "send_message"}}}
    with pytest.raises(ConversionError, match=r"^\$\.start_step: start step 'step_0'"):
        convert_poc_steps(data)


def test_missing_start_step_that_cannot_be_inferred_is_rejected() -> None:
    data = {"steps": {"a": {"node": "x"}, "b": {"node": "y"}}}
    with pytest.raises(ConversionError, match=r"^\$\.start_step: missing start step.*a, b"):
        convert_poc_steps(data)


def test_cycles_are_rejected_like_the_poc_does() -> None:
    data = {
        "start_step": "a",
        "steps": {
            "a": {"node": "x", "go_to": "b"},
            "b": {"node": "wait_answer", "condition": {"timeout": "a", "satisfied": "c"}},
            "c": {"node": "y"},
        },
    }
    with pytest.raises(ConversionError, match=r"^\$\.steps: steps form a cycle: a -> b -> a$"):
        convert_poc_steps(data)


@pytest.mark.parametrize(
    ("steps", "path"),
    [
        ({"s": {"node": "x", "goto": "s"}}, "$.steps.s.goto"),
        ({"s": {"go_to": ""}}, "$.steps.s.node"),
        ({"s": {"node": ""}}, "$.steps.s.node"),
        ({"s": "send_message"}, "$.steps.s"),
        ({"s": {"node": "x", "condition": ["satisfied"]}}, "$.steps.s.condition"),
        ({"s": {"node": "x", "timeout": "PT1M"}}, "$.steps.s.timeout"),
        ({"s": {"node": "wait_answer", "timeout": "soon"}}, "$.steps.s.timeout"),
        ({"s": {"node": "wait_answer", "with": {"a": 1}}}, "$.steps.s.with"),
        ({"s": {"node": "x", "with": "a"}}, "$.steps.s.with"),
        ({"s.1": {"node": "x", "go_to": "nope"}}, '$.steps["s.1"].go_to'),
    ],
)
def test_malformed_steps_are_rejected_at_their_path(steps: dict[str, Any], path: str) -> None:
    with pytest.raises(ConversionError) as caught:
        convert_poc_steps({"steps": steps})
    assert caught.value.path == path
    assert str(caught.value).startswith(path + ": ")


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({}, "$.steps"),
        ({"steps": {}}, "$.steps"),
        ({"steps": [], "start_step": "a"}, "$.steps"),
        ({"steps": {"a": {"node": "x"}}, "startStep": "a"}, "$.startStep"),
        ({"steps": {"a": {"node": "x"}}, "version": "v1"}, "$.version"),
    ],
)
def test_malformed_step_maps_are_rejected(data: dict[str, Any], path: str) -> None:
    with pytest.raises(ConversionError) as caught:
        convert_poc_steps(data)
    assert caught.value.path == path


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("PT1M", "PT1M"),
        ("pt30s", "PT30S"),
        ("P1DT2H", "P1DT2H"),
        ("1m", "PT1M"),
        ("1h30m", "PT1H30M"),
        ("1500ms", "PT1.5S"),
        (45, "PT45S"),
        (3600, "PT1H"),
        (0, "PT0S"),
    ],
)
def test_timeouts_accept_iso_go_and_seconds(value: object, expected: str) -> None:
    data = {"steps": {"w": {"node": "wait_answer", "timeout": value}}}
    listen = convert_poc_steps(data)["do"][0]["w"]["try"][0]["wait_answer"]
    assert listen["timeout"] == {"after": expected}


def test_sleep_step_must_not_take_arguments() -> None:
    with pytest.raises(
        ConversionError, match=r"\$\.steps\.s1\.sleep: step 's1': a sleep step only waits"
    ):
        convert_poc_steps(
            {
                "start_step": "s1",
                "steps": {"s1": {"node": "pause", "sleep": "PT5S", "with": {"a": 1}}},
            }
        )
