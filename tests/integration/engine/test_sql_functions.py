"""The built-in SQL functions, through the engine on the Temporal dev server, against the
real PostgreSQL the suite starts."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from engine_harness import EngineHarness
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError

from tflow_devstack.postgres import PostgresServer
from tflow_workers.dsl.validate import validate_document

pytestmark = pytest.mark.integration

ERRORS = "https://serverlessworkflow.io/spec/1.0.0/errors/"


@pytest.fixture
def table(postgres: PostgresServer) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        conn.execute(
            f"CREATE TABLE {name} (id text PRIMARY KEY, amount numeric NOT NULL, "
            "tags text[], meta jsonb, at timestamptz DEFAULT '2026-01-02T03:04:05Z')"
        )
    yield name
    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        conn.execute(f"DROP TABLE {name}")


@pytest.fixture
def db_secret(tmp_path: Path, postgres: PostgresServer) -> str:
    """A Secret mounted the way Kubernetes does (one file per key) in the engine's
    secrets folder."""
    folder = tmp_path / "secrets" / "shop-db"
    folder.mkdir(parents=True)
    (folder / "uri").write_text(postgres.dsn)
    return "shop-db"


def _doc(*tasks: dict[str, Any], secrets: tuple[str, ...] = ("shop-db",)) -> dict[str, Any]:
    return {
        "document": {"dsl": "1.0.0", "namespace": "test", "name": "sql", "version": "1.0.0"},
        "use": {"secrets": list(secrets)},
        "do": list(tasks),
    }


async def _problem(engine: EngineHarness, doc: dict[str, Any], data: Any = None) -> dict[str, Any]:
    with pytest.raises(WorkflowFailureError) as caught:
        await engine.run(doc, data)
    cause = caught.value.cause
    assert isinstance(cause, ApplicationError)
    problem: dict[str, Any] = cause.details[0]
    return problem


@pytest.mark.runs("call.sql", "use.secrets")
async def test_insert_with_bound_parameters_then_query_rows_as_json(
    engine: EngineHarness, table: str, db_secret: str
) -> None:
    # A value with quotes and a statement terminator is data, never SQL.
    hostile = "o'1; DROP TABLE " + table + "; --"
    doc = _doc(
        {
            "insert": {
                "call": "sql.execute",
                "with": {
                    "secret": db_secret,
                    "statement": f"INSERT INTO {table} (id, amount, tags, meta) "
                    "VALUES (%(id)s, %(amount)s, %(tags)s, %(meta)s)",
                    "parameters": {
                        "id": "${ .id }",
                        "amount": "${ .amount }",
                        "tags": "${ .tags }",
                        "meta": "${ {source: .source} }",
                    },
                },
                "export": {"as": "${ {inserted: .rowCount} }"},
            }
        },
        {
            "read": {
                "call": "sql.query",
                "with": {
                    "secret": db_secret,
                    "query": f"SELECT id, amount, tags, meta, at FROM {table} WHERE id = %s",
                    "parameters": ["${ $workflow.input.id }"],
                },
                "output": {"as": "${ {inserted: $context.inserted, rows: .} }"},
            }
        },
    )
    result = await engine.run(
        doc, {"id": hostile, "amount": 42.5, "tags": ["a", "b"], "source": "web"}
    )
    assert result == {
        "inserted": 1,
        "rows": [
            {
                "id": hostile,
                "amount": 42.5,
                "tags": ["a", "b"],
                "meta": {"source": "web"},
                "at": "2026-01-02T03:04:05+00:00",
            }
        ],
    }


@pytest.mark.runs("call.sql")
async def test_insert_on_conflict_do_nothing_charges_once_across_retries(
    engine: EngineHarness, table: str, db_secret: str
) -> None:
    """The idempotency pattern: the row is keyed by the payment id, so the retried try
    inserts nothing and reports 0 affected rows."""
    doc = _doc(
        {"start": {"set": "${ . }", "export": {"as": "${ {counts: []} }"}}},
        {
            "pay": {
                "try": [
                    {
                        "charge": {
                            "call": "sql.execute",
                            "with": {
                                "secret": db_secret,
                                "statement": f"INSERT INTO {table} (id, amount) VALUES (%s, %s) "
                                "ON CONFLICT (id) DO NOTHING",
                                "parameters": ["${ .paymentId }", "${ .amount }"],
                            },
                            "export": {
                                "as": "${ $context + {counts: ($context.counts + [.rowCount])} }"
                            },
                        }
                    },
                    {
                        "gatewayDown": {
                            "if": "${ ($context.counts | length) < 3 }",
                            "raise": {
                                "error": {
                                    "type": ERRORS + "communication",
                                    "status": 503,
                                }
                            },
                        }
                    },
                ],
                "catch": {
                    "errors": {"with": {"status": 503}},
                    "retry": {"delay": "PT0S", "limit": {"attempt": {"count": 5}}},
                },
                "output": {"as": "${ $context.counts }"},
            }
        },
    )
    assert await engine.run(doc, {"paymentId": "p-1", "amount": 10}) == [1, 0, 0]
    dsn = (Path(engine.definitions).parent / "secrets" / "shop-db" / "uri").read_text()
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(f"SELECT id, amount FROM {table}").fetchall()
    assert len(rows) == 1
    assert rows[0][0] == "p-1"


@pytest.mark.runs("call.sql", "task.try")
async def test_constraint_violation_is_caught_as_a_validation_error(
    engine: EngineHarness, table: str, db_secret: str
) -> None:
    insert = {
        "call": "sql.execute",
        "with": {
            "secret": db_secret,
            "statement": f"INSERT INTO {table} (id, amount) VALUES ('dup', 1)",
        },
    }
    doc = _doc(
        {"first": insert},
        {
            "second": {
                "try": [{"again": insert}],
                "catch": {
                    "errors": {"with": {"type": ERRORS + "validation", "status": 409}},
                    "as": "failure",
                    "do": [{"report": {"set": {"caught": "${ $failure.detail }"}}}],
                },
            }
        },
    )
    result = await engine.run(doc)
    assert "duplicate key value violates unique constraint" in result["caught"]
    assert "SQLSTATE 23505" in result["caught"]


@pytest.mark.runs("call.sql")
async def test_statement_timeout_is_a_timeout_error(engine: EngineHarness, db_secret: str) -> None:
    doc = _doc(
        {
            "slow": {
                "call": "sql.query",
                "with": {"secret": db_secret, "query": "SELECT pg_sleep(5)", "timeout": "PT0.2S"},
            }
        }
    )
    problem = await _problem(engine, doc)
    assert problem["type"] == ERRORS + "timeout"
    assert problem["status"] == 408
    assert problem["instance"] == "/do/0/slow"


@pytest.mark.runs("call.sql")
async def test_errors_never_show_the_connection_string(
    engine: EngineHarness, tmp_path: Path, postgres: PostgresServer
) -> None:
    # A wrong password in a Secret: the server refuses the login or (trust auth) accepts
    # it; either way a bad SQL statement follows, and no error may quote the Secret.
    password = f"pw-{uuid.uuid4().hex}"
    folder = tmp_path / "secrets" / "leaky"
    folder.mkdir(parents=True)
    dsn = postgres.dsn.replace("@", f":{password}@", 1)
    (folder / "uri").write_text(dsn)
    doc = _doc(
        {
            "bad": {
                "call": "sql.query",
                "with": {"secret": "leaky", "query": f"SELECT '{password}' FROM no_such_table"},
            }
        },
        secrets=("leaky",),
    )
    problem = await _problem(engine, doc)
    text = repr(problem)
    assert dsn not in text
    assert password not in text
    assert problem["type"] == ERRORS + "configuration"
    assert 'relation "no_such_table" does not exist' in problem["detail"]


@pytest.mark.runs("call.sql")
async def test_unreachable_database_is_a_communication_error_naming_only_the_secret(
    engine: EngineHarness, tmp_path: Path
) -> None:
    folder = tmp_path / "secrets" / "down"
    folder.mkdir(parents=True)
    (folder / "host").write_text("127.0.0.1")
    (folder / "port").write_text("1")
    (folder / "password").write_text("hunter2-secret")
    doc = _doc(
        {"q": {"call": "sql.query", "with": {"secret": "down", "query": "SELECT 1"}}},
        secrets=("down",),
    )
    problem = await _problem(engine, doc)
    assert problem["type"] == ERRORS + "communication"
    assert problem["status"] == 503
    assert "secret 'down'" in problem["detail"]
    assert "hunter2" not in repr(problem)
    assert "127.0.0.1" not in repr(problem)


@pytest.mark.runs("call.sql")
async def test_interpolated_sql_and_undeclared_secrets_are_refused(
    engine: EngineHarness, db_secret: str
) -> None:
    doc = _doc(
        {
            "q": {
                "call": "sql.query",
                "with": {"secret": "other", "query": '${ "SELECT * FROM t WHERE id = " + .id }'},
            }
        }
    )
    problems = [str(issue) for issue in validate_document(doc)]
    assert "do[0].q.with.secret: no secret named 'other' in use.secrets" in problems
    assert any(
        p.startswith("do[0].q.with.query: the SQL text of sql.query must be literal")
        for p in problems
    ), problems
    # The run refuses the document before any statement reaches the database.
    problem = await _problem(engine, doc, {"id": "1"})
    assert problem["type"] == ERRORS + "validation"
    assert "must be literal" in problem["detail"]
