"""The four account-authenticated archive routes.

These are the only archive routes that see the account. None of them reveals a backup id:
the credential requests are blinded and the receipt is a zero-knowledge presentation.
All are recorded with plane "account"; every fault action applies to them.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.security import HTTPBasicCredentials

from libsignal_bridge import LibsignalError
from libsignal_bridge.zk import LEVEL_FREE, LEVEL_PAID, TYPE_MEDIA, TYPE_MESSAGES, ZkInvalidInputError
from server_stub.auth import AuthenticatedDevice, authenticate_account, basic_scheme, stub_state
from server_stub.clock import DAY, day_start
from server_stub.errors import StubError
from server_stub.models import (
    CredentialsResponse,
    LimitsResponse,
    RedeemReceiptRequest,
    SetBackupIdRequest,
)
from server_stub.routes_common import b64, error_responses
from server_stub.state import StubState
from server_stub.storage import Account

log = logging.getLogger(__name__)
router = APIRouter(tags=["archives (account auth)"])

MAX_CREDENTIAL_SPAN_DAYS = 7


def account_device(request: Request, credentials: HTTPBasicCredentials | None = Depends(basic_scheme)) -> AuthenticatedDevice:
    return authenticate_account(stub_state(request), credentials)


def _account(state: StubState, device: AuthenticatedDevice) -> Account:
    account = state.db.get_account(device.aci)
    if account is None:
        raise StubError(401, "account not found")
    return account


def _has_paid_voucher(account: Account, now: float) -> bool:
    return (
        account.voucher_level == LEVEL_PAID
        and account.voucher_expiration is not None
        and account.voucher_expiration >= day_start(now)
    )


def _check_request(state: StubState, name: str, value: bytes | None) -> None:
    if value is None:
        return
    try:
        state.zk.server().check_request(value)
    except ZkInvalidInputError:
        raise StubError(400, f"{name} is not a valid BackupAuthCredentialRequest") from None


@router.put(
    "/v1/archives/backupid",
    status_code=204,
    response_class=Response,
    responses=error_responses(400, 401, 403, 429),
)
def set_backup_id(
    body: SetBackupIdRequest,
    request: Request,
    device: AuthenticatedDevice = Depends(account_device),
) -> Response:
    """Commit the blinded backup-id credential requests (messages, media) to the account.

    Auth: account, primary device only (a linked device gets 403). Either field may be
    omitted or null to keep the stored value; both missing is 400, and so is a request that
    does not parse. Changing the messages request takes a `setBackupId` permit. Changing the
    media request while a paid voucher is active also takes a `setPaidMediaBackupId` permit.
    Without a permit the status is 429 with Retry-After. Storing the same values again is a no-op.
    Records: plane "account". Faults: all actions.
    """
    state = stub_state(request)
    if not device.is_primary:
        raise StubError(403, "only the primary device may set the backup id")
    messages = body.messagesBackupAuthCredentialRequest
    media = body.mediaBackupAuthCredentialRequest
    if messages is None and media is None:
        raise StubError(400, "at least one of messagesBackupAuthCredentialRequest and mediaBackupAuthCredentialRequest is required")
    _check_request(state, "messagesBackupAuthCredentialRequest", messages)
    _check_request(state, "mediaBackupAuthCredentialRequest", media)

    account = _account(state, device)
    new_messages = messages if messages is not None else account.messages_request
    new_media = media if media is not None else account.media_request
    messages_changed = new_messages != account.messages_request
    media_changed = new_media != account.media_request
    if not messages_changed and not media_changed:
        return Response(status_code=204)
    if messages_changed:
        state.take_permit("setBackupId", device.aci)
    if media_changed and _has_paid_voucher(account, state.clock.now()):
        state.take_permit("setPaidMediaBackupId", device.aci)
    state.db.set_backup_requests(device.aci, new_messages, new_media)
    log.info("backup id requests committed for account %s (messages %s, media %s)", device.aci, messages_changed, media_changed)
    return Response(status_code=204)


@router.get("/v1/archives/backupid/limits", response_model=LimitsResponse, responses=error_responses(401))
def backup_id_limits(request: Request, device: AuthenticatedDevice = Depends(account_device)) -> LimitsResponse:
    """Report whether the backup id can be changed now.

    Auth: account. `hasPermitsRemaining` needs a `setBackupId` permit and, for an account with
    an active paid voucher, a `setPaidMediaBackupId` permit. When false, `retryAfterSeconds` is
    the longest regeneration time of the limiters involved, as upstream reports it.
    Records: plane "account". Faults: all actions.
    """
    state = stub_state(request)
    account = _account(state, device)
    now = state.clock.now()
    names = ["setBackupId"] + (["setPaidMediaBackupId"] if _has_paid_voucher(account, now) else [])
    limits = [state.config.rate_limits[name] for name in names]
    remaining = all(
        state.db.has_permit(name, device.aci, limit.bucket_size, limit.regen_seconds, now)
        for name, limit in zip(names, limits, strict=True)
    )
    retry_after = 0 if remaining else int(max(limit.regen_seconds for limit in limits))
    return LimitsResponse(hasPermitsRemaining=remaining, retryAfterSeconds=retry_after)


@router.post(
    "/v1/archives/redeem-receipt",
    status_code=204,
    response_class=Response,
    responses=error_responses(400, 401, 409, 429),
)
def redeem_receipt(
    body: RedeemReceiptRequest, request: Request, device: AuthenticatedDevice = Depends(account_device)
) -> Response:
    """Redeem a paid-tier receipt credential presentation for a backup voucher.

    Auth: account. 400 when the presentation does not verify against the stub's receipt
    params, the receipt has expired, its level is not 201, or its serial was redeemed with
    other values; 409 when the account has no media credential request. The voucher's
    expiration is the receipt's, truncated to the UTC day; a later one of the same level wins.
    Receipts are issued through the admin API. Records: plane "account". Faults: all actions.
    """
    state = stub_state(request)
    try:
        receipt = state.zk.verify_receipt(body.receiptCredentialPresentation)
    except LibsignalError:
        raise StubError(400, "receiptCredentialPresentation does not verify") from None
    now = state.clock.now()
    if receipt.expiration < now:
        raise StubError(400, "receipt has expired")
    if receipt.level != LEVEL_PAID:
        raise StubError(400, f"receipt level {receipt.level} does not grant a backup level")
    account = _account(state, device)
    if account.media_request is None:
        raise StubError(409, "account has no media backup credential request; call PUT /v1/archives/backupid first")
    if not state.db.record_receipt(receipt.serial, device.aci, receipt.level, receipt.expiration):
        raise StubError(400, "receipt serial was already redeemed")
    expiration = day_start(receipt.expiration)
    if account.voucher_level == receipt.level and (account.voucher_expiration or 0) > expiration:
        expiration = account.voucher_expiration or expiration
    state.db.set_voucher(device.aci, receipt.level, expiration)
    return Response(status_code=204)


def _credential_level(state: StubState, account: Account, day: int) -> int:
    if account.voucher_level is not None and account.voucher_expiration is not None and day <= account.voucher_expiration:
        return LEVEL_PAID if account.voucher_level >= LEVEL_PAID else LEVEL_FREE
    return account.backup_level


def _check_range(start: int, end: int, now: float) -> None:
    today = day_start(now)
    if start > end:
        raise StubError(400, "redemptionStartSeconds is after redemptionEndSeconds")
    if start % DAY or end % DAY:
        raise StubError(400, "redemption times must be aligned to the start of a UTC day")
    if start < today - DAY:
        raise StubError(400, "redemptionStartSeconds is before yesterday")
    if end > today + (MAX_CREDENTIAL_SPAN_DAYS + 1) * DAY:
        raise StubError(400, "redemptionEndSeconds is more than 8 days ahead")
    if end - start > MAX_CREDENTIAL_SPAN_DAYS * DAY:
        raise StubError(400, "redemption range spans more than 7 days")


@router.get("/v1/archives/auth", response_model=CredentialsResponse, responses=error_responses(400, 401, 404))
def get_credentials(
    request: Request,
    redemptionStartSeconds: int = Query(..., description="First UTC day, epoch seconds"),  # noqa: N803
    redemptionEndSeconds: int = Query(..., description="Last UTC day, epoch seconds (inclusive)"),  # noqa: N803
    device: AuthenticatedDevice = Depends(account_device),
) -> CredentialsResponse:
    """Issue one backup credential per UTC day and type for the committed requests.

    Auth: account. The range must be day-aligned, start no earlier than yesterday, end no
    later than today + 8 days and span at most 7 days, else 400. So at most 8 credentials per
    type are issued. 404 when the account lacks either request. Each day's level is the voucher's while
    the voucher covers that day, else the account's level (both types get the same level).
    An expired voucher is removed here. Records: plane "account". Faults: all actions.
    """
    state = stub_state(request)
    now = state.clock.now()
    _check_range(redemptionStartSeconds, redemptionEndSeconds, now)
    account = _account(state, device)
    if account.messages_request is None or account.media_request is None:
        raise StubError(404, "no backup credential request committed for this account")
    if account.voucher_expiration is not None and account.voucher_expiration < day_start(now):
        state.db.set_voucher(device.aci, None, None)
        account = _account(state, device)
    server = state.zk.server()
    credentials: dict[str, list[dict[str, object]]] = {"messages": [], "media": []}
    for day in range(redemptionStartSeconds, redemptionEndSeconds + 1, DAY):
        level = _credential_level(state, account, day)
        for name, credential_type, blinded in (
            ("messages", TYPE_MESSAGES, account.messages_request),
            ("media", TYPE_MEDIA, account.media_request),
        ):
            response = server.issue(bytes(blinded), day, level, credential_type)
            credentials[name].append({"credential": b64(response), "redemptionTime": day})
    return CredentialsResponse.model_validate({"credentials": credentials})
