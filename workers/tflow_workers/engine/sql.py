"""`sql.query` and `sql.execute`, the built-in SQL functions every worker serves
(PostgreSQL, through psycopg). See docs/sql-functions.md.

    sql.query    {secret, query, parameters?, timeout?, maxRows?}  -> [{column: value, ...}]
    sql.execute  {secret, statement, parameters?, timeout?}        -> {rowCount}

The connection comes from a Secret the document lists in `use.secrets`, read here from
the worker's mounted Secrets: the connection string never passes through the call's
arguments, the run's task log or an error. Values reach the server only as bound
parameters (psycopg's `%s` / `%(name)s` placeholders); the SQL text is literal, which the
validator enforces.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import ipaddress
import uuid
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from tflow_workers.dsl.durations import parse_duration
from tflow_workers.dsl.validate import SQL_TEXT_FIELDS
from tflow_workers.engine.activities import SecretStore
from tflow_workers.engine.catalog import Function, FunctionError
from tflow_workers.engine.errors import ErrorType

SQL_QUERY = "sql.query"
SQL_EXECUTE = "sql.execute"
SQL_FUNCTIONS = (SQL_QUERY, SQL_EXECUTE)

DEFAULT_TIMEOUT_MS = 30_000
DEFAULT_MAX_ROWS = 1000
CONNECT_TIMEOUT_S = 10
# Secret keys that hold a whole connection string, in the order they are tried
# (CloudNativePG's and most operators' Secrets carry `uri`).
URI_KEYS = ("uri", "url", "dsn")
PART_KEYS = ("host", "port", "dbname", "user", "password", "sslmode")

_ALLOWED = {
    SQL_QUERY: {"secret", "query", "parameters", "timeout", "maxRows"},
    SQL_EXECUTE: {"secret", "statement", "parameters", "timeout"},
}


def _configuration(detail: str) -> FunctionError:
    return FunctionError(detail, type=ErrorType.CONFIGURATION, status=400, title="Invalid SQL call")


class SqlFunctions:
    """The SQL functions of one worker, bound to the Secrets it has mounted."""

    def __init__(self, secrets: SecretStore) -> None:
        self.secrets = secrets

    def functions(self) -> dict[str, Function]:
        return {SQL_QUERY: self.query, SQL_EXECUTE: self.execute}

    def query(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        _check_fields(SQL_QUERY, args)
        max_rows = args.get("maxRows", DEFAULT_MAX_ROWS)
        if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows <= 0:
            raise _configuration(f"sql.query: maxRows must be a positive integer, not {max_rows!r}")

        def run(cur: psycopg.Cursor[dict[str, Any]]) -> list[dict[str, Any]]:
            if cur.description is None:
                raise _configuration(
                    "sql.query: the query returned no rows description (use sql.execute for "
                    "statements without a result)"
                )
            # One more than allowed tells a full result from a truncated one.
            rows = cur.fetchmany(max_rows + 1)
            if len(rows) > max_rows:
                raise FunctionError(
                    f"sql.query: the query returned more than maxRows ({max_rows}) rows; "
                    "narrow it, page it with LIMIT/OFFSET, or raise maxRows",
                    type=ErrorType.RUNTIME,
                    status=413,
                    title="Too many rows",
                )
            return [{k: to_json(v) for k, v in row.items()} for row in rows]

        result: list[dict[str, Any]] = self._run(SQL_QUERY, args, run)
        return result

    def execute(self, args: dict[str, Any]) -> dict[str, Any]:
        _check_fields(SQL_EXECUTE, args)

        def run(cur: psycopg.Cursor[dict[str, Any]]) -> dict[str, Any]:
            return {"rowCount": max(cur.rowcount, 0)}

        result: dict[str, Any] = self._run(SQL_EXECUTE, args, run)
        return result

    def _run(self, function: str, args: dict[str, Any], handle: Any) -> Any:
        text_field = SQL_TEXT_FIELDS[function]
        sql = args.get(text_field)
        if not isinstance(sql, str) or not sql.strip():
            raise _configuration(f"{function} needs a '{text_field}' string argument")
        params = _parameters(function, args.get("parameters"))
        timeout_ms = _timeout_ms(function, args.get("timeout"))
        secret_name, conninfo = self._conninfo(function, args.get("secret"))
        try:
            conn = psycopg.connect(
                conninfo, connect_timeout=CONNECT_TIMEOUT_S, row_factory=dict_row
            )
        except psycopg.Error as err:
            # The driver's message names the host, port and user; the problem names only
            # the Secret, so nothing of the connection string reaches the run's history.
            state = f" (SQLSTATE {err.sqlstate})" if err.sqlstate else ""
            kind, status = (
                (ErrorType.AUTHENTICATION, 401)
                if (err.sqlstate or "").startswith("28")
                else (ErrorType.COMMUNICATION, 503)
            )
            raise FunctionError(
                f"{function}: cannot connect to the database of secret {secret_name!r}{state}",
                type=kind,
                status=status,
                title="Database unavailable" if status == 503 else "Database login refused",
            ) from None
        try:
            with conn, conn.cursor() as cur:
                # SET LOCAL lasts for this transaction only, so a pooled or reused
                # connection never keeps another call's limit.
                cur.execute("SELECT set_config('statement_timeout', %s, true)", (str(timeout_ms),))
                cur.execute(sql.encode(), params)
                return handle(cur)
        except psycopg.Error as err:
            raise _problem(function, err, timeout_ms, conninfo) from None
        finally:
            conn.close()

    def _conninfo(self, function: str, name: Any) -> tuple[str, str]:
        if not isinstance(name, str) or not name:
            raise _configuration(
                f"{function} needs a 'secret' argument naming a Secret in use.secrets"
            )
        secret = self.secrets.read(name)
        if secret is None:
            raise FunctionError(
                f"{function}: secret {name!r} is not mounted on this worker",
                type=ErrorType.CONFIGURATION,
                status=404,
                title="Secret not found",
            )
        for key in URI_KEYS:
            if secret.get(key, "").strip():
                return name, secret[key].strip()
        parts = {k: secret[k].strip() for k in PART_KEYS if secret.get(k, "").strip()}
        if "host" not in parts:
            raise _configuration(
                f"{function}: secret {name!r} has none of the keys {', '.join(URI_KEYS)} "
                "and no 'host' (with optional port, dbname, user, password, sslmode)"
            )
        return name, psycopg.conninfo.make_conninfo(**parts)


def _check_fields(function: str, args: Mapping[str, Any]) -> None:
    unknown = sorted(set(args) - _ALLOWED[function])
    if unknown:
        raise _configuration(
            f"{function}: unknown argument(s) {', '.join(unknown)} "
            f"(allowed: {', '.join(sorted(_ALLOWED[function]))})"
        )


def _parameters(function: str, value: Any) -> list[Any] | dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, list):
        return [_bind(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _bind(v) for k, v in value.items()}
    raise _configuration(
        f"{function}: parameters must be a list (for %s placeholders) or an object "
        f"(for %(name)s placeholders), not {type(value).__name__}"
    )


def _bind(value: Any) -> Any:
    # An object is bound as jsonb; a list stays a list, which PostgreSQL sees as an array
    # (`= ANY(%s)`); a list meant as JSON is passed as an object's field or cast in SQL.
    if isinstance(value, dict):
        return Jsonb(value)
    return value


def _timeout_ms(function: str, value: Any) -> int:
    if value is None:
        return DEFAULT_TIMEOUT_MS
    try:
        seconds = parse_duration(value).total_seconds()
    except (TypeError, ValueError) as err:
        raise _configuration(f"{function}: timeout {value!r} is not a duration: {err}") from None
    if seconds <= 0:
        raise _configuration(f"{function}: timeout must be positive, not {value!r}")
    return max(1, round(seconds * 1000))


# SQLSTATE classes (the first two characters) to the spec's error types.
_CLASSES: dict[str, tuple[str, int, str]] = {
    "08": (ErrorType.COMMUNICATION, 503, "Database connection failed"),
    "22": (ErrorType.VALIDATION, 400, "Invalid data"),
    "23": (ErrorType.VALIDATION, 409, "Constraint violated"),
    "28": (ErrorType.AUTHENTICATION, 401, "Database login refused"),
    "40": (ErrorType.RUNTIME, 409, "Transaction rolled back"),
    "42": (ErrorType.CONFIGURATION, 400, "Invalid SQL"),
    "53": (ErrorType.COMMUNICATION, 503, "Database out of resources"),
    "57": (ErrorType.COMMUNICATION, 503, "Database unavailable"),
}


def _problem(function: str, err: psycopg.Error, timeout_ms: int, conninfo: str) -> FunctionError:
    state = err.sqlstate or ""
    if isinstance(err, pg_errors.QueryCanceled):
        return FunctionError(
            f"{function}: the statement ran longer than its timeout ({timeout_ms} ms)",
            type=ErrorType.TIMEOUT,
            status=408,
            title="Statement timeout",
        )
    if isinstance(err, pg_errors.InsufficientPrivilege):
        kind, status, title = ErrorType.AUTHORIZATION, 403, "Permission denied"
    elif state[:2] in _CLASSES:
        kind, status, title = _CLASSES[state[:2]]
    elif isinstance(err, psycopg.OperationalError):
        kind, status, title = ErrorType.COMMUNICATION, 503, "Database unavailable"
    else:
        kind, status, title = ErrorType.RUNTIME, 500, "Database error"
    message = str(err.diag.message_primary or err).strip()
    detail = f"{function}: {message}" + (f" (SQLSTATE {state})" if state else "")
    return FunctionError(_scrub(detail, conninfo), type=kind, status=status, title=title)


def _scrub(text: str, conninfo: str) -> str:
    """The text without the connection string or its password, should a server message
    ever quote them."""
    try:
        password = psycopg.conninfo.conninfo_to_dict(conninfo).get("password")
    except psycopg.ProgrammingError:
        password = None
    for secret in (conninfo, password):
        if secret:
            text = text.replace(str(secret), "***")
    return text


def to_json(value: Any) -> Any:
    """A column value as JSON: numerics as numbers (integral ones as integers), times as
    ISO 8601, bytes as base64, UUIDs and network addresses as strings."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, decimal.Decimal):
        if value == value.to_integral_value() and value.is_finite():
            return int(value)
        return float(value)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, (uuid.UUID, ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return str(value)
    if isinstance(value, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    return str(value)
