"""HTTP errors of the stub, in upstream's JSON shape ``{"code": <status>, "message": "..."}``.

Request validation follows Dropwizard as Signal-Server uses it: unparseable JSON and values of
the wrong type are 400; a missing or out-of-range field of a JSON body is 422; a bad query or
header parameter is 400.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

# Pydantic error types that mean "not the right kind of value at all" (Jackson fails to map
# them, which Dropwizard reports as 400) rather than "a value that breaks a constraint" (422).
BAD_REQUEST_TYPES = {"json_invalid", "json_type", "base64_decode", "model_attributes_type", "dict_type"}


class StubError(Exception):
    """An error response: ``status`` with an upstream-style JSON error body."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"code": status, "message": message}, status_code=status, headers=headers)


def validation_status(errors: list[dict[str, Any]]) -> int:
    for error in errors:
        kind = str(error.get("type", ""))
        if kind in BAD_REQUEST_TYPES or kind.endswith("_type") or kind.endswith("_parsing"):
            return 400
    if all(error.get("loc", ("",))[0] == "body" for error in errors):
        return 422
    return 400


def describe_validation(errors: list[dict[str, Any]]) -> str:
    parts = []
    for error in errors[:5]:
        where = ".".join(str(item) for item in error.get("loc", ()) if item != "body") or "body"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StubError)
    async def _stub_error(_request: Request, error: StubError) -> JSONResponse:
        return error_response(error.status, error.message, error.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, error: RequestValidationError) -> JSONResponse:
        errors = list(error.errors())
        return error_response(validation_status(errors), describe_validation(errors))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, error: StarletteHTTPException) -> JSONResponse:
        return error_response(error.status_code, str(error.detail), dict(error.headers or {}))
