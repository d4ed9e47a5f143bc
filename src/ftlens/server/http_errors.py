"""How the API answers what goes wrong: OpenAI's error shape for every error, a 400 naming
the parameter for a body its typed model refuses, and server errors that say only "internal
error" and the request's id."""

from __future__ import annotations

import logging
import secrets
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.routing import Match, Route

from ftlens.server.wire import ApiError
from ftlens.server.wire_types import problem
from ftlens.train.infer import Refused

log = logging.getLogger("ftlens.server")


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorBody(BaseModel):
    """The body of every error answer, whatever its status (OpenAI's shape)."""

    error: ErrorDetail


# the schema's answer for every status but 200: never FastAPI's 422 (a request its typed
# model refuses is a 400 here, see :func:`install_handlers`)
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "default": {"model": ErrorBody, "description": "An error, in OpenAI's shape"}}


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def answer(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(problem(exc.errors()))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # every method of the path, not only its first route's
            headers["Allow"] = ", ".join(sorted(
                {m for route in app.routes if isinstance(route, Route)
                 and route.matches(request.scope)[0] != Match.NONE for m in route.methods or ()}))
        return error_response(ApiError(exc.status_code, str(exc.detail)), headers)


def request_id() -> str:
    """An id for one request, as OpenAI's ``x-request-id``."""
    return "req_" + secrets.token_hex(12)


def api_error(exc: Exception, ident: str | None = None) -> ApiError:
    """``exc`` as answered to the client: itself if it is an ApiError, else a server error
    that says only "internal error" and the request's id; the exception goes to the log
    alone, under that id."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, Refused):
        return ApiError(400, exc.message, param=exc.param, code=exc.code)
    ident = ident or request_id()
    log.error("internal error in request %s", ident, exc_info=exc)
    return ApiError(500, f"internal error (request id {ident})", type="server_error")


def error_response(exc: ApiError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)
