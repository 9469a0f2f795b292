"""`call: openapi`: from an OpenAPI document (2.0 or 3.x), an operation id and the call's
parameters to the HTTP request the `tflow.openapi` activity sends.

The document is parsed as YAML 1.2 (JSON is YAML); `$ref`s are resolved with the
`referencing` library, within the document. How parameters are placed:

* each parameter the operation (or its path) declares is taken from `parameters` by name
  and goes where its `in` says: the path template, the query (arrays repeat the name, as
  OpenAPI 3's default `form`/`explode` and Swagger's `multi` do; Swagger's `csv`, `ssv`,
  `tsv` and `pipes` join them), a header or a cookie;
* the request body is the Swagger 2 `in: body` parameter, or for an OpenAPI 3
  `requestBody` the parameter named `body`;
* a required parameter with no value is a validation error; parameters the operation does
  not declare are an error too, so a typo is not dropped silently.

The base URL is the document's first server (OpenAPI 3, variables at their defaults,
relative to the document's own URI) or `schemes`/`host`/`basePath` (Swagger 2, the
document's scheme and host when absent).
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any, Final

from referencing import Registry, Resource
from referencing.exceptions import Unresolvable

from tflow_workers.engine.errors import ErrorType, WorkflowError

HTTP_METHODS: Final = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_DOCUMENT_URI: Final = "urn:tflow:openapi-document"
_SEPARATORS: Final = {"csv": ",", "ssv": " ", "tsv": "\t", "pipes": "|"}


class OpenApiOperation:
    """One operation of a document, with its `$ref`s resolved."""

    def __init__(self, document: dict[str, Any], document_uri: str, operation_id: str) -> None:
        if not isinstance(document, dict) or not isinstance(document.get("paths"), dict):
            raise _error(ErrorType.CONFIGURATION, "the OpenAPI document has no 'paths'")
        self.document = document
        self.document_uri = document_uri
        self.swagger2 = str(document.get("swagger", "")).startswith("2")
        self._resolver = (
            Registry()
            .with_resource(_DOCUMENT_URI, Resource.opaque(document))
            .resolver(base_uri=_DOCUMENT_URI)
        )
        for path, item in document["paths"].items():
            item = self.resolve(item)
            for method in HTTP_METHODS:
                operation = self.resolve(item.get(method))
                if isinstance(operation, dict) and operation.get("operationId") == operation_id:
                    self.path = str(path)
                    self.method = method.upper()
                    self.operation = operation
                    self.parameters = self._parameters(item, operation)
                    return
        raise _error(
            ErrorType.CONFIGURATION, f"the OpenAPI document has no operation {operation_id!r}"
        )

    def resolve(self, value: Any) -> Any:
        """`value` with its `$ref` followed (repeatedly), if it is a reference."""
        seen = 0
        while isinstance(value, dict) and isinstance(value.get("$ref"), str):
            ref = value["$ref"]
            if not ref.startswith("#"):
                raise _error(
                    ErrorType.CONFIGURATION,
                    f"$ref {ref!r} points outside the OpenAPI document; only references "
                    "within it are followed",
                )
            try:
                value = self._resolver.lookup(ref).contents
            except Unresolvable:
                raise _error(
                    ErrorType.CONFIGURATION, f"$ref {ref!r} does not resolve in the document"
                ) from None
            seen += 1
            if seen > 32:
                raise _error(ErrorType.CONFIGURATION, f"$ref {ref!r} refers to itself")
        return value

    def _parameters(self, item: dict[str, Any], operation: dict[str, Any]) -> list[dict[str, Any]]:
        declared: dict[tuple[str, str], dict[str, Any]] = {}
        for source in (item.get("parameters") or [], operation.get("parameters") or []):
            for raw in source:
                parameter = self.resolve(raw)
                if isinstance(parameter, dict) and "name" in parameter and "in" in parameter:
                    declared[(str(parameter["name"]), str(parameter["in"]))] = parameter
        return list(declared.values())

    def base_url(self) -> str:
        document, origin = self.document, urllib.parse.urlsplit(self.document_uri)
        if self.swagger2:
            schemes = [str(s) for s in document.get("schemes") or []]
            scheme = origin.scheme if not schemes or origin.scheme in schemes else schemes[0]
            host = str(document.get("host") or origin.netloc)
            return f"{scheme}://{host}{str(document.get('basePath') or '').rstrip('/')}"
        servers = document.get("servers") or [{"url": "/"}]
        server: dict[str, Any] = servers[0] if isinstance(servers[0], dict) else {"url": "/"}
        url = str(server.get("url", "/"))
        for name, variable in (server.get("variables") or {}).items():
            url = url.replace("{" + name + "}", str((variable or {}).get("default", "")))
        return urllib.parse.urljoin(self.document_uri, url).rstrip("/")

    def request(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """method, uri, query, headers and body for a call with these parameters."""
        remaining = dict(arguments)
        path = self.path
        query: dict[str, str | list[str]] = {}
        headers: dict[str, str] = {}
        cookies: list[str] = []
        body: Any = None
        for parameter in self.parameters:
            name, where = str(parameter["name"]), str(parameter["in"])
            if name not in remaining:
                if parameter.get("required") or where == "path":
                    raise _error(
                        ErrorType.VALIDATION,
                        f"operation {self.operation.get('operationId')!r} needs the "
                        f"{where} parameter {name!r}",
                    )
                continue
            value = remaining.pop(name)
            if where == "body":
                body = value
            elif where == "path":
                path = path.replace("{" + name + "}", urllib.parse.quote(_text(value), safe=""))
            elif where == "query":
                query[name] = self._query_value(parameter, value)
            elif where == "header":
                headers[name] = _text(value)
            elif where == "cookie":
                cookies.append(f"{name}={urllib.parse.quote(_text(value), safe='')}")
        if "requestBody" in self.operation and "body" in remaining:
            body = remaining.pop("body")
        if remaining:
            raise _error(
                ErrorType.VALIDATION,
                f"operation {self.operation.get('operationId')!r} has no parameter "
                + ", ".join(repr(name) for name in sorted(remaining)),
            )
        if cookies:
            headers["Cookie"] = "; ".join(cookies)
        return {
            "method": self.method,
            "uri": self.base_url() + path,
            "query": query,
            "headers": headers,
            "body": body,
        }

    def _query_value(self, parameter: dict[str, Any], value: Any) -> str | list[str]:
        if not isinstance(value, list):
            return _text(value)
        items = [_text(item) for item in value]
        if self.swagger2:
            fmt = str(parameter.get("collectionFormat", "csv"))
            if fmt in _SEPARATORS:
                return _SEPARATORS[fmt].join(items)
            return items
        if parameter.get("explode", True) is False:
            return ",".join(items)
        return items


def _text(value: Any) -> str:
    if isinstance(value, dict | list):
        raise _error(
            ErrorType.EXPRESSION,
            f"an OpenAPI path, query, header or cookie parameter cannot be a "
            f"{type(value).__name__}",
        )
    return value if isinstance(value, str) else json.dumps(value)


def _error(kind: str, detail: str) -> WorkflowError:
    return WorkflowError.of(kind, detail, title="OpenAPI call")
