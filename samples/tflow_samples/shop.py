"""The order tracker's functions (the seed's order and shipping activities): orders,
payments, shipments and an audit trail in PostgreSQL (`SHOP_DATABASE_URL`).

The payment itself is written by the order document with the built-in SQL functions
(keyed by the payment id, so a retried charge never bills twice); `payment-gateway` here
only stands in for the gateway it calls.
"""

from __future__ import annotations

import json
import os
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from tflow_workers.engine.catalog import FunctionError

VALIDATION = "https://serverlessworkflow.io/spec/1.0.0/errors/validation"
COMMUNICATION = "https://serverlessworkflow.io/spec/1.0.0/errors/communication"

SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    order_id text PRIMARY KEY,
    address text NOT NULL,
    amount numeric NOT NULL,
    status text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS payments (
    payment_id text PRIMARY KEY,
    order_id text NOT NULL,
    amount numeric NOT NULL,
    status text NOT NULL,
    attempts int NOT NULL DEFAULT 0,
    charged_at timestamptz
);
CREATE TABLE IF NOT EXISTS shipments (
    order_id text PRIMARY KEY,
    address text NOT NULL,
    status text NOT NULL,
    carrier text
);
CREATE TABLE IF NOT EXISTS order_events (
    id bigserial PRIMARY KEY,
    order_id text NOT NULL,
    event text NOT NULL,
    detail jsonb,
    at timestamptz NOT NULL DEFAULT now()
);
"""


def _connect() -> psycopg.Connection[Any]:
    dsn = os.environ.get("SHOP_DATABASE_URL")
    if not dsn:
        raise FunctionError(
            "SHOP_DATABASE_URL is not set on this worker",
            type="https://serverlessworkflow.io/spec/1.0.0/errors/configuration",
            status=500,
        )
    conn = psycopg.connect(dsn, autocommit=True)
    # Concurrent workers may race to create the tables; the lock makes it one at a time.
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(4242)")
        conn.execute(SCHEMA)
    return conn


def _event(conn: psycopg.Connection[Any], order_id: str, event: str, **detail: Any) -> None:
    conn.execute(
        "INSERT INTO order_events (order_id, event, detail) VALUES (%s, %s, %s)",
        (order_id, event, Jsonb(detail)),
    )


def receive_order(args: dict[str, Any]) -> dict[str, Any]:
    order_id = str(args["orderId"])
    with _connect() as conn:
        inserted = conn.execute(
            "INSERT INTO orders (order_id, address, amount, status) VALUES (%s, %s, %s, 'received')"
            " ON CONFLICT (order_id) DO NOTHING RETURNING order_id",
            (order_id, str(args.get("address", "")), args.get("amount", 0)),
        ).fetchone()
        _event(conn, order_id, "order_received" if inserted else "order_received_again")
    return {"orderId": order_id, "status": "received"}


def validate_order(args: dict[str, Any]) -> dict[str, Any]:
    order_id = str(args["orderId"])
    problems = []
    if not str(args.get("address") or "").strip():
        problems.append("the shipping address is empty")
    if float(args.get("amount") or 0) <= 0:
        problems.append("the amount must be positive")
    with _connect() as conn:
        status = "invalid" if problems else "validated"
        conn.execute(
            "UPDATE orders SET status = %s, updated_at = now() WHERE order_id = %s",
            (status, order_id),
        )
        _event(conn, order_id, f"order_{status}", problems=problems)
    if problems:
        raise FunctionError("; ".join(problems), type=VALIDATION, status=400, title="Invalid order")
    return {"orderId": order_id, "status": "validated"}


def record_order_status(args: dict[str, Any]) -> dict[str, Any]:
    order_id = str(args["orderId"])
    status = str(args["status"])
    with _connect() as conn:
        fields = "status = %s, updated_at = now()"
        params: list[Any] = [status]
        if args.get("address"):
            fields += ", address = %s"
            params.append(str(args["address"]))
        conn.execute(f"UPDATE orders SET {fields} WHERE order_id = %s", (*params, order_id))
        _event(conn, order_id, f"order_{status}", reason=args.get("reason"))
    return {"orderId": order_id, "status": status, "reason": args.get("reason")}


def payment_gateway(args: dict[str, Any]) -> dict[str, Any]:
    """The (simulated) payment gateway: accepts a charge for a payment id.

    It keeps no state; the document records the payment and marks it charged in SQL.
    `failFirstAttempts` makes it answer 503 until the payment's `attempt` passes it, the
    way the seed's flaky gateway does, so retries can be shown.
    """
    attempt = int(args.get("attempt") or 1)
    if attempt <= int(args.get("failFirstAttempts") or 0):
        raise FunctionError(
            f"payment gateway unavailable (attempt {attempt})",
            type=COMMUNICATION,
            status=503,
            title="Service Unavailable",
        )
    return {"paymentId": str(args["paymentId"]), "authorization": f"AUTH-{args['paymentId']}"}


def prepare_package(args: dict[str, Any]) -> dict[str, Any]:
    order_id = str(args["orderId"])
    with _connect() as conn:
        conn.execute(
            "INSERT INTO shipments (order_id, address, status) VALUES (%s, %s, 'prepared')"
            " ON CONFLICT (order_id) DO UPDATE SET address = EXCLUDED.address",
            (order_id, str(args["address"])),
        )
        _event(conn, order_id, "package_prepared")
    return {"orderId": order_id, "package": f"pkg-{order_id}"}


def dispatch_carrier(args: dict[str, Any]) -> dict[str, Any]:
    order_id = str(args["orderId"])
    carrier = str(args.get("carrier") or "acme-post")
    with _connect() as conn:
        conn.execute(
            "UPDATE shipments SET status = 'dispatched', carrier = %s WHERE order_id = %s",
            (carrier, order_id),
        )
        _event(conn, order_id, "carrier_dispatched", carrier=carrier)
    return {"orderId": order_id, "carrier": carrier, "tracking": f"TRK-{order_id}"}


def audit_log(args: dict[str, Any]) -> list[dict[str, Any]]:
    """The order's audit trail, oldest first."""
    with _connect() as conn:
        rows = conn.execute(
            "SELECT event, detail, at FROM order_events WHERE order_id = %s ORDER BY id",
            (str(args["orderId"]),),
        ).fetchall()
    return [
        {"event": e, "detail": json.loads(json.dumps(d)), "at": at.isoformat()} for e, d, at in rows
    ]


FUNCTIONS = {
    "receive-order": receive_order,
    "validate-order": validate_order,
    "record-order-status": record_order_status,
    "payment-gateway": payment_gateway,
    "prepare-package": prepare_package,
    "dispatch-carrier": dispatch_carrier,
    "order-audit-log": audit_log,
}
