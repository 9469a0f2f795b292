"""A small real HTTP service the engine's `call: http` tests talk to."""

from __future__ import annotations

import base64

from aiohttp import web


async def pet(request: web.Request) -> web.Response:
    pet_id = int(request.match_info["id"])
    if pet_id == 404:
        return web.json_response({"message": "no such pet"}, status=404)
    return web.json_response({"id": pet_id, "name": f"pet-{pet_id}", "query": dict(request.query)})


async def echo(request: web.Request) -> web.Response:
    body = await request.json() if request.can_read_body else None
    return web.json_response(
        {"method": request.method, "body": body, "headers": dict(request.headers)}
    )


async def status(request: web.Request) -> web.Response:
    return web.Response(status=int(request.match_info["code"]), text="status")


async def redirect(request: web.Request) -> web.Response:
    raise web.HTTPFound("/pets/7")


async def basic(request: web.Request) -> web.Response:
    expected = "Basic " + base64.b64encode(b"admin:s3cret").decode()
    if request.headers.get("Authorization") != expected:
        return web.json_response({"error": "unauthorized"}, status=401)
    return web.json_response({"user": "admin"})


async def bearer(request: web.Request) -> web.Response:
    if request.headers.get("Authorization") != "Bearer tok-123":
        return web.json_response({"error": "unauthorized"}, status=401)
    return web.json_response({"token": "ok"})


async def anything(request: web.Request) -> web.Response:
    """Echoes the request line as sent, so a test sees how a URI was expanded."""
    return web.json_response({"path": request.raw_path})


# An OpenAPI 3 description of this service, in YAML, with a relative server URL.
OPENAPI_YAML = """\
openapi: 3.0.3
info: {title: fixture, version: 1.0.0}
servers:
  - url: /
paths:
  /pets/{id}:
    parameters:
      - $ref: '#/components/parameters/petId'
    get:
      operationId: getPet
      parameters:
        - {name: verbose, in: query, schema: {type: string}}
        - {name: tags, in: query, schema: {type: array, items: {type: string}}}
  /echo:
    post:
      operationId: echo
      parameters:
        - {name: X-Order, in: header, required: true, schema: {type: string}}
      requestBody:
        content:
          application/json:
            schema: {type: object}
components:
  parameters:
    petId: {name: id, in: path, required: true, schema: {type: integer}}
"""


async def openapi_document(request: web.Request) -> web.Response:
    return web.Response(text=OPENAPI_YAML, content_type="application/yaml")


async def api_data(request: web.Request) -> web.Response:
    return web.json_response({"data": {"items": [1, 2, 3]}, "page": 1})


async def text(request: web.Request) -> web.Response:
    return web.Response(text="plain words", content_type="text/plain")


HOOKS = web.AppKey("hooks", dict[str, list[object]])


async def hook_post(request: web.Request) -> web.Response:
    request.app[HOOKS].setdefault(request.match_info["name"], []).append(await request.json())
    return web.json_response({"ok": True}, status=202)


async def hook_get(request: web.Request) -> web.Response:
    return web.json_response(request.app[HOOKS].get(request.match_info["name"], []))


def app() -> web.Application:
    application = web.Application()
    application[HOOKS] = {}
    application.add_routes(
        [
            web.get("/pets/{id}", pet),
            web.post("/echo", echo),
            web.get("/status/{code}", status),
            web.get("/redirect", redirect),
            web.get("/auth/basic", basic),
            web.get("/auth/bearer", bearer),
            web.get("/text", text),
            web.get("/api/data", api_data),
            web.get("/anything/{tail:.*}", anything),
            web.get("/openapi.yaml", openapi_document),
            # A webhook sink: POSTs are kept per name and read back with GET.
            web.post("/hooks/{name:.+}", hook_post),
            web.get("/hooks/{name:.+}", hook_get),
        ]
    )
    return application
