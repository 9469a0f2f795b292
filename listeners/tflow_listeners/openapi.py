"""Route declarations and the OpenAPI documents generated from them, for the HTTP servers
of this package (the webhook, the run API).

A route is declared with `declared` (aiohttp-pydantic's `inject_params`: the request
first, path parameters positional-only, query parameters, a body model; the return
annotation says what it answers with which status, the docstring describes it, its
`Tags:`, `Security:` and `Status Codes:` sections included). aiohttp-pydantic validates
the request against the declaration (a failure is a `Refusal` 400 naming the field) and
generates the document from the routes of an application (`document`).

aiohttp-pydantic writes OpenAPI 3.0, which has no `null` type: the models answered or
taken (`ApiModel`) describe an optional reference as `allOf` + `nullable`, the form 3.0
knows, instead of pydantic's `anyOf` with `null`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp_pydantic.decorator import inject_params
from aiohttp_pydantic.oas.view import generate_oas
from pydantic import BaseModel, ValidationError

from tflow_listeners.problems import on_validation_error

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
BEARER = {"bearer": {"type": "http", "scheme": "bearer"}}


def declared(
    on_error: Callable[[ValidationError, str], Awaitable[web.StreamResponse]] = on_validation_error,
) -> Callable[[Callable[..., Any]], Handler]:
    """The decorator that declares a route (see the module docstring)."""
    decorator: Callable[[Callable[..., Any]], Handler] = inject_params(
        on_validation_error=on_error
    ).and_request
    return decorator


def _nullable_refs(node: Any) -> None:
    if isinstance(node, dict):
        options = node.get("anyOf")
        if isinstance(options, list) and {"type": "null"} in options:
            rest = [o for o in options if o != {"type": "null"}]
            if any("type" not in o for o in rest):
                del node["anyOf"]
                node["nullable"] = True
                if len(rest) == 1 and set(rest[0]) == {"$ref"}:
                    node["allOf"] = rest
                else:
                    node["oneOf"] = rest
                if node.get("default", ...) is None:
                    del node["default"]
        for value in node.values():
            _nullable_refs(value)
    elif isinstance(node, list):
        for value in node:
            _nullable_refs(value)


class ApiModel(BaseModel):
    """A model an API takes or answers, described in OpenAPI 3.0's terms."""

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        schema = super().model_json_schema(*args, **kwargs)
        _nullable_refs(schema)
        return schema


def document(app: web.Application, title: str, version: str = "v1alpha1") -> dict[str, Any]:
    """The OpenAPI document of `app`'s declared routes."""
    generated: dict[str, Any] = generate_oas(
        [app], version_spec=version, title_spec=title, security=BEARER
    )
    return generated
