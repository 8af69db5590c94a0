"""The admin API under /__harness/, on its own loopback-only port. See ADMIN_API.md.

Nothing here is reachable from the app-facing port, and admin requests are not recorded, so
the harness's own traffic never shows up in what the app sent.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import logging
import os
import uuid
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Query, Request, Response
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Receive, Scope, Send

from libsignal_bridge import LibsignalError
from server_stub.config import LEVEL_PAID
from server_stub.errors import StubError, error_response, install_error_handlers
from server_stub.expiry import run_expiry
from server_stub.faults import ACTIONS
from server_stub.objects import CHUNK, InvalidObjectPath, validate_object_path
from server_stub.state import StubState
from server_stub.storage import hash_backup_id

log = logging.getLogger(__name__)
router = APIRouter(prefix="/__harness")


def _state(request: Request) -> StubState:
    return request.app.state.stub


class AccountBody(BaseModel):
    aci: str
    e164: str | None = None
    password: str = Field(min_length=1)
    device_id: int = Field(1, ge=1)
    backup_level: Literal[200, 201] | None = None


class VoucherBody(BaseModel):
    level: Literal[201] | None = None
    expiration: int | None = None


class MarkerBody(BaseModel):
    name: str | None


class ClockBody(BaseModel):
    now: float | None = None
    offset_seconds: float | None = None
    frozen: bool = False


class AdvanceBody(BaseModel):
    seconds: float


class ResetBody(BaseModel):
    keep_accounts: bool = False


class FaultBody(BaseModel):
    path: str = Field(min_length=1, description="fnmatch pattern on the request path")
    action: Literal[ACTIONS]  # type: ignore[valid-type]
    method: str = "*"
    status: int = Field(503, ge=100, le=599)
    retry_after: int = Field(60, ge=0)
    delay_ms: int = Field(0, ge=0)
    after_bytes: int | None = Field(None, ge=0)
    offset: int | None = Field(None, ge=0)
    bit: int = Field(0, ge=0, le=7)
    count: int | None = Field(None, ge=0)
    skip: int = Field(0, ge=0)
    probability: float = Field(1.0, ge=0.0, le=1.0)
    seed: int = 0


class CorruptBody(BaseModel):
    path: str
    offset: int | None = Field(None, ge=0)
    bit: int = Field(0, ge=0, le=7)


class ReceiptBody(BaseModel):
    request: str = Field(description="ReceiptCredentialRequest, standard base64")
    level: int = LEVEL_PAID
    expiration: int = Field(description="Receipt expiration, epoch seconds (a UTC day start)")


@router.get("/health")
def health(request: Request) -> dict[str, Any]:
    state = _state(request)
    return {"ok": True, "url": state.app_url, "admin_url": state.admin_url, "pid": os.getpid()}


@router.get("/info")
def info(request: Request) -> dict[str, Any]:
    state = _state(request)
    return {
        "url": state.app_url,
        "admin_url": state.admin_url,
        "pid": os.getpid(),
        "data_dir": str(state.config.data_dir),
        "config": state.config.to_json(),
        "cert_path": state.extras.get("cert_path"),
    }


# -- accounts, receipts, zk params ------------------------------------------------------


@router.post("/accounts", status_code=201)
def register_account(body: AccountBody, request: Request) -> dict[str, Any]:
    state = _state(request)
    try:
        aci = str(uuid.UUID(body.aci))
    except ValueError:
        raise StubError(400, f"aci {body.aci!r} is not a UUID") from None
    level = body.backup_level if body.backup_level is not None else state.config.default_backup_level
    state.db.register_device(aci, body.e164, body.password, body.device_id, level)
    log.info("account %s device %d registered (level %d)", aci, body.device_id, level)
    return {"aci": aci, "device_id": body.device_id, "backup_level": level}


@router.get("/accounts")
def list_accounts(request: Request) -> dict[str, Any]:
    return {"accounts": _state(request).db.list_accounts()}


@router.put("/accounts/{aci}/voucher", status_code=204, response_class=Response)
def set_voucher(aci: str, body: VoucherBody, request: Request) -> Response:
    state = _state(request)
    if state.db.get_account(aci) is None:
        raise StubError(404, f"account {aci} is not registered")
    if (body.level is None) != (body.expiration is None):
        raise StubError(400, "send both level and expiration, or neither to remove the voucher")
    state.db.set_voucher(aci, body.level, body.expiration)
    return Response(status_code=204)


@router.get("/zk")
def zk_params(request: Request) -> dict[str, str]:
    state = _state(request)
    return {
        "backup_public_params": base64.b64encode(state.zk.public_params()).decode("ascii"),
        "receipt_public_params": base64.b64encode(state.zk.receipt_public_params()).decode("ascii"),
    }


@router.post("/receipts")
def issue_receipt(body: ReceiptBody, request: Request) -> dict[str, str]:
    state = _state(request)
    try:
        response = state.zk.issue_receipt(base64.b64decode(body.request, validate=True), body.expiration, body.level)
    except (binascii.Error, ValueError, LibsignalError) as error:
        raise StubError(400, f"cannot issue a receipt for this request: {error}") from None
    return {"response": base64.b64encode(response).decode("ascii")}


# -- markers and recordings -------------------------------------------------------------


@router.post("/marker")
def set_marker(body: MarkerBody, request: Request) -> dict[str, Any]:
    state = _state(request)
    state.recordings.set_marker(body.name)
    last = state.recordings.list(limit=1_000_000)
    return {"marker": body.name, "last_id": last[-1]["id"] if last else 0}


@router.get("/marker")
def get_marker(request: Request) -> dict[str, Any]:
    return {"marker": _state(request).recordings.marker}


@router.get("/recordings")
def list_recordings(
    request: Request,
    marker: str | None = None,
    plane: Literal["account", "archive", "cdn", "other"] | None = None,
    since_id: int | None = None,
    limit: int = Query(10_000, ge=1, le=1_000_000),
) -> dict[str, Any]:
    return {"recordings": _state(request).recordings.list(marker, plane, since_id, limit)}


@router.delete("/recordings", status_code=204, response_class=Response)
def clear_recordings(request: Request) -> Response:
    _state(request).recordings.clear()
    return Response(status_code=204)


@router.get("/recordings/{record_id}")
def get_recording(record_id: int, request: Request) -> dict[str, Any]:
    record = _state(request).recordings.get(record_id)
    if record is None:
        raise StubError(404, f"recording {record_id} not found")
    return record


def _body_response(state: StubState, record_id: int, which: str) -> Response:
    record = state.recordings.get(record_id)
    if record is None:
        raise StubError(404, f"recording {record_id} not found")
    body = record[which]
    if body["size"] == 0:
        return Response(content=b"", media_type="application/octet-stream")
    path = state.recordings.body_path(body["sha256"])
    if path is None:
        raise StubError(404, f"the {which.replace('_', ' ')} of recording {record_id} was not kept")
    return FileResponse(path, media_type="application/octet-stream")


@router.get("/recordings/{record_id}/request-body")
def get_request_body(record_id: int, request: Request) -> Response:
    return _body_response(_state(request), record_id, "request_body")


@router.get("/recordings/{record_id}/response-body")
def get_response_body(record_id: int, request: Request) -> Response:
    return _body_response(_state(request), record_id, "response_body")


@router.get("/bodies/{sha256}")
def get_body(sha256: str, request: Request) -> Response:
    path = _state(request).recordings.body_path(sha256)
    if path is None:
        raise StubError(404, f"no body stored with SHA-256 {sha256[:80]}")
    return FileResponse(path, media_type="application/octet-stream")


# -- clock, expiry, reset ----------------------------------------------------------------


@router.get("/clock")
def get_clock(request: Request) -> dict[str, Any]:
    return _state(request).clock.state()


@router.put("/clock")
def set_clock(body: ClockBody, request: Request) -> dict[str, Any]:
    state = _state(request)
    if (body.now is None) == (body.offset_seconds is None):
        raise StubError(400, "send exactly one of now and offset_seconds")
    if body.now is not None:
        state.clock.set(body.now, frozen=body.frozen)
    else:
        state.clock.reset()
        state.clock.advance(body.offset_seconds or 0.0)
        if body.frozen:
            state.clock.set(state.clock.now(), frozen=True)
    state.save_clock()
    return state.clock.state()


@router.post("/clock/advance")
def advance_clock(body: AdvanceBody, request: Request) -> dict[str, Any]:
    state = _state(request)
    state.clock.advance(body.seconds)
    state.save_clock()
    return state.clock.state()


@router.post("/expire")
def expire_now(request: Request) -> dict[str, Any]:
    return run_expiry(_state(request))


@router.post("/reset")
def reset(request: Request, body: ResetBody | None = None) -> dict[str, Any]:
    state = _state(request)
    keep_accounts = body.keep_accounts if body else False
    state.faults.clear()
    state.uploads.clear()
    state.objects.clear()
    state.db.clear(keep_accounts=keep_accounts)
    state.recordings.clear()
    state.clock.reset()
    log.info("state reset (accounts %s)", "kept" if keep_accounts else "removed")
    return {"ok": True}


# -- stored objects and records ----------------------------------------------------------


def _logical(path: str) -> str:
    try:
        validate_object_path(path)
    except InvalidObjectPath as error:
        raise StubError(400, f"invalid object path: {error}") from None
    return path


@router.get("/objects")
def list_objects(request: Request, prefix: str = "") -> dict[str, Any]:
    state = _state(request)
    if prefix:
        _logical(prefix.rstrip("/"))
    return {"objects": state.objects.list(prefix.rstrip("/"))}


@router.get("/objects/{path:path}")
def get_object(path: str, request: Request) -> Response:
    state = _state(request)
    logical = _logical(path)
    try:
        handle = state.objects.open_read(logical)
    except FileNotFoundError:
        raise StubError(404, f"no stored object at {logical}") from None

    def chunks() -> Any:
        with handle:
            while chunk := handle.read(CHUNK):
                yield chunk

    size = os.fstat(handle.fileno()).st_size
    return StreamingResponse(
        chunks(), media_type="application/octet-stream", headers={"Content-Length": str(size)}
    )


@router.put("/objects/{path:path}", status_code=204, response_class=Response)
async def put_object(path: str, request: Request) -> Response:
    """Store the request body as the object at ``path``, replacing it atomically (test set-up:
    plant an archive a restore then downloads)."""
    state = _state(request)
    logical = _logical(path)
    with state.objects.writer(logical) as handle:
        async for chunk in request.stream():
            handle.write(chunk)
    return Response(status_code=204)


@router.delete("/objects/{path:path}", status_code=204, response_class=Response)
def delete_object(path: str, request: Request) -> Response:
    if _state(request).objects.delete(_logical(path)) is None:
        raise StubError(404, f"no stored object at {path}")
    return Response(status_code=204)


@router.post("/corrupt")
def corrupt_object(body: CorruptBody, request: Request) -> dict[str, Any]:
    state = _state(request)
    logical = _logical(body.path)
    try:
        offset = state.objects.corrupt(logical, body.offset, body.bit)
    except FileNotFoundError:
        raise StubError(404, f"no stored object at {logical}") from None
    except ValueError as error:
        raise StubError(400, str(error)) from None
    return {"path": logical, "offset": offset, "bit": body.bit}


def _parse_backup_id(text: str) -> bytes:
    try:
        if len(text) == 32:
            return bytes.fromhex(text)
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_" if "-" in text or "_" in text else None)
    except (ValueError, binascii.Error):
        raise StubError(400, "backup_id must be 16 bytes as hex or base64") from None


@router.get("/backups")
def list_backups(request: Request, backup_id: str | None = None) -> dict[str, Any]:
    state = _state(request)
    records = state.db.list_backups()
    if backup_id is not None:
        raw = _parse_backup_id(backup_id)
        if len(raw) != 16:
            raise StubError(400, "backup_id must be 16 bytes")
        hashed = hash_backup_id(raw)
        records = [record for record in records if record.hashed_id == hashed]
    return {"backups": [record.to_json() for record in records]}


@router.get("/uploads")
def list_uploads(request: Request) -> dict[str, Any]:
    state = _state(request)
    uploads = []
    for upload in state.db.list_uploads():
        part = state.uploads.part_path(upload)
        uploads.append(
            {
                "bucket": upload.bucket,
                "key": upload.key,
                "length": upload.length,
                "offset": part.stat().st_size if part.exists() else None,
                "expires_at": upload.expires_at,
            }
        )
    return {"uploads": uploads}


# -- faults ------------------------------------------------------------------------------


@router.post("/faults", status_code=201)
def add_fault(body: FaultBody, request: Request) -> dict[str, Any]:
    return _state(request).faults.add(**body.model_dump()).to_json()


@router.get("/faults")
def list_faults(request: Request) -> dict[str, Any]:
    return {"faults": [fault.to_json() for fault in _state(request).faults.list()]}


@router.delete("/faults", status_code=204, response_class=Response)
def clear_faults(request: Request) -> Response:
    _state(request).faults.clear()
    return Response(status_code=204)


@router.delete("/faults/{fault_id}", status_code=204, response_class=Response)
def remove_fault(fault_id: str, request: Request) -> Response:
    if not _state(request).faults.remove(fault_id):
        raise StubError(404, f"fault {fault_id} not found")
    return Response(status_code=204)


class LoopbackOnlyMiddleware:
    """Refuse admin requests from any address that is not loopback."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            client = scope.get("client")
            host = client[0] if client else ""
            try:
                loopback = ipaddress.ip_address(host).is_loopback
            except ValueError:
                loopback = False
            if not loopback:
                await error_response(403, "the admin API answers loopback clients only")(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_admin_app(state: StubState) -> ASGIApp:
    app = FastAPI(
        title="backup-harness stub server: admin API",
        description="Harness control of the stub: recordings, faults, clock, objects. Loopback only.",
        version="1",
    )
    app.state.stub = state
    install_error_handlers(app)
    app.include_router(router)
    return LoopbackOnlyMiddleware(app)
