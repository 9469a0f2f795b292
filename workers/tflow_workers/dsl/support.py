"""The one table of which Serverless Workflow 1.0 features this engine runs.

`validate_document` reports every use of an unsupported feature with the feature's
`message`; nothing is silently ignored. `docs/dsl-support.md` documents the same table
(a unit test keeps the two in step).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final


@dataclass(frozen=True)
class Feature:
    """A DSL feature: whether the engine runs it and, if not, what an author is told."""

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
    Feature("task.set", True, "`set`, with a mapping or a runtime expression"),
    Feature("task.switch", True, "`switch`, cases with `when` and `then`, default case"),
    Feature("task.do", True, "`do`, nested task lists"),
    Feature("task.wait", True, "`wait`, as a durable Temporal timer"),
    Feature("task.listen", True, "`listen` to `one`, `any` (with `until`) or `all` events"),
    Feature("task.emit", True, "`emit` of a CloudEvent"),
    Feature("task.fork", True, "`fork` branches, with or without `compete`"),
    Feature("task.for", True, "`for` each/in/at, `while`"),
    Feature("task.try", True, "`try`/`catch` with error filters, `when`, `exceptWhen`, `do`"),
    Feature("task.retry", True, "retry policies, inline or from `use.retries`"),
    Feature("task.raise", True, "`raise`, inline error or from `use.errors`"),
    Feature("call.http", True, "`call: http` (method, endpoint, headers, query, body, output)"),
    Feature("call.function", True, "`call` of a function defined in `use.functions`"),
    Feature(
        "call.grpc",
        False,
        "`call: grpc` needs proto resolution",
        "'grpc' calls are not supported yet",
    ),
    Feature(
        "call.openapi",
        True,
        "`call: openapi` (OpenAPI 2.0 and 3.x documents, JSON or YAML, from `document`)",
    ),
    Feature(
        "call.asyncapi",
        False,
        "`call: asyncapi` needs broker bindings; use `emit`/`listen`",
        "'asyncapi' calls are not supported yet",
    ),
    Feature("call.a2a", False, "`call: a2a` (agent-to-agent)", "'a2a' calls are not supported yet"),
    Feature(
        "call.mcp",
        False,
        "`call: mcp` (Model Context Protocol)",
        "'mcp' calls are not supported yet",
    ),
    Feature(
        "call.catalog",
        False,
        "`call` of a cataloged function (`name:version@catalog`) or of a function "
        "definition loaded from a URI",
        "cataloged functions (name:version@catalog, or a function definition's URI) "
        "are not supported yet; define the function in use.functions",
    ),
    Feature("run.workflow", True, "`run: workflow`, as a Temporal child workflow"),
    Feature(
        "run.workflow.detached",
        True,
        "`run: workflow` with `await: false`, a child that outlives its parent (abandon)",
    ),
    Feature(
        "run.return",
        False,
        "`return` on `run: workflow` (it selects a process's stdout/stderr/code)",
        "'return' only applies to container, script and shell processes",
    ),
    Feature(
        "run.container",
        False,
        "`run: container`: workers have no container runtime",
        "'run: container' is not supported yet",
    ),
    Feature(
        "run.script",
        False,
        "`run: script`: no sandboxed script runner yet",
        "'run: script' is not supported yet",
    ),
    Feature(
        "run.shell",
        False,
        "`run: shell`: shell commands on shared workers are not sandboxed",
        "'run: shell' is not supported yet",
    ),
    # Events
    Feature("listen.read.data", True, "`listen.read: data` (the default) and `envelope`"),
    Feature(
        "listen.read.raw",
        False,
        "`listen.read: raw`: events arrive as structured CloudEvents, never raw bytes",
        "'read: raw' is not supported yet; use 'data' or 'envelope'",
    ),
    Feature(
        "listen.foreach",
        False,
        "`listen.foreach` (streaming iteration over consumed events)",
        "'listen.foreach' is not supported yet; follow the listen with a 'for' task",
    ),
    # Data, time
    Feature("data.input_output_export", True, "`input.from`, `output.as`, `export.as`"),
    Feature("data.schema.json", True, "inline JSON Schema in `input`/`output`/`export`"),
    Feature(
        "data.schema.other",
        False,
        "schema formats other than JSON Schema",
        "only 'json' schemas are supported",
    ),
    Feature(
        "data.schema.external",
        False,
        "schemas loaded from an external `resource`",
        "external schema resources are not supported yet; inline the schema as 'document'",
    ),
    Feature("timeouts", True, "workflow and task timeouts, inline or from `use.timeouts`"),
    Feature("schedule.every", True, "`schedule.every`, as a Temporal Schedule interval"),
    Feature("schedule.cron", True, "`schedule.cron`, as a Temporal Schedule"),
    Feature(
        "schedule.after",
        False,
        "`schedule.after` (run again a delay after each completion): Temporal Schedules "
        "start runs at set times",
        "'schedule.after' is not supported: schedule runs with the WorkflowDefinition's "
        "spec.schedule (cron)",
    ),
    Feature(
        "schedule.on",
        False,
        "`schedule.on`: event-started workflows are routed by EventRoutes",
        "event-triggered schedules are not supported: start this workflow from an EventRoute",
    ),
    # Reusable components
    Feature("use.functions", True, "`use.functions`"),
    Feature("use.errors", True, "`use.errors`"),
    Feature("use.retries", True, "`use.retries`"),
    Feature("use.timeouts", True, "`use.timeouts`"),
    Feature("use.secrets", True, "`use.secrets`, read as `$secret.<name>`"),
    Feature(
        "use.extensions",
        False,
        "`use.extensions` (before/after task hooks)",
        "extensions are not supported yet",
    ),
    Feature(
        "use.catalogs",
        False,
        "`use.catalogs` (remote function catalogs)",
        "catalogs are not supported yet",
    ),
    Feature("auth.basic", True, "basic authentication, inline or from a secret"),
    Feature("auth.bearer", True, "bearer authentication, inline or from a secret"),
    Feature(
        "auth.digest",
        False,
        "digest authentication",
        "'digest' authentication is not supported yet",
    ),
    Feature(
        "auth.oauth2",
        False,
        "OAuth2 authentication (token acquisition)",
        "'oauth2' authentication is not supported yet",
    ),
    Feature(
        "auth.oidc",
        False,
        "OpenID Connect authentication",
        "'oidc' authentication is not supported yet",
    ),
    Feature(
        "auth.certificate",
        False,
        "client-certificate authentication",
        "'certificate' authentication is not supported yet",
    ),
)

SUPPORTED: Final[frozenset[str]] = frozenset(key for key, f in FEATURES.items() if f.supported)
UNSUPPORTED: Final[frozenset[str]] = frozenset(
    key for key, f in FEATURES.items() if not f.supported
)
