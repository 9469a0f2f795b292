"""How the HTTP servers of this package (the webhook, the run API) refuse a request: a
`Refusal` raised anywhere in a handler becomes a JSON body
`{"status": 400, "reason": "malformed-json", "detail": "..."}` (its OpenAPI schema is
`RefusalBody`, named Problem), counted by reason; aiohttp's own 404/405 and unexpected
errors are answered in the same shape. Also the strict JSON reading both servers share:
no NaN or Infinity, bounded nesting (deeper JSON cannot travel through Temporal's payload
converter), empty bodies named as such."""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware
from pydantic import BaseModel, ConfigDict, Field, ValidationError

log = logging.getLogger(__name__)

MAX_JSON_DEPTH = 100
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Refusal(Exception):
    """A refusal: HTTP status, a reason slug (the metrics label) and a sentence."""

    def __init__(
        self, status: int, reason: str, detail: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.reason = reason
        self.detail = detail
        self.headers = dict(headers or {})

    def response(self) -> web.Response:
        return web.json_response(
            {"status": self.status, "reason": self.reason, "detail": self.detail},
            status=self.status,
            headers=self.headers,
        )


class RefusalBody(BaseModel):
    """Every refusal's body."""

    model_config = ConfigDict(title="Problem")

    status: int
    reason: str = Field(description="A slug, also the metrics label.")
    detail: str


def problem_middleware(
    rejected: Callable[[str], None],
    answered: Callable[[web.Request, web.StreamResponse], None] | None = None,
) -> Middleware:
    """The middleware that answers every refusal as a problem body; `rejected` counts it
    by reason, `answered` sees every response (for request metrics and the like)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except Refusal as problem:
            rejected(problem.reason)
            response = problem.response()
        except web.HTTPException as err:
            if err.status < 400:
                raise
            reason = re.sub(r"[^a-z0-9]+", "-", (err.reason or "error").lower()).strip("-")
            detail = {
                404: f"no route {request.method} {request.path}",
                405: f"{request.method} is not allowed on {request.path}",
            }.get(err.status, err.text or err.reason or "refused")
            headers = {k: v for k, v in err.headers.items() if k.lower() == "allow"}
            rejected(reason)
            response = Refusal(err.status, reason, detail, headers).response()
        except Exception:
            log.exception("unexpected error answering %s %s", request.method, request.path)
            response = Refusal(500, "internal-error", "the server failed; see its log").response()
        if answered is not None:
            answered(request, response)
        return response

    return middleware


def validation_refusal(err: ValidationError, where: str) -> Refusal:
    """A pydantic error in a request's path, query, headers or body, as a 400 that names
    the field."""
    first = err.errors(include_url=False)[0]
    field = ".".join(str(p) for p in first.get("loc", ())) or where
    return Refusal(400, f"invalid-{where.replace(' ', '-')}", f"{where} {field}: {first['msg']}")


async def on_validation_error(err: ValidationError, context: str) -> web.StreamResponse:
    """aiohttp-pydantic's hook: its validation errors in the problem shape. Raised, so the
    middleware counts them like every other refusal."""
    raise validation_refusal(err, context)


# ---- strict JSON ----------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text} is out of range for a JSON number")
    return value


def parse_json(body: bytes, what: str = "the body") -> Any:
    if not body.strip():
        raise Refusal(400, "empty-body", f"{what} is empty; send a JSON event")
    try:
        value = json.loads(body, parse_constant=_reject_constant, parse_float=_finite)
    except RecursionError:
        raise Refusal(
            400, "too-deep", f"{what} nests deeper than {MAX_JSON_DEPTH} levels"
        ) from None
    except ValueError as err:  # JSONDecodeError, UnicodeDecodeError, NaN
        raise Refusal(400, "malformed-json", f"{what} is not valid JSON: {err}") from None
    _check_depth(value, what)
    return value


def _check_depth(value: Any, what: str) -> None:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise Refusal(400, "too-deep", f"{what} nests deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)


def is_json(mime: str) -> bool:
    return mime == "application/json" or mime == "text/json" or mime.endswith("+json")
