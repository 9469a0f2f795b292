"""A local stand-in for the public hosts the conformance kit's scenarios call (a pet
store API with its Swagger document, and an HTTP echo service's basic-auth check), and an
httpx transport that sends those hosts' requests to it.

The engine's HTTP activities take an `httpx.AsyncClient` (`EngineActivities(http=...)`);
the CTK test passes one built on `StandInTransport`, so no request leaves the machine: a
host the stand-in does not answer is a connection error naming the host.
"""

from __future__ import annotations

import base64
from collections.abc import Collection
from typing import Any

import httpx
from aiohttp import web

PETSTORE = "petstore.swagger.io"
HTTPBIN = "httpbin.org"
STANDIN_HOSTS = (PETSTORE, HTTPBIN)

PETS = [
    {"id": 1, "name": "Rex", "status": "available", "photoUrls": [], "tags": []},
    {"id": 2, "name": "Tom", "status": "available", "photoUrls": [], "tags": []},
    {"id": 3, "name": "Nemo", "status": "sold", "photoUrls": [], "tags": []},
]

_PET_SCHEMA = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "id": {"type": "integer", "format": "int64"},
        "name": {"type": "string"},
        "status": {"type": "string", "enum": ["available", "pending", "sold"]},
    },
}

# A Swagger 2.0 description of the operations the scenarios use, shaped like the public
# pet store's (host, basePath, a shared definition reached through $ref).
SWAGGER: dict[str, Any] = {
    "swagger": "2.0",
    "info": {"title": "Pet store stand-in", "version": "1.0.0"},
    "host": PETSTORE,
    "basePath": "/v2",
    "schemes": ["https"],
    "paths": {
        "/pet/findByStatus": {
            "get": {
                "operationId": "findPetsByStatus",
                "produces": ["application/json"],
                "parameters": [
                    {
                        "name": "status",
                        "in": "query",
                        "required": True,
                        "type": "array",
                        "items": {"type": "string"},
                        "collectionFormat": "multi",
                    }
                ],
                "responses": {
                    "200": {
                        "description": "matching pets",
                        "schema": {"type": "array", "items": {"$ref": "#/definitions/Pet"}},
                    }
                },
            }
        },
        "/pet/{petId}": {
            "parameters": [{"$ref": "#/parameters/petId"}],
            "get": {
                "operationId": "getPetById",
                "produces": ["application/json"],
                "responses": {
                    "200": {"description": "the pet", "schema": {"$ref": "#/definitions/Pet"}},
                    "404": {"description": "no such pet"},
                },
            },
        },
    },
    "parameters": {
        "petId": {
            "name": "petId",
            "in": "path",
            "required": True,
            "type": "integer",
            "format": "int64",
        }
    },
    "definitions": {"Pet": _PET_SCHEMA},
}


async def _find_by_status(request: web.Request) -> web.Response:
    wanted = set(request.query.getall("status", []))
    return web.json_response([pet for pet in PETS if pet["status"] in wanted])


async def _pet(request: web.Request) -> web.Response:
    text = request.match_info["pet_id"]
    if not text.isdigit():
        return web.json_response(
            {"code": 404, "type": "unknown", "message": f"not a pet id: {text}"}, status=404
        )
    pet_id = int(text)
    for pet in PETS:
        if pet["id"] == pet_id:
            return web.json_response(pet)
    return web.json_response({"code": 1, "type": "error", "message": "Pet not found"}, status=404)


async def _swagger(request: web.Request) -> web.Response:
    return web.json_response(SWAGGER)


async def _basic_auth(request: web.Request) -> web.Response:
    user, password = request.match_info["user"], request.match_info["password"]
    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    if request.headers.get("Authorization") != expected:
        return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="Fake Realm"'})
    return web.json_response({"authenticated": True, "user": user})


def app() -> web.Application:
    application = web.Application()
    application.add_routes(
        [
            web.get("/v2/swagger.json", _swagger),
            web.get("/v2/pet/findByStatus", _find_by_status),
            web.get("/v2/pet/{pet_id}", _pet),
            web.get("/basic-auth/{user}/{password}", _basic_auth),
        ]
    )
    return application


class StandInTransport(httpx.AsyncBaseTransport):
    """Sends requests for the stand-in's hosts to `base_url`, refuses every other host."""

    def __init__(self, base_url: str, hosts: Collection[str] = STANDIN_HOSTS) -> None:
        self._target = httpx.URL(base_url)
        self._hosts = frozenset(hosts)
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host not in self._hosts:
            raise httpx.ConnectError(
                f"{request.url.host} is not answered by the CTK stand-in", request=request
            )
        request.url = request.url.copy_with(
            scheme=self._target.scheme, host=self._target.host, port=self._target.port
        )
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()
