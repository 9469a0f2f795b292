"""Pydantic models of a Serverless Workflow 1.0 document, and `load_document`.

The models follow the 1.0.x schema (`schema/workflow.yaml` of the specification). They are
strict where an author makes mistakes (unknown fields are errors, so `swich:` or `thn:` is
caught) and typed where the interpreter walks them. Arguments of features this engine does
not run yet (grpc/asyncapi/a2a/mcp calls, container/script/shell processes,
extensions) are kept loose: `validate_document` rejects those features by name, and a
second, vaguer schema error about them would only add noise.

Loading checks structure only; `validate.validate_document` adds the cross-references,
expressions, reachability and supported-feature checks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from types import UnionType
from typing import Annotated, Any, ClassVar, Final, Literal, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    SerializerFunctionWrapHandler,
    StrictBool,
    StrictInt,
    Tag,
    ValidationError,
    model_serializer,
    model_validator,
)
from pydantic_core import PydanticCustomError

from .durations import parse_inline_duration, parse_iso_duration
from .expressions import is_expression
from .issues import (
    ROOT_PATH,
    TAG_PREFIX,
    DocumentError,
    Issue,
    issues_from_validation_error,
    suggest,
)

TASK_KINDS: Final[tuple[str, ...]] = (
    "call",
    "do",
    "emit",
    "for",
    "fork",
    "listen",
    "raise",
    "run",
    "set",
    "switch",
    "try",
    "wait",
)
CALL_PROTOCOLS: Final[tuple[str, ...]] = ("http", "grpc", "openapi", "asyncapi", "a2a", "mcp")
PROCESS_KINDS: Final[tuple[str, ...]] = ("container", "script", "shell", "workflow")
STRATEGY_KINDS: Final[tuple[str, ...]] = ("all", "any", "one")
AUTH_SCHEMES: Final[tuple[str, ...]] = (
    "basic",
    "bearer",
    "certificate",
    "digest",
    "oauth2",
    "oidc",
)
FLOW_DIRECTIVES: Final[frozenset[str]] = frozenset({"continue", "exit", "end"})
HTTP_METHODS: Final[frozenset[str]] = frozenset(
    {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}
)
TASK_BASE_FIELDS: Final[frozenset[str]] = frozenset(
    {"if", "input", "output", "export", "timeout", "then", "metadata"}
)

_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
_LABEL = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$")
_ABSOLUTE_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+\-.]*://.+")


def _custom(kind: str, message: str) -> PydanticCustomError:
    # Messages are passed as context so braces in them are never read as placeholders.
    return PydanticCustomError(kind, "{message}", {"message": message})


# --- scalar checks ------------------------------------------------------------------


def _check_semver(value: str) -> str:
    if not _SEMVER.match(value):
        raise ValueError(f"{value!r} is not a semantic version (e.g. '1.0.0')")
    return value


def _check_label(value: str) -> str:
    if not _LABEL.match(value):
        raise ValueError(
            f"{value!r} must be 1-63 letters, digits or '-', starting and ending with a "
            "letter or digit"
        )
    return value


def _check_iso_duration(value: str) -> str:
    parse_iso_duration(value)
    return value


def _check_uri_or_expression(value: str) -> str:
    if not (is_expression(value) or _ABSOLUTE_URI.match(value)):
        raise ValueError(f"{value!r} is neither an absolute URI nor a runtime expression")
    return value


def _check_http_method(value: str) -> str:
    if value.upper() not in HTTP_METHODS:
        raise ValueError(
            f"unknown HTTP method {value!r} (expected one of {', '.join(sorted(HTTP_METHODS))})"
        )
    return value


def _check_expression(value: str) -> str:
    if not is_expression(value):
        raise ValueError(f"{value!r} must be a mapping or a runtime expression '${{ ... }}'")
    return value


def _check_non_empty(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


SemVer = Annotated[str, AfterValidator(_check_semver)]
Label = Annotated[str, AfterValidator(_check_label)]
IsoDuration = Annotated[str, AfterValidator(_check_iso_duration)]
UriOrExpression = Annotated[str, AfterValidator(_check_uri_or_expression)]
HttpMethod = Annotated[str, AfterValidator(_check_http_method)]
RuntimeExpression = Annotated[str, AfterValidator(_check_expression)]
Name = Annotated[str, AfterValidator(_check_non_empty)]
FlowDirective = Name


# --- union discriminators -----------------------------------------------------------


def _shape(value: Any) -> str | None:
    """Tag for `string | object` unions."""
    if isinstance(value, str):
        return f"{TAG_PREFIX}string"
    if isinstance(value, dict | BaseModel):
        return f"{TAG_PREFIX}object"
    return None


def _shape_error(what: str) -> Discriminator:
    return Discriminator(_shape, custom_error_type="invalid_shape", custom_error_message=what)


def _reference_or_inline(value: Any) -> str | None:
    """Tag for `{use: name} | inline definition` unions."""
    if isinstance(value, dict):
        return f"{TAG_PREFIX}reference" if "use" in value else f"{TAG_PREFIX}inline"
    if isinstance(value, BaseModel):
        return f"{TAG_PREFIX}reference" if hasattr(value, "use") else f"{TAG_PREFIX}inline"
    return None


def _one_key_of(kinds: tuple[str, ...], what: str) -> BeforeValidator:
    """Require exactly one of `kinds` among a mapping's keys (the union's discriminator)."""

    def check(value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        present = [kind for kind in kinds if kind in value]
        if len(present) != 1:
            found = "none" if not present else " and ".join(f"'{k}'" for k in present)
            raise _custom(
                f"{what.replace(' ', '_')}_kind",
                f"{what} must set exactly one of {', '.join(kinds)} (found {found})",
            )
        return value

    return BeforeValidator(check)


def _key_tag(kinds: tuple[str, ...]) -> Any:
    def tag(value: Any) -> str | None:
        if isinstance(value, dict):
            present = [kind for kind in kinds if kind in value]
            return f"{TAG_PREFIX}{present[0]}" if present else None
        if isinstance(value, BaseModel):
            for kind in kinds:
                if getattr(value, kind, None) is not None:
                    return f"{TAG_PREFIX}{kind}"
        return None

    return tag


# --- base models --------------------------------------------------------------------


class _Model(BaseModel):
    """Strict: unknown fields are errors, and so is an explicit null where the schema wants
    a value (it allows null nowhere; `| None` in these models means "left out")."""

    model_config = ConfigDict(
        extra="forbid", validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )

    @model_validator(mode="before")
    @classmethod
    def _no_explicit_null(cls, data: Any) -> Any:
        if isinstance(data, dict):
            typed = _typed_keys(cls)
            for key, value in data.items():
                if value is None and key in typed:
                    raise _custom(
                        "null_value", f"{key!r} may not be null (leave the field out instead)"
                    )
        return data


# Per model class: the names and aliases of its fields that hold a typed value (not a
# free-form `Any`, where a JSON null is data).
_TYPED_KEYS: dict[type[BaseModel], frozenset[str]] = {}


def _typed_keys(model: type[BaseModel]) -> frozenset[str]:
    keys = _TYPED_KEYS.get(model)
    if keys is None:
        found: set[str] = set()
        for name, info in model.model_fields.items():
            if _admits_any(info.annotation):
                continue
            found.add(name)
            if info.alias:
                found.add(info.alias)
        keys = _TYPED_KEYS[model] = frozenset(found)
    return keys


def _admits_any(annotation: Any) -> bool:
    if annotation is Any:
        return True
    return any(_admits_any(arg) for arg in get_args(annotation))


class _Loose(BaseModel):
    """Permissive: for free-form objects and for arguments of unsupported features."""

    model_config = ConfigDict(
        extra="allow", validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )


# --- durations, timeouts ------------------------------------------------------------


class DurationInline(_Model):
    days: StrictInt | None = Field(default=None, ge=0)
    hours: StrictInt | None = Field(default=None, ge=0)
    minutes: StrictInt | None = Field(default=None, ge=0)
    seconds: StrictInt | None = Field(default=None, ge=0)
    milliseconds: StrictInt | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _not_empty(self) -> DurationInline:
        if not self.model_fields_set:
            raise ValueError(
                "an inline duration sets at least one of "
                "days, hours, minutes, seconds, milliseconds"
            )
        return self

    def to_timedelta(self) -> timedelta:
        return parse_inline_duration(self.model_dump(exclude_none=True))


Duration = Annotated[
    Annotated[IsoDuration, Tag(f"{TAG_PREFIX}string")]
    | Annotated[DurationInline, Tag(f"{TAG_PREFIX}object")],
    _shape_error("expected an ISO 8601 duration (e.g. 'PT30S') or an inline duration mapping"),
]


def to_timedelta(duration: str | DurationInline) -> timedelta:
    """The length of a `Duration` field."""
    if isinstance(duration, DurationInline):
        return duration.to_timedelta()
    return parse_iso_duration(duration)


class Timeout(_Model):
    after: Duration


TimeoutOrReference = Annotated[
    Annotated[Name, Tag(f"{TAG_PREFIX}string")] | Annotated[Timeout, Tag(f"{TAG_PREFIX}object")],
    _shape_error("expected a timeout mapping or the name of one in use.timeouts"),
]


# --- authentication, endpoints, resources --------------------------------------------


class SecretReference(_Model):
    """Credentials read from the secret named `use`."""

    use: Name


class BasicAuthenticationProperties(_Model):
    username: str
    password: str


class BearerAuthenticationProperties(_Model):
    token: str


BasicAuthentication = Annotated[
    Annotated[SecretReference, Tag(f"{TAG_PREFIX}reference")]
    | Annotated[BasicAuthenticationProperties, Tag(f"{TAG_PREFIX}inline")],
    Discriminator(_reference_or_inline),
]
BearerAuthentication = Annotated[
    Annotated[SecretReference, Tag(f"{TAG_PREFIX}reference")]
    | Annotated[BearerAuthenticationProperties, Tag(f"{TAG_PREFIX}inline")],
    Discriminator(_reference_or_inline),
]


class AuthenticationPolicy(_Model):
    """One authentication scheme. Only basic and bearer are typed: the others are not run."""

    basic: BasicAuthentication | None = None
    bearer: BearerAuthentication | None = None
    certificate: dict[str, Any] | None = None
    digest: dict[str, Any] | None = None
    oauth2: dict[str, Any] | None = None
    oidc: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one_scheme(self) -> AuthenticationPolicy:
        if len(self.model_fields_set) != 1:
            raise ValueError(
                f"an authentication policy sets exactly one of {', '.join(AUTH_SCHEMES)}"
            )
        return self

    @property
    def scheme(self) -> str:
        return next(iter(self.model_fields_set))


class AuthenticationPolicyReference(_Model):
    """The name of a policy in `use.authentications`."""

    use: Name


ReferenceableAuthenticationPolicy = Annotated[
    Annotated[AuthenticationPolicyReference, Tag(f"{TAG_PREFIX}reference")]
    | Annotated[AuthenticationPolicy, Tag(f"{TAG_PREFIX}inline")],
    Discriminator(_reference_or_inline),
]


class EndpointConfiguration(_Model):
    uri: UriOrExpression
    authentication: ReferenceableAuthenticationPolicy | None = None


Endpoint = Annotated[
    Annotated[UriOrExpression, Tag(f"{TAG_PREFIX}string")]
    | Annotated[EndpointConfiguration, Tag(f"{TAG_PREFIX}object")],
    _shape_error("expected a URI, a runtime expression or an endpoint mapping with 'uri'"),
]


class ExternalResource(_Model):
    name: str | None = None
    endpoint: Endpoint


class Catalog(_Loose):
    endpoint: Endpoint


# --- data flow ----------------------------------------------------------------------


class Schema(_Model):
    format: str = "json"
    document: Any = None
    resource: ExternalResource | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Schema:
        sources = {"document", "resource"} & self.model_fields_set
        if len(sources) != 1:
            raise ValueError("a schema sets exactly one of 'document' (inline) or 'resource'")
        return self


StringOrMapping = Annotated[
    Annotated[str, Tag(f"{TAG_PREFIX}string")]
    | Annotated[dict[str, Any], Tag(f"{TAG_PREFIX}object")],
    _shape_error("expected a runtime expression or a mapping"),
]


class Input(_Model):
    schema_: Schema | None = Field(default=None, alias="schema")
    from_: StringOrMapping | None = Field(default=None, alias="from")


class Output(_Model):
    schema_: Schema | None = Field(default=None, alias="schema")
    as_: StringOrMapping | None = Field(default=None, alias="as")


class Export(_Model):
    schema_: Schema | None = Field(default=None, alias="schema")
    as_: StringOrMapping | None = Field(default=None, alias="as")


# --- errors and retries -------------------------------------------------------------


class Error(_Model):
    """A Problem Details error (RFC 7807). Fields may be runtime expressions."""

    type: Name
    status: StrictInt
    instance: str | None = None
    title: str | None = None
    detail: str | None = None


ErrorOrReference = Annotated[
    Annotated[Name, Tag(f"{TAG_PREFIX}string")] | Annotated[Error, Tag(f"{TAG_PREFIX}object")],
    _shape_error("expected an error mapping or the name of one in use.errors"),
]


class ErrorFilter(_Model):
    """Static error filter. The schema spells the detail field `details`; `detail` (the
    error's own spelling) is accepted too."""

    type: str | None = None
    status: StrictInt | None = None
    instance: str | None = None
    title: str | None = None
    detail: str | None = None
    details: str | None = None


class Backoff(_Model):
    constant: dict[str, Any] | None = None
    linear: dict[str, Any] | None = None
    exponential: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Backoff:
        if len(self.model_fields_set) != 1:
            raise ValueError("a backoff sets exactly one of constant, linear, exponential")
        return self

    @property
    def kind(self) -> Literal["constant", "linear", "exponential"]:
        if self.linear is not None:
            return "linear"
        if self.exponential is not None:
            return "exponential"
        return "constant"


class RetryLimitAttempt(_Model):
    count: StrictInt | None = Field(default=None, ge=0)
    duration: Duration | None = None


class RetryLimit(_Model):
    attempt: RetryLimitAttempt | None = None
    duration: Duration | None = None


class Jitter(_Model):
    from_: Duration = Field(alias="from")
    to: Duration


class RetryPolicy(_Model):
    when: str | None = None
    except_when: str | None = Field(default=None, alias="exceptWhen")
    delay: Duration | None = None
    backoff: Backoff | None = None
    limit: RetryLimit | None = None
    jitter: Jitter | None = None


RetryPolicyOrReference = Annotated[
    Annotated[Name, Tag(f"{TAG_PREFIX}string")]
    | Annotated[RetryPolicy, Tag(f"{TAG_PREFIX}object")],
    _shape_error("expected a retry policy mapping or the name of one in use.retries"),
]


# --- events -------------------------------------------------------------------------


class EventProperties(_Loose):
    """CloudEvent attributes; extension attributes are allowed."""

    id: str | None = None
    source: str | None = None
    type: str | None = None
    time: str | None = None
    subject: str | None = None
    datacontenttype: str | None = None
    dataschema: str | None = None
    data: Any = None


class EmittedEventProperties(EventProperties):
    source: str
    type: str


class CorrelationKey(_Model):
    from_: str = Field(alias="from")
    expect: str | None = None


class EventFilter(_Model):
    with_: EventProperties = Field(alias="with")
    correlate: dict[str, CorrelationKey] | None = None


class AllEventConsumptionStrategy(_Model):
    all: list[EventFilter]


class AnyEventConsumptionStrategy(_Model):
    any: list[EventFilter]
    until: Until | None = None


class OneEventConsumptionStrategy(_Model):
    one: EventFilter


EventConsumptionStrategy = Annotated[
    Annotated[AllEventConsumptionStrategy, Tag(f"{TAG_PREFIX}all")]
    | Annotated[AnyEventConsumptionStrategy, Tag(f"{TAG_PREFIX}any")]
    | Annotated[OneEventConsumptionStrategy, Tag(f"{TAG_PREFIX}one")],
    Discriminator(_key_tag(STRATEGY_KINDS)),
    _one_key_of(STRATEGY_KINDS, "an event consumption strategy"),
]

Until = Annotated[
    Annotated[str, Tag(f"{TAG_PREFIX}string")]
    | Annotated[EventConsumptionStrategy, Tag(f"{TAG_PREFIX}object")],
    _shape_error("expected a runtime expression or an event consumption strategy"),
]


# --- tasks --------------------------------------------------------------------------


class TaskBase(_Model):
    """Fields every task may set."""

    KIND: ClassVar[str] = ""

    if_: str | None = Field(default=None, alias="if")
    input: Input | None = None
    output: Output | None = None
    export: Export | None = None
    timeout: TimeoutOrReference | None = None
    then: FlowDirective | None = None
    metadata: dict[str, Any] | None = None

    @property
    def kind(self) -> str:
        """One of `TASK_KINDS` (`call` whatever the protocol)."""
        return self.KIND.partition(":")[0]


class HTTPArguments(_Model):
    method: HttpMethod
    endpoint: Endpoint
    headers: StringOrMapping | None = None
    body: Any = None
    query: StringOrMapping | None = None
    output: Literal["raw", "content", "response"] = "content"
    redirect: StrictBool = False


class CallHTTP(TaskBase):
    KIND: ClassVar[str] = "call:http"
    call: Literal["http"]
    with_: HTTPArguments = Field(alias="with")


class GRPCArguments(_Loose):
    proto: dict[str, Any]
    service: dict[str, Any]
    method: str
    arguments: dict[str, Any] | None = None


class CallGRPC(TaskBase):
    KIND: ClassVar[str] = "call:grpc"
    call: Literal["grpc"]
    with_: GRPCArguments = Field(alias="with")


class OpenAPIArguments(_Model):
    document: ExternalResource
    operation_id: Name = Field(alias="operationId")
    parameters: dict[str, Any] | None = None
    authentication: ReferenceableAuthenticationPolicy | None = None
    output: Literal["raw", "content", "response"] = "content"
    redirect: StrictBool = False


class CallOpenAPI(TaskBase):
    KIND: ClassVar[str] = "call:openapi"
    call: Literal["openapi"]
    with_: OpenAPIArguments = Field(alias="with")


class AsyncAPIArguments(_Loose):
    document: dict[str, Any]


class CallAsyncAPI(TaskBase):
    KIND: ClassVar[str] = "call:asyncapi"
    call: Literal["asyncapi"]
    with_: AsyncAPIArguments = Field(alias="with")


class CallA2A(TaskBase):
    KIND: ClassVar[str] = "call:a2a"
    call: Literal["a2a"]
    with_: dict[str, Any] = Field(alias="with")


class CallMCP(TaskBase):
    KIND: ClassVar[str] = "call:mcp"
    call: Literal["mcp"]
    with_: dict[str, Any] = Field(alias="with")


class CallFunction(TaskBase):
    """A call of a function by name (from `use.functions`)."""

    KIND: ClassVar[str] = "call:function"
    call: Name
    with_: dict[str, Any] | None = Field(default=None, alias="with")


class DoTask(TaskBase):
    KIND: ClassVar[str] = "do"
    do: TaskList


class EmitEvent(_Model):
    with_: EmittedEventProperties = Field(alias="with")


class EmitConfiguration(_Model):
    event: EmitEvent


class EmitTask(TaskBase):
    KIND: ClassVar[str] = "emit"
    emit: EmitConfiguration


class ForConfiguration(_Model):
    each: Name = "item"
    in_: str = Field(alias="in")
    at: Name = "index"


class ForTask(TaskBase):
    KIND: ClassVar[str] = "for"
    for_: ForConfiguration = Field(alias="for")
    while_: str | None = Field(default=None, alias="while")
    do: TaskList


class ForkConfiguration(_Model):
    branches: TaskList
    compete: StrictBool = False


class ForkTask(TaskBase):
    KIND: ClassVar[str] = "fork"
    fork: ForkConfiguration


class ListenConfiguration(_Model):
    to: EventConsumptionStrategy
    read: Literal["data", "envelope", "raw"] = "data"


class SubscriptionIterator(_Model):
    item: Name = "item"
    at: Name = "index"
    do: TaskList | None = None
    output: Output | None = None
    export: Export | None = None


class ListenTask(TaskBase):
    KIND: ClassVar[str] = "listen"
    listen: ListenConfiguration
    foreach: SubscriptionIterator | None = None


class RaiseConfiguration(_Model):
    error: ErrorOrReference


class RaiseTask(TaskBase):
    KIND: ClassVar[str] = "raise"
    raise_: RaiseConfiguration = Field(alias="raise")


ProcessReturn = Literal["stdout", "stderr", "code", "all", "none"]


class _Process(_Model):
    await_: StrictBool = Field(default=True, alias="await")
    return_: ProcessReturn = Field(default="stdout", alias="return")


class RunContainer(_Process):
    container: _Loose


class RunScript(_Process):
    script: _Loose


class RunShell(_Process):
    shell: _Loose


class SubflowConfiguration(_Model):
    namespace: Label
    name: Label
    version: str = "latest"
    input: StringOrMapping | None = None


class RunWorkflow(_Process):
    workflow: SubflowConfiguration


RunConfiguration = Annotated[
    Annotated[RunContainer, Tag(f"{TAG_PREFIX}container")]
    | Annotated[RunScript, Tag(f"{TAG_PREFIX}script")]
    | Annotated[RunShell, Tag(f"{TAG_PREFIX}shell")]
    | Annotated[RunWorkflow, Tag(f"{TAG_PREFIX}workflow")],
    Discriminator(_key_tag(PROCESS_KINDS)),
    _one_key_of(PROCESS_KINDS, "run"),
]


class RunTask(TaskBase):
    KIND: ClassVar[str] = "run"
    run: RunConfiguration


SetValue = Annotated[
    Annotated[RuntimeExpression, Tag(f"{TAG_PREFIX}string")]
    | Annotated[dict[str, Any], Tag(f"{TAG_PREFIX}object")],
    _shape_error("expected a mapping or a runtime expression"),
]


class SetTask(TaskBase):
    KIND: ClassVar[str] = "set"
    set: SetValue


class SwitchCase(_Model):
    """One case of a switch. In a document it is a single-key map `{caseName: {when, then}}`;
    here the name is a field. A case without `when` is the default case."""

    name: str
    when: str | None = None
    then: FlowDirective

    @model_validator(mode="before")
    @classmethod
    def _from_named_map(cls, value: Any) -> Any:
        if isinstance(value, SwitchCase) or not isinstance(value, dict):
            return value
        if len(value) != 1:
            raise _custom(
                "switch_case",
                "a switch case is a single-key map caseName: {when, then}; "
                f"got {len(value)} keys",
            )
        name, body = next(iter(value.items()))
        if not isinstance(body, dict):
            raise _custom("switch_case", f"switch case {name!r} must be a mapping with 'then'")
        if "name" in body:
            raise _custom("switch_case", "unknown field 'name'")
        return {"name": name, **body}

    @model_serializer(mode="wrap")
    def _to_named_map(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        body: dict[str, Any] = handler(self)
        name = body.pop("name", self.name)
        return {name: body}

    @property
    def is_default(self) -> bool:
        return self.when is None


class SwitchTask(TaskBase):
    KIND: ClassVar[str] = "switch"
    switch: list[SwitchCase] = Field(min_length=1)


class CatchErrors(_Model):
    with_: ErrorFilter | None = Field(default=None, alias="with")


class Catch(_Model):
    errors: CatchErrors | None = None
    as_: Name | None = Field(default=None, alias="as")
    when: str | None = None
    except_when: str | None = Field(default=None, alias="exceptWhen")
    retry: RetryPolicyOrReference | None = None
    do: TaskList | None = None


class TryTask(TaskBase):
    KIND: ClassVar[str] = "try"
    try_: TaskList = Field(alias="try")
    catch: Catch


class WaitTask(TaskBase):
    KIND: ClassVar[str] = "wait"
    wait: Duration


def kinds_present(value: Mapping[Any, Any]) -> list[str]:
    """The task kinds a raw task mapping sets, in `TASK_KINDS` order; one for a valid task."""
    present = [kind for kind in TASK_KINDS if kind in value]
    # A `for` task also has a `do` list; that `do` is its body, not a second kind.
    if "for" in present and "do" in present:
        present.remove("do")
    return present


def task_kind(value: Mapping[Any, Any]) -> str | None:
    """The kind of a raw task mapping (`set`, `call`, ...), or None if it has none or several."""
    present = kinds_present(value)
    return present[0] if len(present) == 1 else None


def _task_tag(value: Any) -> str | None:
    if isinstance(value, TaskBase):
        return f"{TAG_PREFIX}{value.KIND}"
    if not isinstance(value, dict):
        return None
    kind = task_kind(value)
    if kind == "call":
        call = value["call"]
        protocol = call if isinstance(call, str) and call in CALL_PROTOCOLS else "function"
        return f"{TAG_PREFIX}call:{protocol}"
    return f"{TAG_PREFIX}{kind}" if kind else None


def _check_task_shape(value: Any) -> Any:
    if isinstance(value, TaskBase):
        return value
    if not isinstance(value, dict):
        raise _custom("task_type", "a task must be a mapping")
    present = kinds_present(value)
    if len(present) > 1:
        raise _custom(
            "task_kind",
            "a task has exactly one kind, but this one sets "
            + " and ".join(repr(kind) for kind in present),
        )
    if not present:
        unknown = [str(key) for key in value if key not in TASK_BASE_FIELDS]
        for key in unknown:
            hint = suggest(key, TASK_KINDS)
            if hint:
                raise _custom("task_kind", f"unknown task kind '{key}'{hint}")
        raise _custom("task_kind", f"a task must set one of {', '.join(TASK_KINDS)}")
    return value


Task = Annotated[
    Annotated[CallHTTP, Tag(f"{TAG_PREFIX}call:http")]
    | Annotated[CallGRPC, Tag(f"{TAG_PREFIX}call:grpc")]
    | Annotated[CallOpenAPI, Tag(f"{TAG_PREFIX}call:openapi")]
    | Annotated[CallAsyncAPI, Tag(f"{TAG_PREFIX}call:asyncapi")]
    | Annotated[CallA2A, Tag(f"{TAG_PREFIX}call:a2a")]
    | Annotated[CallMCP, Tag(f"{TAG_PREFIX}call:mcp")]
    | Annotated[CallFunction, Tag(f"{TAG_PREFIX}call:function")]
    | Annotated[DoTask, Tag(f"{TAG_PREFIX}do")]
    | Annotated[EmitTask, Tag(f"{TAG_PREFIX}emit")]
    | Annotated[ForTask, Tag(f"{TAG_PREFIX}for")]
    | Annotated[ForkTask, Tag(f"{TAG_PREFIX}fork")]
    | Annotated[ListenTask, Tag(f"{TAG_PREFIX}listen")]
    | Annotated[RaiseTask, Tag(f"{TAG_PREFIX}raise")]
    | Annotated[RunTask, Tag(f"{TAG_PREFIX}run")]
    | Annotated[SetTask, Tag(f"{TAG_PREFIX}set")]
    | Annotated[SwitchTask, Tag(f"{TAG_PREFIX}switch")]
    | Annotated[TryTask, Tag(f"{TAG_PREFIX}try")]
    | Annotated[WaitTask, Tag(f"{TAG_PREFIX}wait")],
    Discriminator(_task_tag),
    BeforeValidator(_check_task_shape),
]


def _check_task_item(value: Any) -> Any:
    if not isinstance(value, dict):
        raise _custom("task_item", "a task list entry must be a single-key map taskName: task")
    if len(value) != 1:
        raise _custom(
            "task_item",
            f"a task list entry must be a single-key map taskName: task; got {len(value)} keys",
        )
    return value


TaskItem = Annotated[dict[Name, Task], BeforeValidator(_check_task_item)]
TaskList = list[TaskItem]


def named_tasks(tasks: TaskList) -> list[tuple[str, Task]]:
    """A task list as (name, task) pairs, in order."""
    return [next(iter(item.items())) for item in tasks]


# --- workflow -----------------------------------------------------------------------


class Document(_Model):
    dsl: SemVer
    namespace: Label
    name: Label
    version: SemVer
    title: str | None = None
    summary: str | None = None
    tags: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None


class Use(_Model):
    authentications: dict[Name, AuthenticationPolicy] | None = None
    errors: dict[Name, Error] | None = None
    extensions: list[dict[str, Any]] | None = None
    functions: dict[Name, Task] | None = None
    retries: dict[Name, RetryPolicy] | None = None
    secrets: list[Name] | None = None
    timeouts: dict[Name, Timeout] | None = None
    catalogs: dict[Name, Catalog] | None = None


class Schedule(_Model):
    every: Duration | None = None
    cron: Name | None = None
    after: Duration | None = None
    on: EventConsumptionStrategy | None = None

    @model_validator(mode="after")
    def _something(self) -> Schedule:
        if not self.model_fields_set:
            raise ValueError("a schedule sets at least one of every, cron, after, on")
        return self


class WorkflowDocument(_Model):
    """A whole Serverless Workflow 1.0 document."""

    document: Document
    input: Input | None = None
    use: Use | None = None
    do: TaskList
    timeout: TimeoutOrReference | None = None
    output: Output | None = None
    schedule: Schedule | None = None


# Task lists and event strategies are recursive, and refer to aliases defined after the
# models that use them; resolve those references now that every name exists.
for _model in list(globals().values()):
    if isinstance(_model, type) and issubclass(_model, BaseModel) and _model.__module__ == __name__:
        _model.model_rebuild()


def _strip(annotation: Any) -> Any:
    """Drop `Annotated` wrappers and `None` from an annotation; a union of several members
    is returned as it is (a tag in the error location picks the member)."""
    while True:
        if get_origin(annotation) is Annotated:
            annotation = get_args(annotation)[0]
            continue
        if get_origin(annotation) in (Union, UnionType):
            members = [arg for arg in get_args(annotation) if arg is not type(None)]
            if len(members) == 1:
                annotation = members[0]
                continue
        return annotation


def _member(annotation: Any, tag: str) -> Any:
    for member in get_args(_strip(annotation)):
        metadata = member.__metadata__ if get_origin(member) is Annotated else ()
        if any(isinstance(meta, Tag) and meta.tag == tag for meta in metadata):
            return member
    return None


def _step(annotation: Any, part: int | str) -> Any:
    if isinstance(part, str) and part.startswith(TAG_PREFIX):
        return _member(annotation, part)
    annotation = _strip(annotation)
    origin = get_origin(annotation)
    if isinstance(part, int):
        return get_args(annotation)[0] if origin is list else None
    if part == "[key]":
        return annotation
    if origin is dict:
        return get_args(annotation)[1]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        for name, field in annotation.model_fields.items():
            if part in (name, field.alias):
                return field.annotation
    return None


def fields_at(loc: Sequence[int | str]) -> frozenset[str]:
    """The field names (as written in documents) of the model at an error location."""
    annotation: Any = WorkflowDocument
    for part in loc:
        annotation = _step(annotation, part)
        if annotation is None:
            return frozenset()
    model = _strip(annotation)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return frozenset(field.alias or name for name, field in model.model_fields.items())
    return frozenset()


MAX_DEPTH: Final = 200


def nesting_depth(value: Any, limit: int = MAX_DEPTH) -> int:
    """Depth of nested mappings/lists, counted up to `limit + 1` (so cycles terminate)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > deepest:
            deepest = depth
            if deepest > limit:
                return deepest
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list | tuple):
            stack.extend((child, depth + 1) for child in item)
    return deepest


def load_document(data: dict[str, Any]) -> WorkflowDocument:
    """Parse a document. Raises `DocumentError` listing every structural problem."""
    if not isinstance(data, dict):
        raise DocumentError([Issue(ROOT_PATH, "a workflow document must be a mapping")])
    if nesting_depth(data) > MAX_DEPTH:
        raise DocumentError(
            [Issue(ROOT_PATH, f"document is nested more than {MAX_DEPTH} levels deep")]
        )
    try:
        return WorkflowDocument.model_validate(data)
    except ValidationError as error:
        raise DocumentError(issues_from_validation_error(error, fields_at)) from None
