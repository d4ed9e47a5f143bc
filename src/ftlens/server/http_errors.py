"""How the API answers what goes wrong: OpenAI's error shape for every error, server errors
without the server's paths, and request bodies that must be JSON objects."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from ftlens.server.store import Store
from ftlens.server.wire import ApiError


def install_handlers(app: FastAPI, store: Store) -> None:
    @app.exception_handler(ApiError)
    async def answer(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        loc = [str(x) for x in first.get("loc", ()) if x not in ("body", "query", "path")]
        param = ".".join(loc) or None
        return error_response(ApiError(
            400, f"{param or 'request'}: {first.get('msg', 'invalid')}", param=param))

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return error_response(ApiError(exc.status_code, str(exc.detail)))

    @app.exception_handler(Exception)
    async def crash(_: Request, exc: Exception) -> JSONResponse:
        return error_response(api_error(exc, store))


def api_error(exc: Exception, store: Store) -> ApiError:
    """``exc`` as answered to the client: itself if it is an ApiError, else a server error
    (without the server's paths)."""
    if isinstance(exc, ApiError):
        return exc
    return ApiError(500, store.public_text(f"internal error: {type(exc).__name__}: {exc}"),
                    type="server_error")


def error_response(exc: ApiError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status)


async def read_json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise ApiError(400, "the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    return body
