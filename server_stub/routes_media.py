"""Zero-knowledge archive routes for the media tier: upload form, copy, list, delete.

Auth as in routes_archive.py. All are recorded with plane "archive"; every fault action
applies to them.
"""

from __future__ import annotations

import base64
import logging
import secrets

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from libsignal_bridge.zk import LEVEL_FREE, LEVEL_PAID, TYPE_MEDIA
from server_stub.auth import BackupUser, stub_state, zk_user
from server_stub.errors import StubError
from server_stub.media_copy import copy_items
from server_stub.models import (
    CopyMediaBatchRequest,
    CopyMediaBatchResponse,
    CopyMediaRequest,
    CopyMediaResponse,
    DeleteMediaRequest,
    ListMediaResponse,
    UploadFormResponse,
)
from server_stub.routes_common import error_responses, upload_form

log = logging.getLogger(__name__)
router = APIRouter(tags=["archives (zero-knowledge auth)"])

MAX_LIST_LIMIT = 10_000
TRANSIT_KEY_BYTES = 15


@router.get(
    "/v1/archives/media/upload/form",
    response_model=UploadFormResponse,
    responses=error_responses(400, 401, 403, 413, 429),
)
def get_media_upload_form(
    request: Request,
    uploadLength: int | None = Query(None, ge=0, description="Size of the upload in bytes"),  # noqa: N803
    user: BackupUser = Depends(zk_user),
) -> UploadFormResponse:
    """Return a TUS upload form for a transit attachment that will be copied to the media tier.

    Auth: zero-knowledge, paid level (else 403), media type (else 401). `uploadLength` above
    `max_attachment_bytes` is 413, checked before level and type. Takes a
    `backupAttachmentCreate` permit per backup id (429 with Retry-After). The key is 15 random
    bytes in URL-safe base64; the token has aud=attachments and no scope.
    Records: plane "archive". Faults: all actions.
    """
    state = stub_state(request)
    limit = state.config.max_attachment_bytes
    if uploadLength is not None and uploadLength > limit:
        raise StubError(413, f"uploadLength {uploadLength} exceeds the attachment limit of {limit} bytes")
    user.require_level(LEVEL_PAID)
    user.require_type(TYPE_MEDIA)
    state.take_permit("backupAttachmentCreate", base64.b64encode(user.hashed_id).decode("ascii"))
    key = secrets.token_urlsafe(TRANSIT_KEY_BYTES)
    max_len = uploadLength if uploadLength is not None else limit
    return UploadFormResponse(**upload_form(state, request, "attachments", key, max_len, scope=None))


def _check_copy_lengths(state_limit: int, items: list[CopyMediaRequest]) -> None:
    for item in items:
        if item.objectLength > state_limit:
            raise StubError(400, f"objectLength {item.objectLength} exceeds the attachment limit of {state_limit} bytes")


@router.put(
    "/v1/archives/media",
    response_model=CopyMediaResponse,
    responses=error_responses(400, 401, 403, 410, 413, 422),
)
def copy_media(body: CopyMediaRequest, request: Request, user: BackupUser = Depends(zk_user)) -> CopyMediaResponse:
    """Copy one transit object into the media tier with a second encryption layer.

    Auth: zero-knowledge, paid level, media type. Statuses:
    - 400: `objectLength` exceeds the attachment limit or differs from the stored source length;
    - 410: the source is missing, expired (older than `free_tier_media_days`), or on a CDN the
      stub does not copy from;
    - 413: the media quota is exhausted;
    - 422: a body field breaks a constraint.
    Records: plane "archive". Faults: all actions.
    """
    state = stub_state(request)
    user.require_level(LEVEL_PAID)
    user.require_type(TYPE_MEDIA)
    _check_copy_lengths(state.config.max_attachment_bytes, [body])
    outcome = copy_items(state, user.record, [body])[0]
    if outcome.status != 200:
        raise StubError(outcome.status, outcome.failure_reason or "copy failed")
    return CopyMediaResponse(cdn=3)


@router.put(
    "/v1/archives/media/batch",
    status_code=207,
    response_model=CopyMediaBatchResponse,
    responses=error_responses(400, 401, 403, 422),
)
def copy_media_batch(body: CopyMediaBatchRequest, request: Request, user: BackupUser = Depends(zk_user)) -> JSONResponse:
    """Copy 1 to 1000 transit objects; 207 with one outcome per item, in request order.

    Auth: zero-knowledge, paid level, media type. Item outcomes: 200; 400 "Invalid source
    length"; 410 "Source not found"; 413 "Media quota exhausted" for every item after the
    longest prefix that fits the quota. A whole-request 400 when any `objectLength` exceeds the
    attachment limit. Records: plane "archive". Faults: all actions.
    """
    state = stub_state(request)
    user.require_level(LEVEL_PAID)
    user.require_type(TYPE_MEDIA)
    _check_copy_lengths(state.config.max_attachment_bytes, body.items)
    outcomes = copy_items(state, user.record, body.items)
    return JSONResponse({"responses": [outcome.to_json() for outcome in outcomes]}, status_code=207)


@router.get("/v1/archives/media", response_model=ListMediaResponse, responses=error_responses(400, 401, 403))
def list_media(
    request: Request,
    cursor: str | None = Query(None, description="Opaque cursor from the previous page"),
    limit: int | None = Query(None, description="Page size, 1 to 10000 (default 1000)"),
    user: BackupUser = Depends(zk_user),
) -> ListMediaResponse:
    """List the media objects of this backup id, sorted by media id.

    Auth: zero-knowledge, level free or higher, any type (a messages credential lists its own,
    empty, media directory). `limit` outside 1..10000 is 400. `objectLength` is the stored,
    double-encrypted size; a null cursor means the listing is complete.
    Records: plane "archive". Faults: all actions.
    """
    state = stub_state(request)
    user.require_level(LEVEL_FREE)
    page_size = state.config.media_list_default_limit if limit is None else limit
    if not 1 <= page_size <= MAX_LIST_LIMIT:
        raise StubError(400, f"limit {page_size} is outside 1..{MAX_LIST_LIMIT}")
    record = user.record
    names = state.objects.list_names(f"backups/{record.backup_dir}/{record.media_dir}")
    if cursor is not None:
        names = [(name, size) for name, size in names if name > cursor]
    page = names[:page_size]
    next_cursor = page[-1][0] if len(names) > page_size else None
    return ListMediaResponse.model_validate(
        {
            "storedMediaObjects": [{"cdn": 3, "mediaId": name, "objectLength": size} for name, size in page],
            "backupDir": record.backup_dir,
            "mediaDir": record.media_dir,
            "cursor": next_cursor,
        }
    )


@router.post(
    "/v1/archives/media/delete", status_code=204, response_class=Response, responses=error_responses(400, 401, 403, 422)
)
def delete_media(body: DeleteMediaRequest, request: Request, user: BackupUser = Depends(zk_user)) -> Response:
    """Delete 1 to 1000 media objects; objects that do not exist are fine.

    Auth: zero-knowledge, level free or higher, media type. Any `cdn` other than 3 is 400
    (upstream's status here is not confirmed). Usage counters drop by the bytes removed.
    Records: plane "archive". Faults: all actions.
    """
    state = stub_state(request)
    user.require_level(LEVEL_FREE)
    user.require_type(TYPE_MEDIA)
    for item in body.mediaToDelete:
        if item.cdn != 3:
            raise StubError(400, f"cdn {item.cdn} is not supported; media objects live on cdn 3")
    record = user.record
    freed, count = 0, 0
    for item in body.mediaToDelete:
        size = state.objects.delete(f"backups/{record.backup_dir}/{record.media_dir}/{item.mediaId}")
        if size is not None:
            freed += size
            count += 1
    state.db.add_media_usage(user.hashed_id, -freed, -count)
    return Response(status_code=204)
