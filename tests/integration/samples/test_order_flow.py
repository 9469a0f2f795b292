"""The seed's order tracker, end to end on real servers: approval with a 3-minute SLA,
cancel, an address update mid-flight, an idempotent payment in PostgreSQL, shipping as a
child workflow on its own task queue, and every step in the task log."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import samples
from histories import check_replay
from temporalio.client import Client, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from tflow_workers.engine.activities import DirectoryRegistry, EngineActivities, SecretStore
from tflow_workers.engine.model import WORKFLOW_TYPE, RunInput, RunStatus
from tflow_workers.worker import build_worker

pytestmark = pytest.mark.integration

ORDER = "order-workflow.yaml"
SHIPPING = "shipping-workflow.yaml"


class Shop:
    def __init__(self, client: Client, queue: str, shipping_queue: str) -> None:
        self.client = client
        self.queue = queue
        self.shipping_queue = shipping_queue

    async def start(
        self, order_id: str, workflow_id: str | None = None, **extra: Any
    ) -> WorkflowHandle[Any, Any]:
        return await self.client.start_workflow(
            WORKFLOW_TYPE,
            RunInput(
                document=samples.document(ORDER),
                input={"orderId": order_id, "address": "1 Old Road", "amount": 42.5, **extra},
            ),
            id=workflow_id or f"order-{order_id}",
            task_queue=self.queue,
        )


async def _serve(client: Client, task_queue: str, tmp_path: Path, dsn: str) -> AsyncIterator[Shop]:
    definitions = tmp_path / "definitions"
    definitions.mkdir(exist_ok=True)
    # The shipping definition names its own queue; swap in a per-test one.
    text = (samples.SAMPLES / SHIPPING).read_text()
    shipping_queue = f"{task_queue}-shipping"
    (definitions / SHIPPING).write_text(
        text.replace("taskQueue: shipping", f"taskQueue: {shipping_queue}")
    )
    registry = DirectoryRegistry(definitions)
    # The order document's `use.secrets`, mounted the way Kubernetes does (a file per key).
    secret = tmp_path / "secrets" / "shop-database"
    secret.mkdir(parents=True, exist_ok=True)
    (secret / "url").write_text(dsn)
    orders = build_worker(
        client,
        task_queue,
        EngineActivities(
            client=client, definitions=registry, secrets=SecretStore(tmp_path / "secrets")
        ),
        samples.functions(ORDER),
    )
    shipping = build_worker(
        client,
        shipping_queue,
        EngineActivities(client=client, definitions=registry),
        samples.functions(SHIPPING),
    )
    async with orders, shipping:
        yield Shop(client, task_queue, shipping_queue)


@pytest.fixture
async def shop(
    temporal_client: Client, task_queue: str, tmp_path: Path, shop_db: str
) -> AsyncIterator[Shop]:
    async for s in _serve(temporal_client, task_queue, tmp_path, shop_db):
        yield s


def _rows(dsn: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql, params).fetchall()


async def _wait_for_task(handle: WorkflowHandle[Any, Any], task: str) -> None:
    for _ in range(100):
        status = await handle.query("status", result_type=RunStatus)
        if status.current_task == task:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the run never reached {task}")


async def test_approved_order_with_address_update(shop: Shop, shop_db: str) -> None:
    order_id = f"o-{uuid.uuid4().hex[:8]}"
    handle = await shop.start(order_id)
    await _wait_for_task(handle, "review")
    await handle.signal("update-address", {"address": "9 New Street"})
    await handle.signal("approve", {"by": "ops"})
    result = await handle.result()

    assert result["status"] == "completed"
    assert result["address"] == "9 New Street"
    assert result["payment"] == {"paymentId": f"{order_id}-payment", "status": "charged"}
    assert result["shipment"]["carrier"] == "acme-post"

    assert _rows(shop_db, "SELECT status, address FROM orders WHERE order_id = %s", order_id) == [
        ("completed", "9 New Street")
    ]
    assert _rows(shop_db, "SELECT status FROM payments WHERE order_id = %s", order_id) == [
        ("charged",)
    ]
    # The child shipped to the address that arrived mid-flight.
    assert _rows(
        shop_db, "SELECT address, status FROM shipments WHERE order_id = %s", order_id
    ) == [("9 New Street", "dispatched")]
    child = shop.client.get_workflow_handle(f"order-{order_id}/do.6.ship")
    assert (await child.describe()).task_queue == shop.shipping_queue

    status = await handle.query("status", result_type=RunStatus)
    assert [(e.name, e.outcome) for e in status.log] == [
        ("receiveOrder", "completed"),
        ("validateOrder", "completed"),
        ("awaitApproval", "completed"),
        ("review", "completed"),
        ("decide", "completed"),
        ("chargePayment", "completed"),
        ("recordPayment", "completed"),
        ("charge", "completed"),
        ("countAttempt", "completed"),
        ("callGateway", "completed"),
        ("markCharged", "completed"),
        ("auditPayment", "completed"),
        ("ship", "completed"),
        ("complete", "completed"),
    ]
    await check_replay(handle, "order-approved")


async def test_payment_retried_never_charged_twice(shop: Shop, shop_db: str) -> None:
    order_id = f"o-{uuid.uuid4().hex[:8]}"
    handle = await shop.start(order_id, simulateGatewayFailures=2)
    await _wait_for_task(handle, "review")
    await handle.signal("approve", None)
    result = await handle.result()
    assert result["payment"]["status"] == "charged"
    assert _rows(
        shop_db, "SELECT status, attempts FROM payments WHERE order_id = %s", order_id
    ) == [("charged", 3)]
    status = await handle.query("status", result_type=RunStatus)
    # The try block ran three times; the gateway answered 503 twice.
    charges = [e for e in status.log if e.name == "callGateway"]
    assert [e.outcome for e in charges] == ["faulted", "faulted", "completed"]
    assert [e.outcome for e in status.log if e.name == "markCharged"] == ["completed"]
    assert charges[0].error is not None
    assert charges[0].error.status == 503
    events = [
        r[0]
        for r in _rows(
            shop_db, "SELECT event FROM order_events WHERE order_id = %s ORDER BY id", order_id
        )
    ]
    assert events.count("payment_charged") == 1
    await check_replay(handle, "order-payment-retried")


async def test_an_order_paid_again_is_not_charged_twice(shop: Shop, shop_db: str) -> None:
    """A second run for an order already paid (the same payment id) finds the payment
    charged: its INSERT adds nothing, the gateway is not called, and it reports
    already_charged."""
    order_id = f"o-{uuid.uuid4().hex[:8]}"
    first = await shop.start(order_id)
    await _wait_for_task(first, "review")
    await first.signal("approve", None)
    assert (await first.result())["payment"]["status"] == "charged"

    again = await shop.start(order_id, workflow_id=f"order-{order_id}-again")
    await _wait_for_task(again, "review")
    await again.signal("approve", None)
    result = await again.result()
    assert result["payment"] == {"paymentId": f"{order_id}-payment", "status": "already_charged"}
    assert _rows(
        shop_db, "SELECT status, attempts FROM payments WHERE order_id = %s", order_id
    ) == [("charged", 2)]
    status = await again.query("status", result_type=RunStatus)
    gateway = [e.outcome for e in status.log if e.name == "callGateway"]
    assert gateway == ["skipped"], status.log
    events = [
        r[0]
        for r in _rows(
            shop_db, "SELECT event FROM order_events WHERE order_id = %s ORDER BY id", order_id
        )
    ]
    assert events.count("payment_charged") == 1
    assert events.count("payment_already_charged") == 1


async def test_cancel_signal_cancels_without_charging(shop: Shop, shop_db: str) -> None:
    order_id = f"o-{uuid.uuid4().hex[:8]}"
    handle = await shop.start(order_id)
    await _wait_for_task(handle, "review")
    await handle.signal("cancel", {"reason": "customer changed mind"})
    result = await handle.result()
    assert result == {"orderId": order_id, "status": "cancelled", "reason": "cancelled on request"}
    assert _rows(shop_db, "SELECT count(*) FROM payments WHERE order_id = %s", order_id) == [(0,)]
    assert _rows(shop_db, "SELECT status FROM orders WHERE order_id = %s", order_id) == [
        ("cancelled",)
    ]
    await check_replay(handle, "order-cancelled")


async def test_invalid_order_faults_with_validation_error(shop: Shop) -> None:
    from temporalio.client import WorkflowFailureError

    handle = await shop.client.start_workflow(
        WORKFLOW_TYPE,
        RunInput(
            document=samples.document(ORDER),
            input={"orderId": f"o-{uuid.uuid4().hex[:8]}", "address": "", "amount": 0},
        ),
        id=f"order-invalid-{uuid.uuid4().hex[:8]}",
        task_queue=shop.queue,
    )
    with pytest.raises(WorkflowFailureError) as caught:
        await handle.result()
    cause = caught.value.cause
    assert isinstance(cause, ApplicationError)
    detail = cause.details[0]
    assert detail["type"] == "https://serverlessworkflow.io/spec/1.0.0/errors/validation"
    assert detail["detail"] == "the shipping address is empty; the amount must be positive"
    assert detail["instance"] == "/do/1/validateOrder"
    await check_replay(handle, "order-invalid")


async def test_approval_sla_auto_cancels_after_three_minutes(
    time_skipping: WorkflowEnvironment, task_queue: str, tmp_path: Path, shop_db: str
) -> None:
    """On the time-skipping test server, the 3-minute wait passes in a moment."""
    async for shop in _serve(time_skipping.client, task_queue, tmp_path, shop_db):
        order_id = f"o-{uuid.uuid4().hex[:8]}"
        handle = await shop.start(order_id)
        result = await handle.result()
        assert result == {
            "orderId": order_id,
            "status": "cancelled",
            "reason": "no approval within the 3-minute SLA",
        }
        status = await handle.query("status", result_type=RunStatus)
        review = next(e for e in status.log if e.name == "review")
        assert review.outcome == "faulted"
        assert review.error is not None
        assert review.error.status == 408
        assert review.ended_at is not None
        assert review.ended_at - review.started_at >= timedelta(minutes=3)
        await check_replay(handle, "order-sla-expired")
