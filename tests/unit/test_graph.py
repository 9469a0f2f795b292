"""Pictures of SW 1.0 documents: exact Mermaid output, and SVG that parses, names every
task and does not change between runs."""

from __future__ import annotations

import copy
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from tflow_workers.convert import convert
from tflow_workers.dsl.yamlio import load_yaml
from tflow_workers.graph import to_mermaid, to_svg

INPUTS = Path(__file__).parent / "convert" / "inputs"
SVG_NS = "{http://www.w3.org/2000/svg}"


def _doc(name: str, tasks: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "document": {"dsl": "1.0.0", "namespace": "test", "name": name, "version": "1.0.0"},
        "do": tasks,
    }


SWITCH_DOC = _doc(
    "greet",
    [
        {
            "check": {
                "switch": [
                    {"big": {"when": '${ .n > 10 and .who != "" }', "then": "shout"}},
                    {"default": {"then": "whisper"}},
                ]
            }
        },
        {"shout": {"set": {"msg": "${ .who | ascii_upcase }"}, "then": "end"}},
        {"whisper": {"call": "log", "with": {"level": "debug"}}},
    ],
)

NESTED_DOC = _doc(
    "nested",
    [
        {
            "prepare": {
                "do": [
                    {"load": {"call": "http", "with": {"method": "get", "endpoint": "https://x"}}},
                    {
                        "bail": {
                            "switch": [{"empty": {"when": "${ .items == [] }", "then": "exit"}}]
                        }
                    },
                    {"count": {"set": {"n": "${ .items | length }"}}},
                ]
            }
        },
        {
            "visit": {
                "for": {"each": "item", "in": "${ .items }"},
                "do": [{"notify": {"emit": {"event": {"with": {"type": "seen", "source": "x"}}}}}],
            }
        },
        {
            "both": {
                "fork": {
                    "branches": [
                        {"left": {"wait": "PT1S"}},
                        {"right": {"run": {"workflow": {"namespace": "x", "name": "y"}}}},
                    ]
                }
            }
        },
        {
            "guard": {
                "try": [{"risky": {"call": "risky"}}],
                "catch": {
                    "errors": {
                        "with": {
                            "type": "https://serverlessworkflow.io/spec/1.0.0/errors/communication"
                        }
                    }
                },
            }
        },
        {"fail": {"raise": {"error": {"type": "https://x/y", "status": 500}}}},
    ],
)

LOOP_DOC = _doc(
    "loop",
    [
        {"init": {"set": {"n": 0}}},
        {"bump": {"set": {"n": "${ .n + 1 }"}}},
        {"again": {"switch": [{"more": {"when": "${ .n < 3 }", "then": "bump"}}]}},
        {"spin": {"for": {"in": "${ [] }"}, "do": []}},
    ],
)


def test_mermaid_switch_document() -> None:
    assert to_mermaid(SWITCH_DOC) == (
        "flowchart TD\n"
        '    start(["Start"])\n'
        '    t0{"check<br/>switch"}\n'
        '    t1["shout<br/>set"]\n'
        '    t2["whisper<br/>call: log"]\n'
        '    stop(["End"])\n'
        "    start --> t0\n"
        '    t0 -->|".n #gt; 10 and .who != #quot;#quot;"| t1\n'
        '    t0 -->|"default"| t2\n'
        "    t1 --> stop\n"
        "    t2 --> stop\n"
    )


def test_mermaid_nested_document() -> None:
    assert to_mermaid(NESTED_DOC) == (
        "flowchart TD\n"
        '    start(["Start"])\n'
        '    t0["prepare<br/>do"]\n'
        '    subgraph t0_do["prepare"]\n'
        '        t0_0["load<br/>call: http"]\n'
        '        t0_1{"bail<br/>switch"}\n'
        '        t0_2["count<br/>set"]\n'
        "    end\n"
        '    t1["visit<br/>for"]\n'
        '    subgraph t1_for["visit: body"]\n'
        '        t1_0["notify<br/>emit"]\n'
        "    end\n"
        '    t2["both<br/>fork"]\n'
        '    subgraph t2_fork["both: branches"]\n'
        '        t2_0["left<br/>wait"]\n'
        '        t2_1["right<br/>run: workflow"]\n'
        "    end\n"
        '    t3["guard<br/>try"]\n'
        '    subgraph t3_try["guard: try"]\n'
        '        t3_0["risky<br/>call: risky"]\n'
        "    end\n"
        '    subgraph t3_catch["guard: catch"]\n'
        '        t3_c("catch<br/>communication")\n'
        "    end\n"
        '    t4["fail<br/>raise"]\n'
        '    stop(["End"])\n'
        "    start --> t0\n"
        "    t0 --> t0_0\n"
        "    t0_0 --> t0_1\n"
        # `exit` leaves the nested `do` and continues after it.
        '    t0_1 -->|".items == []"| t1\n'
        '    t0_1 -->|"no match"| t0_2\n'
        "    t0_2 --> t1\n"
        '    t1 -->|"each"| t1_0\n'
        '    t1 -->|"done"| t2\n'
        "    t1_0 --> t1\n"
        "    t2 --> t2_0\n"
        "    t2 --> t2_1\n"
        "    t2_0 --> t3\n"
        "    t2_1 --> t3\n"
        "    t3 --> t3_0\n"
        "    t3_0 --> t4\n"
        '    t3 -.->|"error"| t3_c\n'
        "    t3_c --> t4\n"
    )


def test_mermaid_of_the_converted_abandoned_cart() -> None:
    data = load_yaml((INPUTS / "abandoned-cart.steps.json").read_text(encoding="utf-8"))
    picture = to_mermaid(convert(data))
    assert '    t1_0["wait_answer<br/>listen: one"]\n' in picture
    assert '    t1_c("catch<br/>timeout")\n' in picture
    assert '    t2 -->|".eventType == #quot;condition_timeout#quot;"| t4\n' in picture
    assert '    t2 -->|"default"| stop\n' in picture


def test_then_jumps_backwards_and_to_the_end() -> None:
    picture = to_mermaid(LOOP_DOC)
    assert '    t2 -->|".n #lt; 3"| t1\n' in picture
    assert '    t2 -->|"no match"| t3\n' in picture
    # An empty loop body loops on itself.
    assert '    t3 -->|"each"| t3\n' in picture
    assert '    t3 -->|"done"| stop\n' in picture


def test_fork_compete_and_switch_then() -> None:
    doc = _doc(
        "race",
        [
            {"pick": {"switch": [{"a": {"when": "${ .a }", "then": "race"}}], "then": "end"}},
            {
                "race": {
                    "fork": {
                        "compete": True,
                        "branches": [{"x": {"call": "x"}}, {"y": {"call": "y"}}],
                    }
                }
            },
        ],
    )
    picture = to_mermaid(doc)
    assert '    t1["race<br/>fork: compete"]\n' in picture
    assert '    t0 -->|"no match"| stop\n' in picture


def test_unknown_then_target_is_an_error() -> None:
    doc = _doc("bad", [{"a": {"set": {"x": 1}, "then": "nowhere"}}])
    with pytest.raises(ValueError, match="task 'a': 'then' target 'nowhere'"):
        to_mermaid(doc)
    with pytest.raises(ValueError, match="expected a single-key mapping"):
        to_svg(_doc("bad", [{"a": {"set": {}}, "b": {"set": {}}}]))


def _task_names(tasks: list[dict[str, Any]]) -> list[str]:
    names: list[str] = []
    for entry in tasks:
        ((name, task),) = entry.items()
        names.append(name)
        for nested in (task.get("do"), task.get("try"), task.get("fork", {}).get("branches")):
            if isinstance(nested, list):
                names.extend(_task_names(nested))
        names.extend(_task_names(task.get("catch", {}).get("do", [])))
    return names


def _converted(name: str) -> dict[str, Any]:
    data = load_yaml((INPUTS / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return convert(data)


@pytest.mark.parametrize(
    "document",
    [
        SWITCH_DOC,
        NESTED_DOC,
        LOOP_DOC,
        _converted("abandoned-cart.steps.json"),
        _converted("diamond.graph.json"),
        _converted("flov7-graph.json"),
        _doc("escapes", [{'a <b> & "c"': {"set": {"x": 1}}}]),
    ],
    ids=["switch", "nested", "loop", "abandoned-cart", "diamond", "flov7", "escapes"],
)
def test_svg_parses_and_names_every_task(document: dict[str, Any]) -> None:
    svg = to_svg(document)
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG_NS}svg"
    assert root.findtext(f"{SVG_NS}title") == document["document"]["name"]
    texts = [element.text for element in root.iter(f"{SVG_NS}text")]
    for name in _task_names(document["do"]):
        assert name in texts
    assert "Start" in texts
    assert "End" in texts
    assert float(root.attrib["width"]) > 0
    assert float(root.attrib["height"]) > 0


def test_svg_is_deterministic() -> None:
    document = _converted("abandoned-cart.steps.json")
    first = to_svg(document)
    assert to_svg(copy.deepcopy(document)) == first
    assert to_svg(document) == first


def test_svg_ranks_flow_top_down() -> None:
    root = ET.fromstring(to_svg(_converted("diamond.graph.json")))

    def top(node_id: str) -> float:
        group = root.find(f"{SVG_NS}g[@id='node-{node_id}']")
        assert group is not None
        rect = group.find(f"{SVG_NS}rect")
        assert rect is not None
        return float(rect.attrib["y"])

    # start, A, fork, {B, C}, D, end
    assert top("start") < top("t0") < top("t1") < top("t1_0") < top("t2") < top("stop")
    assert top("t1_0") == top("t1_1")
    # One arrow per edge: Start-A, A-fork, fork-B, fork-C, B-D, C-D, D-End.
    assert len(root.findall(f"{SVG_NS}path")) == 7
