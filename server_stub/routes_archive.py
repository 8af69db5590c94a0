"""Zero-knowledge archive routes for the backup record and the message backup.

Every route here requires X-Signal-ZK-Auth and X-Signal-ZK-Auth-Signature and no
Authorization header (see auth.py for the order of checks and their statuses). All are
recorded with plane "archive"; every fault action applies to them.
"""

from __future__ import annotations

import logging
import secrets

from fastapi import APIRouter, Depends, Query, Request, Response

from libsignal_bridge.zk import LEVEL_FREE, LEVEL_PAID, TYPE_MESSAGES
from server_stub.auth import BackupUser, Presentation, signature_valid, stub_state, zk_presentation, zk_user
from server_stub.clock import day_start
from server_stub.errors import StubError
from server_stub.models import (
    BackupInfoResponse,
    ReadAuthResponse,
    SetPublicKeyRequest,
    SvrbResponse,
    UploadFormResponse,
)
from server_stub.routes_common import error_responses, upload_form
from server_stub.storage import KeyConflict

log = logging.getLogger(__name__)
router = APIRouter(tags=["archives (zero-knowledge auth)"])

PUBLIC_KEY_LENGTH = 33
DJB_KEY_TYPE = 0x05
MESSAGE_BACKUP_NAME = "messageBackup"
ZK_ERRORS = (400, 401)


@router.put(
    "/v1/archives/keys", status_code=204, response_class=Response, responses=error_responses(400, 401, 422)
)
def set_public_key(
    body: SetPublicKeyRequest, request: Request, presentation: Presentation = Depends(zk_presentation)
) -> Response:
    """Bind the backup-id public key, creating the backup record if needed.

    Auth: zero-knowledge, but the signature must verify against the key in the body (no
    level or type restriction). A missing field is 422, a key that is not a 33-byte 0x05
    Curve25519 key is 400, a bad signature or a key different from the one already bound is
    401 (the bound key is never replaced). Setting the same key again is a no-op 204. Refreshes
    the record (and its media refresh time at the paid level).
    Records: plane "archive". Faults: all actions.
    """
    state = stub_state(request)
    key = body.backupIdPublicKey
    if len(key) != PUBLIC_KEY_LENGTH or key[0] != DJB_KEY_TYPE:
        raise StubError(400, "backupIdPublicKey must be a 33-byte serialized Curve25519 public key (type 0x05)")
    if not signature_valid(state, key, presentation):
        raise StubError(401, "X-Signal-ZK-Auth-Signature does not verify against backupIdPublicKey")
    try:
        state.db.bind_public_key(
            presentation.hashed_id, key, day_start(state.clock.now()), presentation.level >= LEVEL_PAID
        )
    except KeyConflict:
        raise StubError(401, "a different public key is already bound to this backup id") from None
    return Response(status_code=204)


@router.get("/v1/archives", response_model=BackupInfoResponse, responses=error_responses(*ZK_ERRORS, 403))
def get_backup_info(user: BackupUser = Depends(zk_user)) -> BackupInfoResponse:
    """Return the CDN number, directories, backup name and media bytes used.

    Auth: zero-knowledge, level free or higher, any type. `cdn` is 3 even before the first
    upload (upstream has no 404 here). Does not refresh the record.
    Records: plane "archive". Faults: all actions.
    """
    user.require_level(LEVEL_FREE)
    record = user.record
    return BackupInfoResponse(
        cdn=record.cdn or 3,
        backupDir=record.backup_dir,
        mediaDir=record.media_dir,
        backupName=MESSAGE_BACKUP_NAME,
        usedSpace=record.media_bytes,
    )


@router.post("/v1/archives", status_code=204, response_class=Response, responses=error_responses(*ZK_ERRORS, 403))
def refresh_backup(request: Request, user: BackupUser = Depends(zk_user)) -> Response:
    """Keep the backup alive: set its refresh time (and media refresh time when paid) to today.

    Auth: zero-knowledge, level free or higher, any type. A backup not refreshed within the
    grace period (`backup_grace_days`, default 30) is deleted by the expiration worker.
    Records: plane "archive". Faults: all actions.
    """
    state = stub_state(request)
    user.require_level(LEVEL_FREE)
    state.db.refresh_backup(user.hashed_id, day_start(state.clock.now()), user.paid)
    return Response(status_code=204)


@router.delete("/v1/archives", status_code=204, response_class=Response, responses=error_responses(*ZK_ERRORS, 403))
def delete_backup(request: Request, user: BackupUser = Depends(zk_user)) -> Response:
    """Delete the whole backup of this backup id: record, public key and every stored object.

    Auth: zero-knowledge, level free or higher, any type. The stub deletes at once, whereas
    upstream swaps directories and lets the expiration worker remove the objects. Afterwards
    the client must bind a public key again. Records: plane "archive". Faults: all actions.
    """
    state = stub_state(request)
    user.require_level(LEVEL_FREE)
    state.objects.delete_tree(f"backups/{user.record.backup_dir}")
    state.db.delete_backup(user.hashed_id)
    log.info("backup %s deleted", user.hashed_id.hex())
    return Response(status_code=204)


@router.get("/v1/archives/auth/read", response_model=ReadAuthResponse, responses=error_responses(*ZK_ERRORS, 403))
def get_read_auth(request: Request, cdn: int = Query(..., description="Must be 3"), user: BackupUser = Depends(zk_user)) -> ReadAuthResponse:
    """Return headers that authorize CDN reads under /backups/<backupDir>/.

    Auth: zero-knowledge, level free or higher, any type. `cdn` other than 3 is 400. The token
    is HS256 with aud=backups, sub=backupDir, scope=read.
    Records: plane "archive". Faults: all actions.
    """
    state = stub_state(request)
    user.require_level(LEVEL_FREE)
    if cdn != 3:
        raise StubError(400, f"cdn {cdn} is not supported; only cdn 3 serves backups")
    token = state.tokens.authorization("backups", user.record.backup_dir, scope="read")
    return ReadAuthResponse(headers={"Authorization": token})


@router.get("/v1/archives/auth/svrb", response_model=SvrbResponse, responses=error_responses(*ZK_ERRORS, 403))
def get_svrb_auth(user: BackupUser = Depends(zk_user)) -> SvrbResponse:
    """Return SVR-B credentials (placeholders: the stub runs no SVR-B enclave).

    Auth: zero-knowledge, level free or higher, messages type only (else 401). The user name
    is the hex of the hashed backup id, as upstream; the password is random.
    Records: plane "archive". Faults: all actions.
    """
    user.require_level(LEVEL_FREE)
    user.require_type(TYPE_MESSAGES)
    return SvrbResponse(username=user.hashed_id.hex(), password=secrets.token_hex(16))


@router.get(
    "/v1/archives/upload/form", response_model=UploadFormResponse, responses=error_responses(*ZK_ERRORS, 403, 413)
)
def get_message_backup_form(
    request: Request,
    uploadLength: int | None = Query(None, ge=0, description="Size of the upload in bytes"),  # noqa: N803
    user: BackupUser = Depends(zk_user),
) -> UploadFormResponse:
    """Return the TUS upload form for the message backup, `<backupDir>/messageBackup`.

    Auth: zero-knowledge, level free or higher, messages type. `uploadLength` above
    `max_message_backup_bytes` is 413, checked before level and type. Refreshes the record and
    sets its CDN to 3, even if no upload follows. Every form of one backup id targets the same
    key, so each completed upload replaces the previous archive.
    Records: plane "archive". Faults: all actions.
    """
    state = stub_state(request)
    limit = state.config.max_message_backup_bytes
    if uploadLength is not None and uploadLength > limit:
        raise StubError(413, f"uploadLength {uploadLength} exceeds the message backup limit of {limit} bytes")
    user.require_level(LEVEL_FREE)
    user.require_type(TYPE_MESSAGES)
    state.db.refresh_backup(user.hashed_id, day_start(state.clock.now()), user.paid, set_cdn=True)
    key = f"{user.record.backup_dir}/{MESSAGE_BACKUP_NAME}"
    max_len = uploadLength if uploadLength is not None else limit
    return UploadFormResponse(**upload_form(state, request, "backups", key, max_len, scope="write"))
