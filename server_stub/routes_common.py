"""Helpers shared by the route modules: OpenAPI error entries, base64, upload forms."""

from __future__ import annotations

import base64
from typing import Any

from fastapi import Request

from server_stub.models import ErrorResponse
from server_stub.state import StubState

STATUS_TEXT = {
    400: "Malformed request, or account auth on a zero-knowledge route",
    401: "Authentication failed, or wrong credential type",
    403: "Credential level too low, or not the primary device",
    404: "Not found",
    409: "Conflict",
    410: "Source object gone",
    413: "Too large, or out of quota",
    415: "Checksum mismatch",
    416: "Range not satisfiable",
    422: "A JSON body field is missing or breaks a constraint",
    429: "Rate limited; see Retry-After",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorResponse, "description": STATUS_TEXT[code]} for code in codes}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def public_base_url(state: StubState, request: Request) -> str:
    """Return the base URL for upload locations: the configured one, else the request's."""
    if state.config.public_url:
        return state.config.public_url.rstrip("/")
    return str(request.base_url).rstrip("/")


def upload_form(
    state: StubState, request: Request, bucket: str, key: str, max_len: int, scope: str | None
) -> dict[str, Any]:
    """Build an UploadDescriptorResponse for a TUS upload of ``key`` into ``bucket``."""
    return {
        "cdn": 3,
        "key": key,
        "headers": {
            "Authorization": state.tokens.authorization(bucket, key, scope=scope, max_len=max_len),
            "Upload-Metadata": f"filename {b64(key.encode('utf-8'))}",
        },
        "signedUploadLocation": f"{public_base_url(state, request)}/upload/{bucket}",
    }
