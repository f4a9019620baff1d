"""One error shape for every HTTP error: `{"error": "what was wrong, naming the input"}`.

The handlers turn FastAPI's and Starlette's errors (validation, a body that is not JSON, unknown
routes, wrong methods, anything unexpected) into that shape, and `document_errors` writes the
same shape into the OpenAPI schema for every status an operation can answer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Mount

log = logging.getLogger("recommender.serving")

NO_STORE = {"Cache-Control": "no-store"}
METHODS = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")

DESCRIPTIONS = {
    400: "Malformed request: the body is not valid JSON",
    401: "A write without a valid key (`Authorization: Bearer KEY`)",
    403: "Writes are disabled: no key is configured (RECOMMENDER_API_KEYS)",
    404: "Not found: the id is not indexed, or no such path",
    405: "Method not allowed on this path",
    413: "Request body too large",
    414: "URL too long",
    415: "The body's Content-Type is not one this operation reads (JSON; NDJSON for bulk)",
    422: "A parameter or a body field is invalid; the message names it",
    429: "Too many requests",
    500: "Internal error",
    503: "Not ready, or too busy to answer now",
    507: "The index's store cannot grow (disk full): nothing was written; retry later",
}


class ErrorOut(BaseModel):
    """Every HTTP error."""

    error: str = Field(description="What was wrong, naming the parameter or field")


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """An error in the documented shape; never cached by a CDN."""
    return JSONResponse({"error": message}, status_code=status, headers=NO_STORE | (headers or {}))


Responses = dict[int | str, dict[str, Any]]


def error_responses(*statuses: int, other: Responses | None = None) -> Responses:
    """The `responses=` entry of a route: these error statuses, and `other` responses."""
    errors: Responses = {s: {"model": ErrorOut, "description": DESCRIPTIONS[s]} for s in statuses}
    return (other or {}) | errors


def _validation_message(exc: RequestValidationError) -> tuple[int, str]:
    messages = []
    for e in exc.errors():
        if e.get("type") == "json_invalid":
            reason = (e.get("ctx") or {}).get("error", "JSON decode error")
            return 400, f"body: not valid JSON ({reason} at position {e['loc'][-1]})"
        loc = ".".join(str(p) for p in e["loc"] if p != "body") or "body"
        messages.append(f"{loc}: {str(e['msg']).removeprefix('Value error, ')}")
    return 422, "; ".join(messages)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(_allowed_methods(request))
    return error_response(exc.status_code, str(exc.detail), headers)


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (Starlette names only the first route's),
    asked of each route, included routers too, by matching the path with that method."""
    routes = [r for r in request.app.router.routes if not isinstance(r, Mount)]
    methods = {
        m
        for m in METHODS
        if any(r.matches({**request.scope, "method": m})[0] == Match.FULL for r in routes)
    }
    return sorted(methods - {"HEAD"} if "GET" not in methods else methods)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    status, message = _validation_message(exc)
    return error_response(status, message)


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _internal_error)


def _error_content() -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}


def document_errors(app: FastAPI) -> None:
    """Every operation's schema lists the errors it can answer, all in the ErrorOut shape:
    413 and 414 everywhere (limits apply before routing), 404 with a path parameter, 422 with
    any parameter or body, 400 and 415 with a body; FastAPI's own 422 shape is replaced."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        schemas["ErrorOut"] = ErrorOut.model_json_schema()
        for operations in schema["paths"].values():
            for operation in operations.values():
                params = operation.get("parameters", [])
                statuses = {413, 414}
                if any(p.get("in") == "path" for p in params):
                    statuses.add(404)
                if params or "requestBody" in operation:
                    statuses.add(422)
                if "requestBody" in operation:
                    statuses |= {400, 415}
                responses = operation.setdefault("responses", {})
                for status in sorted(statuses):
                    responses.setdefault(str(status), {"description": DESCRIPTIONS[status]})
                for status, response in responses.items():
                    if status.startswith(("4", "5")):
                        response["content"] = _error_content()
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
