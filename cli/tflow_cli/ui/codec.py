"""Temporal's remote codec protocol, so Temporal's own Web UI (and `temporal` CLI with
`--codec-endpoint`) shows payloads decrypted: `POST /codec/decode` and `/codec/encode`
take and answer `{"payloads": [...]}` in the protobuf JSON form, with the CORS answers a
browser needs to call them from Temporal's UI.

Anyone who can reach these routes can decrypt payloads they hold, so they are off unless
`tflow ui --codec` turns them on, and then only for the Temporal namespace the UI serves."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import urlsplit

from aiohttp import web
from google.protobuf.json_format import MessageToDict, ParseDict, ParseError
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.converter import PayloadCodec

from tflow_workers.run_operations import RunRefused

Transform = Callable[[Sequence[Payload]], Awaitable[list[Payload]]]
_HEADERS = "Content-Type, X-Namespace, Authorization"


def origin(url: str | None) -> str | None:
    """The origin (scheme://host:port) of Temporal's UI, the one CORS lets in."""
    if not url:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


class CodecRoutes:
    def __init__(self, codec: PayloadCodec | None, namespace: str, allow_origin: str | None):
        self.codec = codec
        self.namespace = namespace
        self.allow_origin = allow_origin

    def add(self, app: web.Application) -> None:
        app.router.add_post("/codec/decode", self._decode)
        app.router.add_post("/codec/encode", self._encode)
        app.router.add_route("OPTIONS", "/codec/decode", self._preflight)
        app.router.add_route("OPTIONS", "/codec/encode", self._preflight)

    def _cors(self, response: web.StreamResponse) -> web.StreamResponse:
        if self.allow_origin:
            response.headers["Access-Control-Allow-Origin"] = self.allow_origin
            response.headers["Access-Control-Allow-Credentials"] = "true"
            response.headers["Vary"] = "Origin"
        return response

    async def _preflight(self, _: web.Request) -> web.StreamResponse:
        response = web.Response(status=204)
        response.headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = _HEADERS
        return self._cors(response)

    async def _decode(self, request: web.Request) -> web.StreamResponse:
        return await self._transform(request, "decode")

    async def _encode(self, request: web.Request) -> web.StreamResponse:
        return await self._transform(request, "encode")

    async def _transform(self, request: web.Request, direction: str) -> web.StreamResponse:
        if self.codec is None:
            raise RunRefused(
                404, "no-codec", "no payload key is configured (TFLOW_PAYLOAD_KEY): nothing to do"
            )
        asked = request.headers.get("X-Namespace")
        if asked and asked != self.namespace:
            raise RunRefused(
                403, "other-namespace", f"this codec serves Temporal namespace {self.namespace!r}"
            )
        try:
            payloads = ParseDict(await request.json(), Payloads())
        except (ParseError, ValueError) as err:
            raise RunRefused(
                400, "bad-payloads", f'expected {{"payloads": [...]}}: {err}'
            ) from None
        transform: Transform = getattr(self.codec, direction)
        try:
            out = await transform(list(payloads.payloads))
        except ValueError as err:  # a key this process lacks, a damaged payload
            raise RunRefused(422, "cannot-decode", str(err)) from None
        body = MessageToDict(Payloads(payloads=out))
        return self._cors(web.json_response({"payloads": body.get("payloads", [])}))
