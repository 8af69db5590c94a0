"""Routes outside /v1/archives that a backup client needs: the transit attachment upload form
and the subscription configuration that advertises the backup levels."""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from server_stub.auth import AuthenticatedDevice, stub_state
from server_stub.config import LEVEL_PAID
from server_stub.errors import StubError
from server_stub.models import UploadFormResponse
from server_stub.routes_account import account_device
from server_stub.routes_common import error_responses, upload_form

router = APIRouter(tags=["attachments and configuration"])

TRANSIT_KEY_BYTES = 15


@router.get(
    "/v4/attachments/form/upload", response_model=UploadFormResponse, responses=error_responses(401, 413, 429)
)
def get_attachment_form(
    request: Request,
    uploadLength: int | None = Query(None, ge=0, description="Size of the upload in bytes"),  # noqa: N803
    device: AuthenticatedDevice = Depends(account_device),
) -> UploadFormResponse:
    """Return a TUS upload form for a transit-tier attachment (cdn 3).

    Auth: account. `uploadLength` above `max_attachment_bytes` is 413. Takes an
    `attachmentCreate` permit and, when `uploadLength` is given, that many
    `attachmentCreateBytes` permits per account (429 with Retry-After).
    Records: plane "account". Faults: all actions.
    """
    state = stub_state(request)
    limit = state.config.max_attachment_bytes
    if uploadLength is not None and uploadLength > limit:
        raise StubError(413, f"uploadLength {uploadLength} exceeds the attachment limit of {limit} bytes")
    state.take_permit("attachmentCreate", device.aci)
    if uploadLength:
        state.take_permit("attachmentCreateBytes", device.aci, float(uploadLength))
    key = secrets.token_urlsafe(TRANSIT_KEY_BYTES)
    max_len = uploadLength if uploadLength is not None else limit
    return UploadFormResponse(**upload_form(state, request, "attachments", key, max_len, scope=None))


@router.get("/v1/subscription/configuration")
def get_subscription_configuration(request: Request) -> dict[str, Any]:
    """Return the subscription configuration; the stub fills only its `backup` part.

    No auth. `backup.levels."201"` carries the media quota (`storageAllowanceBytes`), the
    product id and `mediaTtlDays`; `backup.freeTierMediaDays` is the free-tier media window
    that the stub also applies to transit attachments. Records: plane "other". Faults: all.
    """
    config = stub_state(request).config
    return {
        "currencies": {},
        "levels": {},
        "backup": {
            "levels": {
                str(LEVEL_PAID): {
                    "storageAllowanceBytes": config.media_quota_bytes,
                    "playProductId": config.play_product_id,
                    "mediaTtlDays": config.media_ttl_days,
                }
            },
            "freeTierMediaDays": config.free_tier_media_days,
        },
    }
