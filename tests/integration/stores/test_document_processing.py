"""The document-processing sample (manifests/samples/document-processing-workflow.yaml),
run as written on the Temporal dev server against moto's S3 and Azurite's blob service:
the same document, the same `document.read`/`document.write` port, two adapters."""

from __future__ import annotations

import json
from typing import Any

import pytest
from engine_harness import EngineHarness
from store_backends import Backend, azure_backend, s3_backend
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError

from tflow_devstack.azurite import AzuriteServer
from tflow_devstack.moto import MotoServer
from tflow_devstack.tools import REPO_ROOT
from tflow_workers.cloudevents import event_workflow_id
from tflow_workers.dsl.yamlio import load_yaml
from tflow_workers.engine.errors import ErrorType
from tflow_workers.engine.model import ACTIVITY_EMIT

pytestmark = pytest.mark.integration

SAMPLE = REPO_ROOT / "manifests" / "samples" / "document-processing-workflow.yaml"

# A minimal two-page PDF, with a binary comment line as real PDFs have.
PDF = (
    b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"
    b"1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
    b"2 0 obj << /Type /Pages /Kids [3 0 R 4 0 R] /Count 2 >> endobj\n"
    b"3 0 obj << /Type /Page /Parent 2 0 R >> endobj\n"
    b"4 0 obj << /Type/Page /Parent 2 0 R >> endobj\n"
    b"trailer << /Root 1 0 R >>\n%%EOF\n"
)
TEXT = "\n  Quarterly report  \nRevenue grew in every region.\n"


def sample_document() -> dict[str, Any]:
    manifest = load_yaml(SAMPLE.read_text())
    assert manifest["kind"] == "WorkflowDefinition"
    document: dict[str, Any] = manifest["spec"]["workflow"]
    return document


def event_input(backend: Backend, key: str) -> dict[str, str]:
    """The seed's `document-added` event data."""
    return {"bucket": backend.container, "key": key, "documentUri": backend.uri(key)}


async def emitted_events(client: Client, handle: WorkflowHandle[Any, Any]) -> list[Any]:
    """The events the run handed to the router (the inputs of its emit activities)."""
    events = []
    async for event in handle.fetch_history_events():
        if event.event_type != EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            continue
        scheduled = event.activity_task_scheduled_event_attributes
        if scheduled.activity_type.name == ACTIVITY_EMIT:
            events.extend(await client.data_converter.decode(scheduled.input.payloads))
    return events


async def process(
    engine: EngineHarness, backend: Backend, key: str, content: bytes, content_type: str
) -> dict[str, Any]:
    backend.put(key, content, content_type, {"uploader": "alice"})
    handle = await engine.start(sample_document(), event_input(backend, key))
    output: dict[str, Any] = await handle.result()

    # The summary is written next to the document, and is the run's output.
    summary_key = f"{key}.summary.json"
    assert output["summaryUri"] == backend.uri(summary_key)
    stored = backend.get(summary_key)
    assert stored.content_type == "application/json"
    assert stored.json() == {k: v for k, v in output.items() if k != "summaryUri"}

    # `document.processed` went to the router, naming the summary.
    (event,) = await emitted_events(engine.client, handle)
    assert event["type"] == "document.processed"
    assert event["data"] == {
        "uri": backend.uri(key),
        "kind": output["kind"],
        "summaryUri": output["summaryUri"],
    }
    router_run = engine.client.get_workflow_handle(event_workflow_id(event["source"], event["id"]))
    assert (await router_run.describe()).task_queue == f"{engine.task_queue}-router"
    await router_run.terminate("test cleanup")
    return output


def expected_pdf(backend: Backend, key: str) -> dict[str, Any]:
    return {
        "uri": backend.uri(key),
        "contentType": "application/pdf",
        "size": len(PDF),
        "sizeClass": "small",
        "metadata": {"uploader": "alice"},
        "kind": "pdf",
        "pdfVersion": "1.7",
        "pages": 2,
        "summaryUri": backend.uri(f"{key}.summary.json"),
    }


async def test_sample_processes_a_pdf_from_s3(
    store_engine: EngineHarness, s3_env: MotoServer, bucket: str
) -> None:
    backend = s3_backend(s3_env, bucket)
    key = "uploads/2026/report.pdf"
    output = await process(store_engine, backend, key, PDF, "application/pdf")
    assert output == expected_pdf(backend, key)


async def test_sample_processes_text_from_s3(
    store_engine: EngineHarness, s3_env: MotoServer, bucket: str
) -> None:
    backend = s3_backend(s3_env, bucket)
    key = "uploads/notes.txt"
    output = await process(store_engine, backend, key, TEXT.encode(), "text/plain")
    assert output == {
        "uri": backend.uri(key),
        "contentType": "text/plain",
        "size": len(TEXT),
        "sizeClass": "small",
        "metadata": {"uploader": "alice"},
        "kind": "text",
        "lines": 3,
        "words": 7,
        "title": "Quarterly report",
        "summaryUri": backend.uri(f"{key}.summary.json"),
    }


async def test_sample_recognises_an_unlabelled_pdf_and_other_content(
    store_engine: EngineHarness, s3_env: MotoServer, bucket: str
) -> None:
    backend = s3_backend(s3_env, bucket)
    # A PDF stored without its content type is still a PDF, by its header.
    output = await process(store_engine, backend, "in/scan", PDF, "application/octet-stream")
    assert (output["kind"], output["pages"]) == ("pdf", 2)
    other = await process(store_engine, backend, "in/photo.png", b"\x89PNG\r\n", "image/png")
    assert other["kind"] == "other"
    assert other["contentType"] == "image/png"


async def test_sample_fails_on_a_missing_document(
    store_engine: EngineHarness, s3_env: MotoServer, bucket: str
) -> None:
    backend = s3_backend(s3_env, bucket)
    handle = await store_engine.start(sample_document(), event_input(backend, "gone.pdf"))
    with pytest.raises(WorkflowFailureError) as caught:
        await handle.result()
    cause = caught.value.cause
    assert isinstance(cause, ApplicationError)
    problem = cause.details[0]
    assert problem["type"] == ErrorType.COMMUNICATION
    assert problem["status"] == 404
    assert backend.uri("gone.pdf") in problem["detail"]


async def test_sample_processes_a_pdf_from_azure_blob(
    store_engine: EngineHarness, azure_env: AzuriteServer, blob_container: str
) -> None:
    backend = azure_backend(azure_env, blob_container)
    key = "uploads/2026/report.pdf"
    output = await process(store_engine, backend, key, PDF, "application/pdf")
    assert output == expected_pdf(backend, key)
    assert output["uri"].startswith("azblob://")


async def test_sample_accepts_the_routes_uri_field(
    store_engine: EngineHarness, azure_env: AzuriteServer, blob_container: str
) -> None:
    """route.yaml hands the document over as `uri`; the seed's event calls it documentUri."""
    backend = azure_backend(azure_env, blob_container)
    backend.put("a.txt", b"one two", "text/plain", {})
    handle = await store_engine.start(sample_document(), {"uri": backend.uri("a.txt")})
    output = await handle.result()
    assert (output["kind"], output["words"]) == ("text", 2)
    assert json.loads(backend.get("a.txt.summary.json").content)["title"] == "one two"
    for event in await emitted_events(store_engine.client, handle):
        router_run = store_engine.client.get_workflow_handle(
            event_workflow_id(event["source"], event["id"])
        )
        await router_run.terminate("test cleanup")
