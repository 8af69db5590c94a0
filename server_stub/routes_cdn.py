"""The CDN ("cdn3"): TUS 1.0.0 uploads under /upload/{bucket} and object reads.

Uploads support creation, creation-defer-length, creation-with-upload and expiration. Tokens
come from the archive API's upload forms: ``aud`` must be the bucket, ``sub`` the upload key
(equal to the ``Upload-Metadata`` filename), ``maxLen`` bounds the length, and uploads to
``backups`` need ``scope=write``. Reads of ``/backups/<subdir>/...`` need a read token whose
``sub`` is ``<subdir>``; reads of ``/attachments/<key>`` are public. Single byte ranges get 206.
All CDN routes are recorded with plane "cdn".
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import email.utils
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from server_stub.auth import stub_state
from server_stub.errors import StubError
from server_stub.media_copy import transit_object_alive
from server_stub.objects import CHUNK, InvalidObjectPath, validate_object_path
from server_stub.routes_common import error_responses, public_base_url
from server_stub.state import StubState

log = logging.getLogger(__name__)
router = APIRouter(tags=["cdn"])

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,creation-defer-length,creation-with-upload,expiration"
PATCH_CONTENT_TYPES = ("application/offset+octet-stream", "application/octet-stream")
CHECKSUM_HEADER = "X-Signal-Checksum-Sha256"
APPEND_LOCK_WAIT_SECONDS = 5.0


def _tus_headers(**extra: Any) -> dict[str, str]:
    headers = {"Tus-Resumable": TUS_VERSION}
    headers.update({name.replace("_", "-"): str(value) for name, value in extra.items()})
    return headers


def _http_date(epoch_seconds: float) -> str:
    return email.utils.formatdate(epoch_seconds, usegmt=True)


def _check_tus_version(request: Request) -> None:
    version = request.headers.get("tus-resumable")
    if version != TUS_VERSION:
        raise StubError(412, f"Tus-Resumable must be {TUS_VERSION}, got {version!r}", {"Tus-Version": TUS_VERSION})


def _int_header(request: Request, name: str, required: bool) -> int | None:
    value = request.headers.get(name)
    if value is None:
        if required:
            raise StubError(400, f"missing {name} header")
        return None
    if not value.isdigit():
        raise StubError(400, f"{name} must be a non-negative integer, got {value[:40]!r}")
    return int(value)


def _upload_claims(state: StubState, request: Request, bucket: str) -> dict[str, Any]:
    if bucket not in ("attachments", "backups"):
        raise StubError(404, f"unknown upload bucket {bucket!r}; use attachments or backups")
    claims = state.tokens.verify(request.headers.get("authorization"), bucket)
    if bucket == "backups" and claims.get("scope") != "write":
        raise StubError(401, "token does not grant write access")
    if not isinstance(claims.get("maxLen"), int):
        raise StubError(401, "token has no maxLen")
    return claims


def _metadata_filename(request: Request) -> str:
    metadata = request.headers.get("upload-metadata")
    if not metadata:
        raise StubError(400, "missing Upload-Metadata header with the filename")
    for pair in metadata.split(","):
        name, _, value = pair.strip().partition(" ")
        if name == "filename":
            try:
                return base64.b64decode(value.strip(), validate=True).decode("utf-8")
            except (binascii.Error, ValueError):
                raise StubError(400, "Upload-Metadata filename is not valid base64") from None
    raise StubError(400, "Upload-Metadata has no filename")


def _checksum(request: Request) -> bytes | None:
    value = request.headers.get(CHECKSUM_HEADER)
    if value is None:
        return None
    try:
        digest = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        digest = b""
    if len(digest) != 32:
        raise StubError(400, f"{CHECKSUM_HEADER} must be base64 of 32 bytes")
    return digest


def _has_body(request: Request) -> bool:
    length = request.headers.get("content-length")
    if length is not None:
        return length.isdigit() and int(length) > 0
    return "chunked" in request.headers.get("transfer-encoding", "").lower()


@router.options("/upload/{bucket}", status_code=204, response_class=Response)
async def tus_options(bucket: str) -> Response:
    """Report TUS capabilities. No auth. Records: plane "cdn". Faults: all actions."""
    return Response(
        status_code=204, headers=_tus_headers(Tus_Version=TUS_VERSION, Tus_Extension=TUS_EXTENSIONS)
    )


@router.post(
    "/upload/{bucket}", status_code=201, response_class=Response, responses=error_responses(400, 401, 409, 413, 415)
)
async def tus_create(bucket: str, request: Request) -> Response:
    """Create an upload (TUS creation; body optional for creation-with-upload).

    Auth: Bearer token from an upload form; `sub` must equal the Upload-Metadata filename.
    Needs `Tus-Resumable: 1.0.0` (else 412) and exactly one of `Upload-Length` and
    `Upload-Defer-Length: 1` (else 400). A length above the token's maxLen is 413; a create
    while an upload to the same key has started is 409; an `X-Signal-Checksum-Sha256` that
    does not match the finished upload is 415. Replies 201 with Location, Upload-Offset and
    Upload-Expires. Records: plane "cdn", body stored by hash. Faults: all actions;
    cut_upload cuts the creation-with-upload body.
    """
    state = stub_state(request)
    _check_tus_version(request)
    claims = _upload_claims(state, request, bucket)
    key = _metadata_filename(request)
    if key != claims.get("sub"):
        raise StubError(401, "token subject does not match the Upload-Metadata filename")
    state.uploads.object_path(bucket, key)
    length = _int_header(request, "upload-length", required=False)
    deferred = request.headers.get("upload-defer-length")
    if (length is None) == (deferred is None) or (deferred is not None and deferred != "1"):
        raise StubError(400, "send exactly one of Upload-Length and Upload-Defer-Length: 1")
    if length is not None and length > claims["maxLen"]:
        raise StubError(413, f"Upload-Length {length} exceeds the token's maxLen {claims['maxLen']}")
    upload = state.uploads.create(bucket, key, length, claims["maxLen"], _checksum(request))
    offset = 0
    if _has_body(request):
        async with state.uploads.lock(bucket, key):
            result = await state.uploads.append(
                upload, 0, None, _int_header(request, "content-length", required=False), request.stream()
            )
        offset = result.offset
    location = f"{public_base_url(state, request)}/upload/{bucket}/{key}"
    return Response(
        status_code=201,
        headers=_tus_headers(Location=location, Upload_Offset=offset, Upload_Expires=_http_date(upload.expires_at)),
    )


def _live_upload(state: StubState, request: Request, bucket: str, key: str):  # type: ignore[no-untyped-def]
    claims = _upload_claims(state, request, bucket)
    state.uploads.object_path(bucket, key)
    if claims.get("sub") != key:
        raise StubError(401, "token subject does not match the upload key")
    upload = state.uploads.get(bucket, key)
    if upload is None:
        raise StubError(404, f"no upload in progress for {bucket}/{key}", _tus_headers())
    return upload


@router.head("/upload/{bucket}/{key:path}", response_class=Response, responses=error_responses(401, 404))
async def tus_head(bucket: str, key: str, request: Request) -> Response:
    """Report the offset of an upload in progress (TUS resume probe).

    Auth: the upload's token (sub = key). 404 when no upload is in progress (never started,
    finished, or expired after `tus_upload_expiry_seconds`). Replies 200 with Upload-Offset and
    Upload-Length or Upload-Defer-Length. Records: plane "cdn". Faults: all actions.
    """
    state = stub_state(request)
    _check_tus_version(request)
    upload = _live_upload(state, request, bucket, key)
    headers = _tus_headers(Upload_Offset=state.uploads.offset(upload), Cache_Control="no-store")
    if upload.length is not None:
        headers["Upload-Length"] = str(upload.length)
    else:
        headers["Upload-Defer-Length"] = "1"
    return Response(status_code=200, headers=headers)


@router.patch(
    "/upload/{bucket}/{key:path}",
    status_code=204,
    response_class=Response,
    responses=error_responses(400, 401, 404, 409, 413, 415),
)
async def tus_patch(bucket: str, key: str, request: Request) -> Response:
    """Append the body at `Upload-Offset` (TUS PATCH); the body streams to disk.

    Auth: the upload's token (sub = key). Statuses:
    - 400: Upload-Offset missing or invalid, or an Upload-Length that differs from the declared one;
    - 409: an offset that is not the current one, or another append to the key that is
      still running after 5 s;
    - 413: a body past the upload length or the token's maxLen;
    - 415: a content type other than application/offset+octet-stream or application/octet-stream.
    When the last byte arrives, the upload is checked and renamed over the object atomically,
    so the previous object stays intact until then. Bytes received before a cut connection are
    kept for HEAD-and-resume. Records: plane "cdn", body stored by hash. Faults: all actions;
    cut_upload is the one made for this route.
    """
    state = stub_state(request)
    _check_tus_version(request)
    upload = _live_upload(state, request, bucket, key)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in PATCH_CONTENT_TYPES:
        raise StubError(415, f"Content-Type must be application/offset+octet-stream, got {content_type!r}")
    offset = _int_header(request, "upload-offset", required=True)
    length = _int_header(request, "upload-length", required=False)
    lock = state.uploads.lock(bucket, key)
    # A client may resume while the server still closes the append its cut connection left.
    try:
        await asyncio.wait_for(lock.acquire(), APPEND_LOCK_WAIT_SECONDS)
    except TimeoutError:
        raise StubError(409, f"another append to {bucket}/{key} is in progress") from None
    try:
        # Re-read under the lock: a create may have replaced the upload since the check above.
        upload = state.uploads.get(bucket, key)
        if upload is None:
            raise StubError(404, f"no upload in progress for {bucket}/{key}", _tus_headers())
        result = await state.uploads.append(
            upload, offset or 0, length, _int_header(request, "content-length", required=False), request.stream()
        )
    finally:
        lock.release()
    return Response(
        status_code=204,
        headers=_tus_headers(Upload_Offset=result.offset, Upload_Expires=_http_date(upload.expires_at)),
    )


# -- reads ------------------------------------------------------------------------------


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """Return the (first, last) byte of a single-range request, or None for the whole object.

    Multiple ranges and malformed headers are ignored (the whole object is sent), as HTTP
    allows; a range that starts past the end raises 416.
    """
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first_text, _, last_text = header[len("bytes=") :].strip().partition("-")
    try:
        if first_text == "":
            suffix = int(last_text)
            if suffix <= 0 or size == 0:
                raise StubError(416, "range not satisfiable", {"Content-Range": f"bytes */{size}"})
            return max(0, size - suffix), size - 1
        first = int(first_text)
        last = int(last_text) if last_text else size - 1
    except ValueError:
        return None
    if first > last and last_text:
        return None
    if first >= size:
        raise StubError(416, "range not satisfiable", {"Content-Range": f"bytes */{size}"})
    return first, min(last, size - 1)


def _iter_file(handle: BinaryIO, remaining: int) -> Iterator[bytes]:
    with handle:
        while remaining > 0:
            chunk = handle.read(min(CHUNK, remaining))
            if not chunk:
                return
            remaining -= len(chunk)
            yield chunk


def serve_object(state: StubState, request: Request, logical: str) -> Response:
    try:
        path: Path = state.objects.resolve(logical)
        handle = path.open("rb")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise StubError(404, "object not found") from None
    size = path.stat().st_size
    try:
        selected = parse_range(request.headers.get("range"), size)
    except StubError:
        handle.close()
        raise
    headers = {"Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
    status = 200
    first, last = 0, size - 1
    if selected is not None:
        first, last = selected
        status = 206
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    length = last - first + 1 if size else 0
    headers["Content-Length"] = str(length)
    if request.method == "HEAD":
        handle.close()
        return Response(status_code=status, headers=headers)
    handle.seek(first)
    return StreamingResponse(_iter_file(handle, length), status_code=status, headers=headers)


def _checked_logical(logical: str) -> str:
    try:
        validate_object_path(logical)
    except InvalidObjectPath as error:
        raise StubError(400, f"invalid object path: {error}") from None
    return logical


@router.get("/backups/{subdir}/{rest:path}", responses=error_responses(400, 401, 404, 416))
@router.head(
    "/backups/{subdir}/{rest:path}", operation_id="head_backup_object", responses=error_responses(400, 401, 404, 416)
)
def read_backup_object(subdir: str, rest: str, request: Request) -> Response:
    """Read a message backup or media-tier object, whole or one byte range.

    Auth: Bearer read token from GET /v1/archives/auth/read (aud=backups, scope=read,
    sub = <subdir>). An invalid path (`..`, NUL, characters outside URL-safe base64) is 400;
    a missing object 404; a range past the end 416. Records: plane "cdn". Faults: all
    actions; truncate cuts the body, corrupt_object and delete_object act before the read.
    """
    state = stub_state(request)
    logical = _checked_logical(f"backups/{subdir}/{rest}")
    claims = state.tokens.verify(request.headers.get("authorization"), "backups")
    if claims.get("scope") != "read" or claims.get("sub") != subdir:
        raise StubError(401, "token does not grant reads of this backup directory")
    return serve_object(state, request, logical)


@router.get("/attachments/{key:path}", responses=error_responses(400, 404, 416))
@router.head("/attachments/{key:path}", operation_id="head_transit_object", responses=error_responses(400, 404, 416))
def read_transit_object(key: str, request: Request) -> Response:
    """Read a transit-tier attachment, whole or one byte range. No auth (public, as upstream).

    Attachments older than `free_tier_media_days` (default 45) by the stub clock are gone:
    404, and the expiration worker deletes them. Records: plane "cdn". Faults: all actions.
    """
    state = stub_state(request)
    logical = _checked_logical(f"attachments/{key}")
    if not transit_object_alive(state, key):
        raise StubError(404, "object not found")
    return serve_object(state, request, logical)
