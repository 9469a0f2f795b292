"""The `tflow` command line, run as a person or a script runs it."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml
from engine_harness import EngineHarness
from temporalio.client import WorkflowFailureError

from tflow_devstack.temporal import TemporalServer
from tflow_devstack.tools import REPO_ROOT
from tflow_workers.dsl.yamlio import load_yaml
from tflow_workers.engine.model import RunInput
from tflow_workers.engine.starter import start_run

pytestmark = pytest.mark.integration

SAMPLES = REPO_ROOT / "manifests" / "samples"


def tflow(*args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "tflow_cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"tflow {' '.join(args)}: {result.returncode}\n{result.stderr}")
    return result


async def atflow(*args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    """`tflow` without blocking the event loop the test's in-process worker runs on."""
    return await asyncio.to_thread(tflow, *args, check=check)


HELLO = {
    "document": {"dsl": "1.0.0", "namespace": "demo", "name": "hello", "version": "1.0.0"},
    "do": [
        {"greet": {"set": {"greeting": '${ "hello, " + .name }'}}},
        {"pause": {"wait": "PT0.1S"}},
    ],
}


def test_validate_samples_and_mixed_manifests() -> None:
    result = tflow("validate", *sorted(str(p) for p in SAMPLES.glob("*.yaml")), check=True)
    assert "order-workflow.yaml#2: valid" in result.stdout  # after its Secret
    # route.yaml holds EventRoutes only: nothing to validate there, and nothing wrong.
    assert "route.yaml" not in result.stdout


def test_validate_reports_every_error_with_its_path(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump_all(
            [
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}},
                {
                    "apiVersion": "temporalflow.dev/v1alpha1",
                    "kind": "WorkflowDefinition",
                    "metadata": {"name": "broken"},
                    "spec": {
                        "taskQueue": "q",
                        "workflow": {
                            "document": {
                                "dsl": "1.0.0",
                                "namespace": "a",
                                "name": "b",
                                "version": "1.0.0",
                            },
                            "do": [
                                {"check": {"switch": [{"x": {"when": ".a", "then": "shipp"}}]}},
                                {"ship": {"wait": "PT5X"}},
                            ],
                        },
                    },
                },
            ]
        )
    )
    result = tflow("validate", str(bad))
    assert result.returncode == 1
    assert f"{bad}#2: do[0].check.switch[0].then: no task named 'shipp'" in result.stdout
    assert f"{bad}#2: do[1].ship.wait" in result.stdout
    as_json = json.loads(tflow("validate", str(bad), "-o", "json").stdout)
    assert [r.get("valid") for r in as_json if "valid" in r] == [False]


def test_run_on_a_configured_server_prints_json(temporal: TemporalServer, tmp_path: Path) -> None:
    doc = tmp_path / "hello.yaml"
    doc.write_text(yaml.safe_dump(HELLO))
    result = tflow(
        "run",
        str(doc),
        "--input",
        '{"name": "flow"}',
        "-o",
        "json",
        "--address",
        temporal.address,
        check=True,
    )
    report = json.loads(result.stdout)
    assert report["status"] == "completed"
    assert report["output"] == {"greeting": "hello, flow"}
    assert [(e["name"], e["outcome"]) for e in report["log"]] == [
        ("greet", "completed"),
        ("pause", "completed"),
    ]


def test_run_reports_a_fault(temporal: TemporalServer, tmp_path: Path) -> None:
    doc = tmp_path / "fail.yaml"
    doc.write_text(
        yaml.safe_dump(
            {
                **HELLO,
                "do": [
                    {
                        "nope": {
                            "raise": {
                                "error": {"type": "https://x/err", "status": 418, "title": "teapot"}
                            }
                        }
                    }
                ],
            }
        )
    )
    result = tflow("run", str(doc), "--address", temporal.address)
    assert result.returncode == 1
    assert "faulted" in result.stdout
    assert "teapot" in result.stdout
    assert "nope" in result.stdout  # the task log table


def test_run_without_a_server_starts_an_ephemeral_one(tmp_path: Path) -> None:
    doc = tmp_path / "hello.yaml"
    doc.write_text(yaml.safe_dump(HELLO))
    result = tflow("run", str(doc), "--input", '{"name": "local"}', "-o", "json", check=True)
    assert json.loads(result.stdout)["output"] == {"greeting": "hello, local"}


def test_run_refuses_an_invalid_document_before_starting(tmp_path: Path) -> None:
    doc = tmp_path / "bad.yaml"
    doc.write_text(yaml.safe_dump({**HELLO, "do": [{"a": {"swich": []}}]}))
    result = tflow("run", str(doc), "--address", "127.0.0.1:1")
    assert result.returncode == 1
    assert "do[0].a" in result.stderr
    assert "switch" in result.stderr


def test_convert_then_validate_and_graph(tmp_path: Path) -> None:
    converted = tflow(
        "convert",
        str(SAMPLES / "seed-formats" / "abandoned-cart.steps.yaml"),
        "--name",
        "cart",
        check=True,
    ).stdout
    out = tmp_path / "cart.yaml"
    out.write_text(converted)
    assert load_yaml(converted)["document"]["name"] == "cart"
    assert tflow("validate", str(out), check=True).stdout.strip() == f"{out}: valid"
    mermaid = tflow("graph", str(out), check=True).stdout
    assert mermaid.startswith("flowchart TD")
    assert "step_2_route" in mermaid
    svg = tmp_path / "cart.svg"
    tflow("graph", str(out), "--out", str(svg), check=True)
    root = ET.fromstring(svg.read_text())
    assert root.tag.endswith("svg")
    assert "step_4" in svg.read_text()


def test_convert_reports_bad_input(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"steps": {"s1": {"node": "a", "go_to": "s9"}}}))
    result = tflow("convert", str(bad))
    assert result.returncode == 1
    assert "goes to unknown step 's9'" in result.stderr


def test_help_everywhere() -> None:
    for args in (
        ["--help"],
        ["run", "--help"],
        ["validate", "--help"],
        ["convert", "--help"],
        ["graph", "--help"],
    ):
        result = tflow(*args, check=True)
        assert "usage: tflow" in result.stdout


async def test_runs_list_show_signal_cancel_and_send(
    engine: EngineHarness, temporal: TemporalServer
) -> None:
    marker = uuid.uuid4().hex[:8]
    document = {
        "document": {
            "dsl": "1.0.0",
            "namespace": "cli",
            "name": f"wait-{marker}",
            "version": "1.0.0",
        },
        "do": [
            {"prepare": {"set": {"ok": True}}},
            {"approval": {"listen": {"to": {"one": {"with": {"type": "approve"}}}}}},
        ],
    }
    first = await start_run(engine.client, RunInput(document=document), engine.task_queue)
    second = await start_run(engine.client, RunInput(document=document), engine.task_queue)
    address = ("--address", temporal.address)
    router = ("--router-task-queue", engine.task_queue + "-router")

    async def as_json(*args: str) -> Any:
        return json.loads((await atflow(*args, "-o", "json", *address, check=True)).stdout)

    for _ in range(50):  # visibility is eventually consistent
        listed = await as_json("runs", "list", "--definition", f"cli/wait-{marker}")
        if len(listed) == 2:
            break
        await asyncio.sleep(0.2)
    assert sorted(r["workflowId"] for r in listed) == sorted([first.id, second.id])
    assert {r["status"] for r in listed} == {"running"}

    shown = await as_json("runs", "show", first.id)
    assert shown["phase"] == "waiting"
    assert [e["name"] for e in shown["log"]] == ["prepare", "approval"]
    table = (await atflow("runs", "show", first.id, *address, check=True)).stdout
    assert "approval" in table
    assert "running" in table

    await atflow("signal", first.id, "approve", "--input", '{"by": "cli"}', *address, check=True)
    assert await first.result() == [{"by": "cli"}]
    await atflow("cancel", second.id, *address, check=True)
    with pytest.raises(WorkflowFailureError):
        await second.result()
    missing = await atflow("runs", "show", "no-such-run", *address)
    assert missing.returncode == 1
    assert "no-such-run" in missing.stderr
    # A run no worker serves: its state, and why there is no task log.
    unserved_queue = f"{engine.task_queue}-nobody"
    unserved = await start_run(engine.client, RunInput(document=document), unserved_queue)
    shown = await as_json("runs", "show", unserved.id)
    assert (shown["status"], shown["log"]) == ("running", None)
    assert shown["note"] == f"no task log: no worker polls task queue {unserved_queue!r}"
    await unserved.terminate("test done")

    event = ("--type", "incident", "--source", "monitoring", "--id", marker, *router)
    sent = await as_json("send", *event, "--data", '{"message": "down"}')
    assert sent["outcome"] == "started"
    again = await as_json("send", *event)
    assert again["outcome"] == "duplicate"
    await engine.client.get_workflow_handle(sent["workflowId"]).terminate("test done")
