"""Whole-document validation: every problem, with a path an author can follow.

`validate_document` reports, together:

* schema errors from the models (unknown fields, wrong types, bad durations, ...);
* `then` targets that name no task in the same task list (`continue`, `exit` and `end`
  are flow directives), duplicate task names, and unreachable tasks;
* runtime expressions that do not compile as jq, including unknown `$variables`;
* references to undefined `use.errors`, `use.retries`, `use.functions`, `use.timeouts`,
  `use.authentications` and `use.secrets` entries;
* every use of a feature the engine does not run (see `support.FEATURES`).

The semantic checks walk the raw mapping rather than the models, so they still run (and
still report) when the schema check has already failed somewhere else in the document.
Every access is defensive: any JSON-like input yields issues, never an exception.

Reachability, precisely: in one task list, the first task is reachable; a reachable task
leads to (a) the next task when it has an `if` (it may be skipped), (b) its `then` target,
where a missing `then` or `continue` means the next task and `exit`/`end` mean none, and
(c) for a switch, each case's `then`, plus the task's own `then` when there is no default
case (a case without `when`). A `raise` never completes, so it leads nowhere. Tasks that no
path from the first task reaches are unreachable. Fork branches all run, so they are exempt.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Final

from .expressions import ExpressionCompileError, compile_expression, is_expression, is_variable_name
from .features import FEATURES
from .issues import ROOT_PATH, DocumentError, Issue, index_path, join_path
from .models import (
    AUTH_SCHEMES,
    CALL_PROTOCOLS,
    FLOW_DIRECTIVES,
    MAX_DEPTH,
    PROCESS_KINDS,
    WorkflowDocument,
    load_document,
    nesting_depth,
    task_kind,
)
from .schemas import external_references, schema_document_problem

__all__ = ["Issue", "check_document", "load_validated_document", "validate_document"]

_SECRET_REFERENCE = re.compile(r"\$secret\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)")
_DSL_VERSION = re.compile(r"^1\.0\.\d+(?:[-+].*)?$")

# `input.from`, `output.as` and `export.as` are expressions by definition when strings.
_DATA_FIELDS: Final = (("input", "from"), ("output", "as"), ("export", "as"))


def _at(path: str, *keys: str) -> str:
    for key in keys:
        path = join_path(path, key)
    return path


def _mapping(value: Any) -> Mapping[Any, Any]:
    return value if isinstance(value, Mapping) else {}


def _names(value: Any) -> frozenset[str]:
    if isinstance(value, Mapping):
        return frozenset(key for key in value if isinstance(key, str))
    if isinstance(value, list):
        return frozenset(item for item in value if isinstance(item, str))
    return frozenset()


def _single_entry(item: Any) -> tuple[str, Any] | None:
    if isinstance(item, Mapping) and len(item) == 1:
        key, body = next(iter(item.items()))
        if isinstance(key, str):
            return key, body
    return None


# The built-in SQL functions and the argument that holds each one's SQL text.
SQL_TEXT_FIELDS: dict[str, str] = {"sql.query": "query", "sql.execute": "statement"}


class _Checker:
    def __init__(self, data: Mapping[Any, Any], catalog: Collection[str] | None = None) -> None:
        use = _mapping(data.get("use"))
        self.data = data
        self.catalog = catalog
        self.use = use
        self.errors = _names(use.get("errors"))
        self.retries = _names(use.get("retries"))
        self.functions = _names(use.get("functions"))
        self.timeouts = _names(use.get("timeouts"))
        self.authentications = _names(use.get("authentications"))
        self.secrets = _names(use.get("secrets"))
        self.issues: list[Issue] = []

    def add(self, path: str, message: str) -> None:
        self.issues.append(Issue(path or ROOT_PATH, message))

    def unsupported(self, path: str, feature: str) -> None:
        self.add(path, FEATURES[feature].message)

    # --- document --------------------------------------------------------------------

    def run(self) -> None:
        data = self.data
        dsl = _mapping(data.get("document")).get("dsl")
        if isinstance(dsl, str) and not _DSL_VERSION.match(dsl):
            self.unsupported("document.dsl", "dsl.other")
        self.check_data_flow(data, "", frozenset())
        self.check_timeout(data.get("timeout"), "timeout")
        self.check_schedule(data.get("schedule"))
        self.check_use()
        self.check_task_list(data.get("do"), "do", frozenset(), depth=0)

    def check_schedule(self, schedule: Any) -> None:
        if not isinstance(schedule, Mapping):
            return
        for kind in ("every", "cron", "after", "on"):
            if kind in schedule and not FEATURES[f"schedule.{kind}"].supported:
                self.unsupported(f"schedule.{kind}", f"schedule.{kind}")

    def check_use(self) -> None:
        use = self.use
        if "extensions" in use:
            self.unsupported("use.extensions", "use.extensions")
        if "catalogs" in use:
            self.unsupported("use.catalogs", "use.catalogs")
        for name, policy in _mapping(use.get("authentications")).items():
            self.check_authentication_policy(policy, join_path("use.authentications", name))
        for name, error in _mapping(use.get("errors")).items():
            self.check_values(error, join_path("use.errors", name), frozenset())
        for name, retry in _mapping(use.get("retries")).items():
            self.check_retry(retry, join_path("use.retries", name), frozenset({"error"}))
        for name, function in _mapping(use.get("functions")).items():
            self.check_task(function, join_path("use.functions", name), frozenset(), {}, 1)

    # --- expressions -----------------------------------------------------------------

    def check_expression(self, value: Any, path: str, scope: frozenset[str], *, bare: bool) -> None:
        """Compile `value` as jq. `bare`: the field is an expression by definition, so the
        `${ }` wrapper is optional; otherwise only wrapped strings are expressions."""
        if not isinstance(value, str) or not (bare or is_expression(value)):
            return
        try:
            compile_expression(value, scope)
        except ExpressionCompileError as error:
            self.add(path, f"invalid jq expression: {error.message}")
            return
        for secret in _SECRET_REFERENCE.findall(value):
            if secret not in self.secrets:
                self.add(path, f"no secret named '{secret}' in use.secrets")

    def check_values(self, value: Any, path: str, scope: frozenset[str]) -> None:
        """Check every `${ }` string inside a free-form value."""
        stack: list[tuple[Any, str]] = [(value, path)]
        while stack:
            item, item_path = stack.pop()
            if isinstance(item, str):
                self.check_expression(item, item_path, scope, bare=False)
            elif isinstance(item, Mapping):
                stack.extend(
                    (child, join_path(item_path, key))
                    for key, child in reversed(list(item.items()))
                )
            elif isinstance(item, list):
                stack.extend(
                    (child, index_path(item_path, i))
                    for i, child in reversed(list(enumerate(item)))
                )

    def check_data_flow(self, owner: Mapping[Any, Any], path: str, scope: frozenset[str]) -> None:
        for field, key in _DATA_FIELDS:
            config = owner.get(field)
            if not isinstance(config, Mapping):
                continue
            field_path = join_path(path, field)
            value = config.get(key)
            if isinstance(value, str):
                self.check_expression(value, join_path(field_path, key), scope, bare=True)
            else:
                self.check_values(value, join_path(field_path, key), scope)
            self.check_schema(config.get("schema"), join_path(field_path, "schema"))

    def check_schema(self, schema: Any, path: str) -> None:
        if not isinstance(schema, Mapping):
            return
        schema_format = schema.get("format", "json")
        if isinstance(schema_format, str) and schema_format.split(":", 1)[0].lower() != "json":
            self.unsupported(join_path(path, "format"), "data.schema.other")
        if "resource" in schema:
            self.unsupported(join_path(path, "resource"), "data.schema.external")
        if "document" in schema:
            document_path = join_path(path, "document")
            problem = schema_document_problem(schema["document"])
            if problem is not None:
                self.add(document_path, problem)
            elif external_references(schema["document"]):
                self.add(
                    document_path,
                    f"{FEATURES['data.schema.external'].message} "
                    f"($ref {external_references(schema['document'])[0]!r})",
                )

    # --- references ------------------------------------------------------------------

    def check_timeout(self, value: Any, path: str) -> None:
        if isinstance(value, str) and value not in self.timeouts:
            self.add(path, f"no timeout named '{value}' in use.timeouts")

    def check_authentication(self, value: Any, path: str) -> None:
        """An endpoint's `authentication`: a `{use: policyName}` reference or a policy."""
        if not isinstance(value, Mapping):
            return
        if set(value) == {"use"}:
            name = value["use"]
            if isinstance(name, str) and name not in self.authentications:
                self.add(
                    join_path(path, "use"),
                    f"no authentication named '{name}' in use.authentications",
                )
            return
        self.check_authentication_policy(value, path)

    def check_authentication_policy(self, policy: Any, path: str) -> None:
        for scheme in AUTH_SCHEMES:
            if not isinstance(policy, Mapping) or scheme not in policy:
                continue
            scheme_path = join_path(path, scheme)
            if not FEATURES[f"auth.{scheme}"].supported:
                self.unsupported(scheme_path, f"auth.{scheme}")
                continue
            config = policy[scheme]
            secret = config.get("use") if isinstance(config, Mapping) else None
            if isinstance(secret, str) and secret not in self.secrets:
                self.add(
                    join_path(scheme_path, "use"), f"no secret named '{secret}' in use.secrets"
                )
            self.check_values(config, scheme_path, frozenset())

    def check_retry(self, retry: Any, path: str, scope: frozenset[str]) -> None:
        if isinstance(retry, str):
            if retry not in self.retries:
                self.add(path, f"no retry policy named '{retry}' in use.retries")
            return
        retry = _mapping(retry)
        self.check_expression(retry.get("when"), join_path(path, "when"), scope, bare=True)
        self.check_expression(
            retry.get("exceptWhen"), join_path(path, "exceptWhen"), scope, bare=True
        )

    def check_variable(self, value: Any, path: str) -> None:
        if isinstance(value, str) and not is_variable_name(value):
            self.add(
                path,
                f"'{value}' is not a valid variable name (letters, digits and '_', "
                "not starting with a digit or '__')",
            )

    # --- task lists ------------------------------------------------------------------

    def check_task_list(
        self, items: Any, path: str, scope: frozenset[str], depth: int, *, branches: bool = False
    ) -> None:
        if not isinstance(items, list) or depth > MAX_DEPTH:
            return
        entries: list[tuple[int, str, Any]] = []
        first_index: dict[str, int] = {}
        for index, item in enumerate(items):
            entry = _single_entry(item)
            if entry is not None:
                entries.append((index, *entry))
                first_index.setdefault(entry[0], index)
        names = None if branches else first_index
        unreachable = frozenset() if branches else self.unreachable(entries)
        for order, (index, name, body) in enumerate(entries):
            task_path = join_path(index_path(path, index), name)
            if first_index[name] != index:
                self.add(
                    task_path,
                    f"duplicate task name '{name}' "
                    f"(first used at {index_path(path, first_index[name])})",
                )
            if name in FLOW_DIRECTIVES:
                self.add(task_path, f"'{name}' is a flow directive and cannot name a task")
            if order in unreachable:
                self.add(task_path, "unreachable task: no transition leads here")
            self.check_task(body, task_path, scope, names, depth + 1)

    def check_then(self, value: Any, path: str, names: Mapping[str, int] | None) -> None:
        if not isinstance(value, str) or value in FLOW_DIRECTIVES:
            return
        if names is None:
            self.add(
                path, "fork branches run concurrently: 'then' can only be continue, exit or end"
            )
        elif value not in names:
            self.add(path, f"no task named '{value}'")

    @staticmethod
    def unreachable(entries: Sequence[tuple[int, str, Any]]) -> frozenset[int]:
        """Positions (in `entries`) of the tasks no path from the first one reaches."""
        if not entries:
            return frozenset()
        position: dict[str, int] = {}
        for order, (_, name, _) in enumerate(entries):
            position.setdefault(name, order)

        def target(directive: Any, order: int) -> list[int]:
            if directive is None or directive == "continue" or not isinstance(directive, str):
                return [order + 1]
            if directive in FLOW_DIRECTIVES:
                return []
            return [position[directive]] if directive in position else []

        def successors(order: int) -> list[int]:
            body = entries[order][2]
            if not isinstance(body, Mapping):
                return [order + 1]
            found = [order + 1] if "if" in body else []
            kind = task_kind(body)
            if kind == "raise":
                return found
            cases = body.get("switch") if kind == "switch" else None
            if isinstance(cases, list):
                has_default = False
                for case in cases:
                    entry = _single_entry(case)
                    case_body = _mapping(entry[1]) if entry else {}
                    if "when" not in case_body:
                        has_default = True
                    found += target(case_body.get("then"), order)
                if not has_default:
                    found += target(body.get("then"), order)
                return found
            return found + target(body.get("then"), order)

        seen = {0}
        pending = [0]
        while pending:
            for nxt in successors(pending.pop()):
                if nxt < len(entries) and nxt not in seen:
                    seen.add(nxt)
                    pending.append(nxt)
        return frozenset(range(len(entries))) - seen

    # --- tasks -----------------------------------------------------------------------

    def check_task(
        self,
        body: Any,
        path: str,
        scope: frozenset[str],
        names: Mapping[str, int] | None,
        depth: int,
    ) -> None:
        if not isinstance(body, Mapping):
            return
        self.check_expression(body.get("if"), join_path(path, "if"), scope, bare=True)
        self.check_data_flow(body, path, scope)
        self.check_timeout(body.get("timeout"), join_path(path, "timeout"))
        self.check_then(body.get("then"), join_path(path, "then"), names)
        kind = task_kind(body)
        checker = getattr(self, f"check_{kind}_task", None) if kind else None
        if checker is not None:
            checker(body, path, scope, names, depth)

    def check_call_task(
        self, body: Mapping[Any, Any], path: str, scope: frozenset[str], _names: Any, _depth: int
    ) -> None:
        call = body.get("call")
        arguments = body.get("with")
        call_path = join_path(path, "call")
        with_path = join_path(path, "with")
        if not isinstance(call, str):
            return
        if call == "openapi":
            arguments = _mapping(arguments)
            endpoint = _mapping(arguments.get("document")).get("endpoint")
            endpoint_path = _at(with_path, "document", "endpoint")
            if isinstance(endpoint, Mapping):
                self.check_values(endpoint.get("uri"), join_path(endpoint_path, "uri"), scope)
                self.check_authentication(
                    endpoint.get("authentication"), join_path(endpoint_path, "authentication")
                )
            else:
                self.check_values(endpoint, endpoint_path, scope)
            self.check_authentication(
                arguments.get("authentication"), join_path(with_path, "authentication")
            )
            self.check_values(
                arguments.get("parameters"), join_path(with_path, "parameters"), scope
            )
            return
        if call in CALL_PROTOCOLS:
            if call != "http":
                self.unsupported(call_path, f"call.{call}")
                return
            arguments = _mapping(arguments)
            endpoint = arguments.get("endpoint")
            endpoint_path = join_path(with_path, "endpoint")
            if isinstance(endpoint, Mapping):
                self.check_values(endpoint.get("uri"), join_path(endpoint_path, "uri"), scope)
                self.check_authentication(
                    endpoint.get("authentication"), join_path(endpoint_path, "authentication")
                )
            else:
                self.check_values(endpoint, endpoint_path, scope)
            for field in ("headers", "query", "body"):
                self.check_values(arguments.get(field), join_path(with_path, field), scope)
            return
        if "@" in call or "://" in call:
            self.unsupported(call_path, "call.catalog")
            return
        if call in SQL_TEXT_FIELDS and call not in self.functions:
            self.check_sql_call(call, _mapping(arguments), with_path)
        if call not in self.functions and self.catalog is not None and call not in self.catalog:
            known = ", ".join(sorted(self.catalog)) or "none"
            self.add(
                call_path,
                f"no function named '{call}' in use.functions or the worker's catalog "
                f"(registered: {known})",
            )
        self.check_values(arguments, with_path, scope)

    def check_sql_call(self, call: str, arguments: Mapping[Any, Any], with_path: str) -> None:
        """The SQL built-ins: the connection is a Secret of `use.secrets` named literally,
        and the SQL text is literal, so values can only arrive as bound parameters."""
        secret = arguments.get("secret")
        secret_path = join_path(with_path, "secret")
        if not isinstance(secret, str) or not secret or is_expression(secret):
            self.add(secret_path, f"{call} needs 'secret': the name of a Secret in use.secrets")
        elif secret not in self.secrets:
            self.add(secret_path, f"no secret named '{secret}' in use.secrets")
        field = SQL_TEXT_FIELDS[call]
        text = arguments.get(field)
        text_path = join_path(with_path, field)
        if not isinstance(text, str) or not text.strip():
            self.add(text_path, f"{call} needs '{field}': the SQL text")
        elif is_expression(text):
            self.add(
                text_path,
                f"the SQL text of {call} must be literal, not an expression: pass values "
                "as parameters (%s or %(name)s placeholders) so they are bound, never "
                "spliced into the SQL",
            )

    def check_do_task(
        self, body: Mapping[Any, Any], path: str, scope: frozenset[str], _names: Any, depth: int
    ) -> None:
        self.check_task_list(body.get("do"), join_path(path, "do"), scope, depth)

    def check_emit_task(
        self, body: Mapping[Any, Any], path: str, scope: frozenset[str], _names: Any, _depth: int
    ) -> None:
        event = _mapping(_mapping(body.get("emit")).get("event"))
        self.check_values(event.get("with"), _at(path, "emit", "event", "with"), scope)

    def check_for_task(
        self, body: Mapping[Any, Any], path: str, scope: frozenset[str], _names: Any, depth: int
    ) -> None:
        loop = _mapping(body.get("for"))
        loop_path = join_path(path, "for")
        each = loop.get("each", "item")
        at = loop.get("at", "index")
        self.check_variable(each, join_path(loop_path, "each"))
        self.check_variable(at, join_path(loop_path, "at"))
        self.check_expression(loop.get("in"), join_path(loop_path, "in"), scope, bare=True)
        inner = scope | {
            name for name in (each, at) if isinstance(name, str) and is_variable_name(name)
        }
        self.check_expression(body.get("while"), join_path(path, "while"), inner, bare=True)
        self.check_task_list(body.get("do"), join_path(path, "do"), inner, depth)

    def check_fork_task(
        self, body: Mapping[Any, Any], path: str, scope: frozenset[str], _names: Any, depth: int
    ) -> None:
        branches = _mapping(body.get("fork")).get("branches")
        self.check_task_list(branches, _at(path, "fork", "branches"), scope, depth, branches=True)

    def check_listen_task(
        self, body: Mapping[Any, Any], path: str, scope: frozenset[str], _names: Any, _depth: int
    ) -> None:
        listen = _mapping(body.get("listen"))
        if listen.get("read") == "raw":
            self.unsupported(_at(path, "listen", "read"), "listen.read.raw")
        if "foreach" in body:
            self.unsupported(join_path(path, "foreach"), "listen.foreach")
        self.check_strategy(listen.get("to"), _at(path, "listen", "to"), scope, 0)

    def check_strategy(self, strategy: Any, path: str, scope: frozenset[str], depth: int) -> None:
        if not isinstance(strategy, Mapping) or depth > MAX_DEPTH:
            return
        filters: list[tuple[Any, str]] = []
        for kind in ("all", "any"):
            if isinstance(strategy.get(kind), list):
                filters += [
                    (f, index_path(join_path(path, kind), i)) for i, f in enumerate(strategy[kind])
                ]
        if "one" in strategy:
            filters.append((strategy["one"], join_path(path, "one")))
        for event_filter, filter_path in filters:
            correlate = _mapping(_mapping(event_filter).get("correlate"))
            for key, rule in correlate.items():
                rule_path = join_path(join_path(filter_path, "correlate"), key)
                rule = _mapping(rule)
                self.check_expression(
                    rule.get("from"), join_path(rule_path, "from"), scope, bare=True
                )
                self.check_values(rule.get("expect"), join_path(rule_path, "expect"), scope)
        until = strategy.get("until")
        if isinstance(until, str):
            self.check_expression(until, join_path(path, "until"), scope, bare=True)
        else:
            self.check_strategy(until, join_path(path, "until"), scope, depth + 1)

    def check_raise_task(
        self, body: Mapping[Any, Any], path: str, scope: frozenset[str], _names: Any, _depth: int
    ) -> None:
        error = _mapping(body.get("raise")).get("error")
        error_path = _at(path, "raise", "error")
        if isinstance(error, str):
            if error not in self.errors:
                self.add(error_path, f"no error named '{error}' in use.errors")
        else:
            self.check_values(error, error_path, scope)

    def check_run_task(
        self, body: Mapping[Any, Any], path: str, scope: frozenset[str], _names: Any, _depth: int
    ) -> None:
        run = _mapping(body.get("run"))
        run_path = join_path(path, "run")
        for process in PROCESS_KINDS:
            if process in run and not FEATURES[f"run.{process}"].supported:
                self.unsupported(join_path(run_path, process), f"run.{process}")
        if "workflow" not in run:
            return
        if "return" in run:
            self.unsupported(join_path(run_path, "return"), "run.return")
        workflow = _mapping(run.get("workflow"))
        self.check_values(workflow.get("input"), _at(run_path, "workflow", "input"), scope)

    def check_set_task(
        self, body: Mapping[Any, Any], path: str, scope: frozenset[str], _names: Any, _depth: int
    ) -> None:
        self.check_values(body.get("set"), join_path(path, "set"), scope)

    def check_switch_task(
        self,
        body: Mapping[Any, Any],
        path: str,
        scope: frozenset[str],
        names: Mapping[str, int] | None,
        _depth: int,
    ) -> None:
        cases = body.get("switch")
        if not isinstance(cases, list):
            return
        default: str | None = None
        for index, case in enumerate(cases):
            entry = _single_entry(case)
            if entry is None:
                continue
            case_name, case_body = entry
            case_path = index_path(join_path(path, "switch"), index)
            if default is not None:
                self.add(
                    case_path,
                    f"case '{case_name}' is never evaluated: "
                    f"it follows the default case '{default}'",
                )
            case_body = _mapping(case_body)
            if "when" not in case_body and default is None:
                default = case_name
            self.check_expression(
                case_body.get("when"), join_path(case_path, "when"), scope, bare=True
            )
            self.check_then(case_body.get("then"), join_path(case_path, "then"), names)

    def check_try_task(
        self, body: Mapping[Any, Any], path: str, scope: frozenset[str], _names: Any, depth: int
    ) -> None:
        self.check_task_list(body.get("try"), join_path(path, "try"), scope, depth)
        catch = _mapping(body.get("catch"))
        catch_path = join_path(path, "catch")
        error_name = catch.get("as", "error")
        self.check_variable(error_name, join_path(catch_path, "as"))
        inner = scope | (
            {error_name} if isinstance(error_name, str) and is_variable_name(error_name) else set()
        )
        self.check_expression(catch.get("when"), join_path(catch_path, "when"), inner, bare=True)
        self.check_expression(
            catch.get("exceptWhen"), join_path(catch_path, "exceptWhen"), inner, bare=True
        )
        if "retry" in catch:
            self.check_retry(catch["retry"], join_path(catch_path, "retry"), inner)
        self.check_task_list(catch.get("do"), join_path(catch_path, "do"), inner, depth)


def validate_document(data: dict[str, Any], catalog: Collection[str] | None = None) -> list[Issue]:
    """Every problem in `data`, schema and semantic alike; an empty list means valid.

    `call: <name>` may name a function of `use.functions` or of the catalog the team
    registers with its workers; pass `catalog` (the registered names) to check those too,
    or leave it None when the catalog is not known here (offline validation).

    Never raises, whatever JSON-like value it is given.
    """
    return check_document(data, catalog)[0]


def check_document(
    data: dict[str, Any], catalog: Collection[str] | None = None
) -> tuple[list[Issue], WorkflowDocument | None]:
    """`validate_document`'s issues, and the loaded model when the structure is sound (it
    may still have semantic issues), so a caller that runs the document parses it once."""
    if not isinstance(data, Mapping):
        return [Issue(ROOT_PATH, "a workflow document must be a mapping")], None
    if nesting_depth(data) > MAX_DEPTH:
        return [Issue(ROOT_PATH, f"document is nested more than {MAX_DEPTH} levels deep")], None
    issues: list[Issue] = _boolean_keys(data)
    model: WorkflowDocument | None = None
    try:
        model = load_document(dict(data))
    except DocumentError as error:
        if issues:
            # The boolean keys already explain pydantic's "keys should be strings".
            issues.extend(
                i
                for i in error.issues
                if "keys should be strings" not in i.message and "got a boolean" not in i.message
            )
        else:
            issues.extend(error.issues)
    checker = _Checker(data, catalog)
    checker.run()
    for issue in checker.issues:
        if issue not in issues:
            issues.append(issue)
    return issues, model


def _boolean_keys(data: Mapping[Any, Any]) -> list[Issue]:
    """Mapping keys that are booleans: what a YAML 1.1 reader (kubectl's conversion,
    PyYAML) makes of an unquoted `on`, `off`, `yes` or `no` key."""
    found: list[Issue] = []
    stack: list[tuple[Any, str]] = [(data, ROOT_PATH)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, Mapping):
            for key, child in item.items():
                if isinstance(key, bool):
                    found.append(
                        Issue(
                            join_path(path, str(key).lower()),
                            f"the key is the boolean {str(key).lower()}, not a string: a "
                            "YAML 1.1 reader (kubectl, PyYAML) reads an unquoted on, off, yes "
                            "or no key so; quote it ('on':)",
                        )
                    )
                stack.append((child, join_path(path, str(key))))
        elif isinstance(item, list):
            stack.extend((child, index_path(path, i)) for i, child in enumerate(item))
    return sorted(found, key=lambda issue: issue.path)


def load_validated_document(data: dict[str, Any]) -> WorkflowDocument:
    """Load `data` after a full validation; raises `DocumentError` with every issue."""
    issues, model = check_document(data)
    if issues or model is None:
        raise DocumentError(issues)
    return model
