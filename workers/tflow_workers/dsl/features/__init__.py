"""The one table of which Serverless Workflow 1.0 features this engine runs.

`validate_document` reports every use of an unsupported feature with the feature's
`message`; nothing is silently ignored. The feature table of `docs/dsl-support.md` is
generated from this one:

    python -m tflow_workers.dsl.features --docs docs/dsl-support.md          # write it
    python -m tflow_workers.dsl.features --docs docs/dsl-support.md --check  # drift check

Every supported feature is run through the engine by at least one integration test
marked `@pytest.mark.runs("<key>")`; a unit test fails for a supported feature without one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

REGENERATE_COMMAND: Final = "python -m tflow_workers.dsl.features --docs docs/dsl-support.md"
BEGIN_MARKER: Final = "<!-- BEGIN FEATURES: generated from tflow_workers.dsl.features -->"
END_MARKER: Final = "<!-- END FEATURES -->"


@dataclass(frozen=True)
class Feature:
    """A DSL feature: whether the engine runs it, what it covers, and, if it does not run
    it, what validation tells an author."""

    key: str
    supported: bool
    summary: str
    message: str = ""


def _features(*features: Feature) -> Mapping[str, Feature]:
    return MappingProxyType({feature.key: feature for feature in features})


FEATURES: Final[Mapping[str, Feature]] = _features(
    Feature("dsl.1.0", True, "documents with `document.dsl` 1.0.x"),
    Feature(
        "dsl.other",
        False,
        "other DSL versions (0.8, 1.1, ...)",
        "this engine runs Serverless Workflow 1.0.x documents only",
    ),
    # Tasks
    Feature("task.set", True, "a mapping, or a runtime expression"),
    Feature(
        "task.switch", True, "cases with `when` and `then`; a case without `when` is the default"
    ),
    Feature("task.do", True, "nested task lists"),
    Feature("task.wait", True, "a durable Temporal timer"),
    Feature(
        "task.listen",
        True,
        "`to: one`, `any` (with `until`, an expression or events) or `all`; filters with "
        "literals, regular expressions or expressions on the attribute; `correlate` with or "
        "without `expect`",
    ),
    Feature(
        "task.emit",
        True,
        "a CloudEvent, handed to the router; the task's output is the emitted event (`id`, "
        "`specversion`, `time`, `source`, `type`, `data`, ...)",
    ),
    Feature("task.fork", True, "branches, with or without `compete`"),
    Feature("task.for", True, "`each`/`in`/`at`, `while`"),
    Feature(
        "task.try",
        True,
        "`catch` with `errors.with`, `as`, `when`, `exceptWhen`, `do`; a `type` filter matches "
        "the standard types in both spellings (see below)",
    ),
    Feature(
        "task.retry",
        True,
        "inline or from `use.retries`: `delay`, `backoff` (constant, linear, exponential), "
        "`limit`, `jitter`",
    ),
    Feature("task.raise", True, "inline error or from `use.errors`"),
    Feature(
        "call.http",
        True,
        "method, endpoint (URI template, expression or `{uri, authentication}`), headers, "
        "query, body, `output: raw/content/response`, `redirect`",
    ),
    Feature(
        "call.function",
        True,
        "a function defined in `use.functions`, or a custom function the team registers "
        "with its workers (see [custom-functions.md](custom-functions.md))",
    ),
    Feature(
        "call.sql",
        True,
        "built-in `sql.query` (rows as JSON) and `sql.execute` (affected count) on PostgreSQL: "
        "bound parameters, the connection from a Secret in `use.secrets`, a statement "
        "timeout (see [sql-functions.md](sql-functions.md))",
    ),
    Feature(
        "call.grpc",
        False,
        "needs proto resolution and a gRPC client",
        "'grpc' calls are not supported yet",
    ),
    Feature(
        "call.openapi",
        True,
        "the operation named by `operationId` in an OpenAPI 2.0 or 3.x document (JSON or "
        "YAML) read from `document.endpoint`, `parameters` placed as it declares them, "
        "`authentication`, `output`, `redirect` (see below)",
    ),
    Feature(
        "call.asyncapi",
        False,
        "needs broker bindings; use `emit` and `listen`",
        "'asyncapi' calls are not supported yet",
    ),
    Feature("call.a2a", False, "agent-to-agent calls", "'a2a' calls are not supported yet"),
    Feature("call.mcp", False, "Model Context Protocol calls", "'mcp' calls are not supported yet"),
    Feature(
        "call.catalog",
        False,
        "cataloged functions (`name:version@catalog`) and function definitions called by URI "
        "(`call: https://.../function.yaml`)",
        "cataloged functions (name:version@catalog, or a function definition's URI) "
        "are not supported yet; define the function in use.functions",
    ),
    Feature("run.workflow", True, "a Temporal child workflow"),
    Feature(
        "run.workflow.detached",
        True,
        "`await: false`: a child run that outlives its parent (parent close policy abandon)",
    ),
    Feature(
        "run.return",
        False,
        "`return` selects a process's stdout/stderr/code; it has no meaning for a workflow",
        "'return' only applies to container, script and shell processes",
    ),
    Feature(
        "run.container",
        False,
        "workers have no container runtime",
        "'run: container' is not supported yet",
    ),
    Feature(
        "run.script", False, "no sandboxed script runner yet", "'run: script' is not supported yet"
    ),
    Feature(
        "run.shell",
        False,
        "shell commands on shared workers are not sandboxed",
        "'run: shell' is not supported yet",
    ),
    # Events
    Feature("listen.read.data", True, "`read: data` (the default) and `read: envelope`"),
    Feature(
        "listen.read.raw",
        False,
        "events arrive as structured CloudEvents, never as raw bytes",
        "'read: raw' is not supported yet; use 'data' or 'envelope'",
    ),
    Feature(
        "listen.foreach",
        False,
        "streaming iteration over consumed events; follow the listen with a `for`",
        "'listen.foreach' is not supported yet; follow the listen with a 'for' task",
    ),
    # Data, time
    Feature("data.input_output_export", True, "`input.from`, `output.as`, `export.as`"),
    Feature(
        "data.schema.json",
        True,
        "inline JSON Schema (`schema.document`) on the workflow's and tasks' input and output "
        "and on export, checked at run time (a mismatch faults with a `validation` error, "
        "400); the schema itself is checked at validation",
    ),
    Feature(
        "data.schema.other",
        False,
        "schema formats other than JSON Schema",
        "only 'json' schemas are supported",
    ),
    Feature(
        "data.schema.external",
        False,
        "schemas loaded from a `resource`, or `$ref`s outside the schema; inline them as "
        "`document`",
        "external schema resources are not supported yet; inline the schema as 'document'",
    ),
    Feature("timeouts", True, "workflow and task timeouts, inline or from `use.timeouts`"),
    Feature(
        "schedule.every",
        False,
        "runs are scheduled by the WorkflowDefinition's `spec.schedule` (a Temporal Schedule "
        "the operator keeps in sync), not by the document; `every: PT15M` is "
        "`cron: ['*/15 * * * *']` there",
        "'schedule.every' in the document is not run: schedule the WorkflowDefinition with "
        "spec.schedule (cron) instead",
    ),
    Feature(
        "schedule.cron",
        False,
        "runs are scheduled by the WorkflowDefinition's `spec.schedule`, which takes the same "
        "cron expressions, with time zone, overlap policy, catch-up window and pause",
        "'schedule.cron' in the document is not run: move it to the WorkflowDefinition's "
        "spec.schedule.cron",
    ),
    Feature(
        "schedule.after",
        False,
        "run again a delay after each completion: Temporal Schedules start runs at set times; "
        "use the WorkflowDefinition's `spec.schedule`",
        "'schedule.after' is not supported: schedule runs with the WorkflowDefinition's "
        "spec.schedule (cron)",
    ),
    Feature(
        "schedule.on",
        False,
        "event-started workflows are routed by EventRoutes",
        "event-triggered schedules are not supported: start this workflow from an EventRoute",
    ),
    # Reusable components
    Feature("use.functions", True, "reusable tasks, called by name"),
    Feature("use.errors", True, "reusable errors, raised by name"),
    Feature("use.retries", True, "reusable retry policies"),
    Feature("use.timeouts", True, "reusable timeouts"),
    Feature("use.secrets", True, "declared secrets, read as `$secret.<name>`"),
    Feature("use.extensions", False, "before/after task hooks", "extensions are not supported yet"),
    Feature("use.catalogs", False, "remote function catalogs", "catalogs are not supported yet"),
    Feature(
        "auth.basic",
        True,
        "inline or from a secret (`basic: {use: secretName}` reads its `username` and "
        "`password` keys)",
    ),
    Feature("auth.bearer", True, "inline or from a secret (its `token` key)"),
    Feature(
        "auth.digest",
        False,
        "digest authentication",
        "'digest' authentication is not supported yet",
    ),
    Feature(
        "auth.oauth2",
        False,
        "OAuth2 token acquisition",
        "'oauth2' authentication is not supported yet",
    ),
    Feature(
        "auth.oidc",
        False,
        "OpenID Connect",
        "'oidc' authentication is not supported yet",
    ),
    Feature(
        "auth.certificate",
        False,
        "client certificates",
        "'certificate' authentication is not supported yet",
    ),
)

SUPPORTED: Final[frozenset[str]] = frozenset(key for key, f in FEATURES.items() if f.supported)
UNSUPPORTED: Final[frozenset[str]] = frozenset(
    key for key, f in FEATURES.items() if not f.supported
)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_table() -> str:
    """The Markdown feature table, between its markers."""
    lines = [
        BEGIN_MARKER,
        f"<!-- edit FEATURES in workers/tflow_workers/dsl/features.py, then run "
        f"`{REGENERATE_COMMAND}` -->",
        "",
        "| Feature | Supported | Notes |",
        "| --- | --- | --- |",
    ]
    for feature in FEATURES.values():
        notes = feature.summary
        if not feature.supported:
            notes += f". Validation reports: *{feature.message}*"
        lines.append(
            f"| `{feature.key}` | {'yes' if feature.supported else 'no'} | {_cell(notes)} |"
        )
    lines.append(END_MARKER)
    return "\n".join(lines)


class MarkersMissing(ValueError):
    """The page has no generated-table markers to replace between."""


def render_page(page: str) -> str:
    """`page` with the text between the markers replaced by the current table."""
    start = page.find(BEGIN_MARKER)
    end = page.find(END_MARKER)
    if start < 0 or end < start:
        raise MarkersMissing(
            f"no {BEGIN_MARKER!r} ... {END_MARKER!r} section to write the feature table into"
        )
    return page[:start] + render_table() + page[end + len(END_MARKER) :]
