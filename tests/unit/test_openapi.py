"""From an OpenAPI document, an operation id and parameters to an HTTP request."""

from __future__ import annotations

from typing import Any

import pytest

from tflow_workers.engine.errors import WorkflowError
from tflow_workers.engine.openapi import OpenApiOperation

OAS3: dict[str, Any] = {
    "openapi": "3.1.0",
    "servers": [
        {"url": "https://{region}.example.com/v1", "variables": {"region": {"default": "eu"}}}
    ],
    "paths": {
        "/items": {
            "get": {
                "operationId": "list",
                "parameters": [
                    {"name": "tag", "in": "query", "schema": {"type": "array"}},
                    {"name": "ids", "in": "query", "explode": False},
                    {"name": "session", "in": "cookie"},
                ],
            }
        }
    },
}

SWAGGER: dict[str, Any] = {
    "swagger": "2.0",
    "basePath": "/api/",
    "paths": {
        "/things/{id}": {
            "put": {
                "operationId": "put",
                "parameters": [
                    {"$ref": "#/parameters/id"},
                    {"name": "tags", "in": "query", "collectionFormat": "pipes"},
                    {"name": "thing", "in": "body", "required": True},
                ],
            }
        }
    },
    "parameters": {"id": {"name": "id", "in": "path", "required": True}},
}


def test_openapi_3_server_variables_arrays_and_cookies() -> None:
    request = OpenApiOperation(OAS3, "https://docs.example.com/api.yaml", "list").request(
        {"tag": ["a", "b"], "ids": [1, 2], "session": "s 1"}
    )
    assert request == {
        "method": "GET",
        "uri": "https://eu.example.com/v1/items",
        "query": {"tag": ["a", "b"], "ids": "1,2"},
        "headers": {"Cookie": "session=s%201"},
        "body": None,
    }


def test_swagger_2_host_from_the_document_uri_refs_and_body() -> None:
    request = OpenApiOperation(SWAGGER, "http://localhost:8080/swagger.json", "put").request(
        {
            "id": "x/1",
            "tags": ["a", "b"],
            "thing": {"name": "n"},
        }
    )
    assert request == {
        "method": "PUT",
        "uri": "http://localhost:8080/api/things/x%2F1",
        "query": {"tags": "a|b"},
        "headers": {},
        "body": {"name": "n"},
    }


def test_missing_operation_and_external_refs_are_configuration_errors() -> None:
    with pytest.raises(WorkflowError, match="no operation 'gone'"):
        OpenApiOperation(SWAGGER, "http://h/s.json", "gone")
    external = {"swagger": "2.0", "paths": {"/a": {"$ref": "other.yaml#/a"}}}
    with pytest.raises(WorkflowError, match="points outside the OpenAPI document"):
        OpenApiOperation(external, "http://h/s.json", "x")
