"""Account auth (HTTP Basic) and zero-knowledge auth (X-Signal-ZK-* headers) of the archive API.

Account auth: ``Authorization: Basic base64("<aci>.<device_id>:<password>")``, or
``"<aci>:<password>"`` for device 1; devices are registered through the admin API.

Zero-knowledge auth checks, in upstream's order:
1. a request that also carries ``Authorization``: 400;
2. a missing or non-base64 header: 400;
3. a presentation that does not parse: 400;
4. a presentation whose proof or redemption window fails: 401;
5. a backup id with no bound public key, or a signature that does not verify against it: 401.
Each route then checks the level (too low: 403) and the credential type (wrong: 401).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import uuid
from dataclasses import dataclass

from fastapi import Depends, Header, Request
from fastapi.security import HTTPBasic, HTTPBasicCredentials

from libsignal_bridge import LibsignalError
from libsignal_bridge.zk import LEVEL_PAID, TYPE_MEDIA, TYPE_MESSAGES, ZkInvalidInputError, ZkVerificationError
from server_stub.errors import StubError
from server_stub.state import StubState
from server_stub.storage import BackupRecord, hash_backup_id, password_digest

log = logging.getLogger(__name__)

basic_scheme = HTTPBasic(auto_error=False, description="Account credentials: <aci>.<device_id>:<password>")
TYPE_NAMES = {TYPE_MESSAGES: "messages", TYPE_MEDIA: "media"}


def stub_state(request: Request) -> StubState:
    return request.app.state.stub


@dataclass(frozen=True)
class AuthenticatedDevice:
    aci: str
    device_id: int

    @property
    def is_primary(self) -> bool:
        return self.device_id == 1


def authenticate_account(state: StubState, credentials: HTTPBasicCredentials | None) -> AuthenticatedDevice:
    """Check Basic credentials against the registered devices; raise 401."""
    if credentials is None:
        raise StubError(401, "missing account credentials (HTTP Basic <aci>.<device_id>:<password>)")
    aci_text, _, device_text = credentials.username.partition(".")
    try:
        aci = str(uuid.UUID(aci_text))
        device_id = int(device_text) if device_text else 1
    except ValueError:
        raise StubError(401, "invalid account user name; expected <aci>.<device_id>") from None
    stored = state.db.device_password_digest(aci, device_id)
    if stored is None or not hmac.compare_digest(stored, password_digest(credentials.password)):
        raise StubError(401, "invalid account credentials")
    return AuthenticatedDevice(aci, device_id)


@dataclass(frozen=True)
class BackupUser:
    """A request authenticated by a backup credential presentation."""

    backup_id: bytes
    hashed_id: bytes
    level: int
    credential_type: int
    record: BackupRecord

    @property
    def paid(self) -> bool:
        return self.level >= LEVEL_PAID

    def require_level(self, level: int) -> None:
        if self.level < level:
            raise StubError(403, f"credential level {self.level} is too low; this operation needs {level}")

    def require_type(self, credential_type: int) -> None:
        if self.credential_type != credential_type:
            raise StubError(
                401,
                f"credential type {TYPE_NAMES.get(self.credential_type)} is wrong; "
                f"this operation needs {TYPE_NAMES[credential_type]}",
            )


@dataclass(frozen=True)
class Presentation:
    presentation: bytes
    signature: bytes
    backup_id: bytes
    hashed_id: bytes
    level: int
    credential_type: int


def decode_base64_header(name: str, value: str | None) -> bytes:
    if value is None or not value.strip():
        raise StubError(400, f"missing {name} header")
    try:
        return base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise StubError(400, f"{name} header is not valid base64") from None


def verify_presentation_headers(
    state: StubState, authorization: str | None, zk_auth: str | None, zk_signature: str | None
) -> Presentation:
    """Steps 1-2 of zk auth: no account auth, headers decode, proof and window verify."""
    if authorization is not None:
        raise StubError(400, "must not use authenticated connection for anonymous operations")
    presentation = decode_base64_header("X-Signal-ZK-Auth", zk_auth)
    signature = decode_base64_header("X-Signal-ZK-Auth-Signature", zk_signature)
    try:
        verified = state.zk.server().verify_presentation(presentation, int(state.clock.now()))
    except ZkInvalidInputError:
        raise StubError(400, "X-Signal-ZK-Auth is not a valid backup credential presentation") from None
    except ZkVerificationError:
        raise StubError(401, "backup credential presentation failed verification") from None
    return Presentation(
        presentation=presentation,
        signature=signature,
        backup_id=verified.backup_id,
        hashed_id=hash_backup_id(verified.backup_id),
        level=verified.level,
        credential_type=verified.credential_type,
    )


def signature_valid(state: StubState, public_key: bytes, presentation: Presentation) -> bool:
    try:
        return state.zk.server().verify_signature(public_key, presentation.presentation, presentation.signature)
    except ZkInvalidInputError:
        return False
    except LibsignalError:
        return False


def zk_presentation(
    request: Request,
    authorization: str | None = Header(None, include_in_schema=False),
    x_signal_zk_auth: str | None = Header(
        None, alias="X-Signal-ZK-Auth", description="BackupAuthCredentialPresentation, standard base64"
    ),
    x_signal_zk_auth_signature: str | None = Header(
        None,
        alias="X-Signal-ZK-Auth-Signature",
        description="Signature over the presentation bytes with the backup-id key, standard base64",
    ),
) -> Presentation:
    """Dependency for PUT /v1/archives/keys: verifies the presentation but not the signature."""
    return verify_presentation_headers(stub_state(request), authorization, x_signal_zk_auth, x_signal_zk_auth_signature)


def zk_user(request: Request, presentation: Presentation = Depends(zk_presentation)) -> BackupUser:
    """Dependency for every other zk route: presentation and signature against the bound key."""
    state = stub_state(request)
    record = state.db.get_backup(presentation.hashed_id)
    if record is None or record.public_key is None:
        raise StubError(401, "no public key is bound to this backup id; call PUT /v1/archives/keys first")
    if not signature_valid(state, bytes(record.public_key), presentation):
        raise StubError(401, "X-Signal-ZK-Auth-Signature does not verify against the bound public key")
    return BackupUser(
        backup_id=presentation.backup_id,
        hashed_id=presentation.hashed_id,
        level=presentation.level,
        credential_type=presentation.credential_type,
        record=record,
    )
