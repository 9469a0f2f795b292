"""The requests `call: http` and `call: openapi` tasks hand to their activities, built in
the workflow from the typed arguments: runtime expressions evaluated, the endpoint's URI
template expanded, credentials resolved from the policy or the run's secrets.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, cast

import uritemplate

from tflow_workers.dsl.models import (
    AuthenticationPolicy,
    AuthenticationPolicyReference,
    BasicAuthenticationProperties,
    BearerAuthenticationProperties,
    EndpointConfiguration,
    HTTPArguments,
    OpenAPIArguments,
    SecretReference,
)
from tflow_workers.engine.errors import ErrorType, WorkflowError
from tflow_workers.engine.model import HttpRequest, OpenApiRequest

Interpolate = Callable[[Any, str], Any]
"""Evaluates the `${ }` strings in a value (at any depth); the second argument is the JSON
pointer an expression error names."""
Policy = AuthenticationPolicy | AuthenticationPolicyReference


class Credentials:
    """Resolves a call's authentication policy to basic credentials and a bearer token."""

    def __init__(
        self,
        policies: Mapping[str, AuthenticationPolicy],
        secrets: Mapping[str, Any],
        interpolate: Interpolate,
    ) -> None:
        self._policies = policies
        self._secrets = secrets
        self._interpolate = interpolate

    def resolve(
        self, policy: Policy | None, where: str, args_at: str
    ) -> tuple[tuple[str, str] | None, str | None]:
        """A policy given inline or named in `use.authentications`. Expressions in an
        inline policy are the call's arguments (errors name `args_at`), those in a named
        one the policy's own (errors name `where`)."""
        at = args_at
        if isinstance(policy, AuthenticationPolicyReference):
            name = self._interpolate(policy.use, at)
            named = self._policies.get(name) if isinstance(name, str) else None
            if named is None:
                raise WorkflowError.of(
                    ErrorType.CONFIGURATION,
                    f"no authentication named {name!r} in use.authentications",
                    instance=where,
                )
            policy = named
            at = where
        basic = None
        bearer = None
        if policy is not None and policy.basic is not None:
            fields = self._fields(policy.basic, ("username", "password"), f"{where}/basic", at)
            basic = (fields["username"], fields["password"])
        if policy is not None and policy.bearer is not None:
            bearer = self._fields(policy.bearer, ("token",), f"{where}/bearer", at)["token"]
        return basic, bearer

    def _fields(
        self,
        scheme: SecretReference | BasicAuthenticationProperties | BearerAuthenticationProperties,
        keys: tuple[str, ...],
        where: str,
        at: str,
    ) -> dict[str, str]:
        """A scheme's fields, inline or (`{use: <secret>}`) from the keys of a secret in
        `use.secrets`; a missing field is a configuration error, never an empty credential
        sent on."""
        source: Any
        what = "the authentication"
        if isinstance(scheme, SecretReference):
            name = self._interpolate(scheme.use, at)
            what = f"secret {name!r}"
            source = self._secrets.get(str(name))
        else:
            source = {key: self._interpolate(getattr(scheme, key), at) for key in keys}
        if not isinstance(source, dict):
            source = {}
        missing = [key for key in keys if source.get(key) is None]
        if missing:
            raise WorkflowError.of(
                ErrorType.CONFIGURATION,
                f"{what} has no {', '.join(repr(k) for k in missing)}",
                title="Incomplete credentials",
                instance=where,
            )
        return {key: str(source[key]) for key in keys}


def http_request(
    args: HTTPArguments,
    data: Any,
    interpolate: Interpolate,
    credentials: Credentials,
    ref: str,
) -> HttpRequest:
    where = f"{ref}/with"
    endpoint = args.endpoint
    policy: Policy | None = None
    if isinstance(endpoint, EndpointConfiguration):
        policy = endpoint.authentication
        endpoint = endpoint.uri
    template = interpolate(endpoint, where)
    if not isinstance(template, str):
        raise WorkflowError.of(
            ErrorType.CONFIGURATION, "call http needs with.endpoint", instance=where
        )
    uri = expand_uri(template, data, f"{where}/endpoint")
    basic, bearer = credentials.resolve(policy, f"{where}/endpoint/authentication", where)
    headers = interpolate(args.headers, where) or {}
    query = interpolate(args.query, where) or {}
    return HttpRequest(
        method=args.method.upper(),
        uri=uri,
        headers={k: str(v) for k, v in headers.items()},
        query={k: str(v) for k, v in query.items()},
        body=interpolate(args.body, where),
        output=args.output,
        redirect=args.redirect,
        basic=basic,
        bearer=bearer,
    )


def openapi_request(
    args: OpenAPIArguments, interpolate: Interpolate, credentials: Credentials, ref: str
) -> OpenApiRequest:
    where = f"{ref}/with"
    endpoint = args.document.endpoint
    policy: Policy | None = args.authentication
    if isinstance(endpoint, EndpointConfiguration):
        policy = policy or endpoint.authentication
        endpoint = endpoint.uri
    document = interpolate(endpoint, where)
    if not isinstance(document, str):
        raise WorkflowError.of(
            ErrorType.CONFIGURATION,
            "call openapi needs with.document.endpoint",
            instance=f"{where}/document",
        )
    basic, bearer = credentials.resolve(policy, f"{where}/authentication", where)
    return OpenApiRequest(
        document=document,
        operation_id=str(interpolate(args.operation_id, where)),
        parameters=interpolate(args.parameters, where) or {},
        output=args.output,
        redirect=args.redirect,
        basic=basic,
        bearer=bearer,
    )


def expand_uri(template: str, data: Any, where: str) -> str:
    """An RFC 6570 URI template filled from the task input's top-level properties, as the
    spec's *URI Template* says: `{pet.id}` names the property "pet.id", a property that is
    absent expands to nothing, scalars are written as JSON writes them (`true`, `null`,
    `1.5`), and an object or array is an expression error."""
    parsed = uritemplate.URITemplate(template)
    if not parsed.variable_names:
        return template
    values: dict[str, str] = {}
    for name in parsed.variable_names:
        if not isinstance(data, dict) or name not in data:
            continue
        value = data[name]
        if isinstance(value, dict | list):
            raise WorkflowError.of(
                ErrorType.EXPRESSION,
                f"URI template variable {{{name}}} is a {type(value).__name__}; only strings, "
                "numbers, booleans and null can be substituted",
                title="Invalid URI template value",
                instance=where,
            )
        values[name] = value if isinstance(value, str) else json.dumps(value)
    # The library's signature wants its own value union; these are all strings.
    expanded: str = parsed.expand(cast(Any, values))
    return expanded
