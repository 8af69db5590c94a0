"""Backup auth credentials (zkgroup) and backup-id signatures through the libsignal bridge.

The server half (``ZkServer``) issues a blinded credential per UTC day and verifies the
anonymous presentations that ZK-authenticated archive requests carry. The client half
(``ZkClient``) builds the blinded request from the backup key and ACI, unblinds the issued
credential, presents it and signs the presentation with the backup-id private key.

All times are epoch seconds. A presentation for redemption day ``T`` verifies while
``T - 86400 <= now <= T + 2 * 86400`` (libsignal ``check_auth_credential_redemption_time``).

Errors: bytes that do not parse raise ``ZkInvalidInputError``; a proof, time window or
issuance check that fails raises ``ZkVerificationError`` (its base class). Both are results,
not infrastructure failures: the stub turns them into 400 and 401.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from libsignal_bridge import Bridge, LibsignalError, b64, unb64

log = logging.getLogger(__name__)

LEVEL_FREE = 200
LEVEL_PAID = 201
TYPE_MESSAGES = 1
TYPE_MEDIA = 2

LEVELS = (LEVEL_FREE, LEVEL_PAID)
CREDENTIAL_TYPES = (TYPE_MESSAGES, TYPE_MEDIA)

BACKUP_KEY_LENGTH = 32
ACI_LENGTH = 16
PRIVATE_KEY_LENGTH = 32
PUBLIC_KEY_LENGTH = 33


class ZkVerificationError(LibsignalError):
    """A backup credential or presentation failed verification (bad proof, outside its window,
    wrong backup key on receipt)."""


class ZkInvalidInputError(ZkVerificationError):
    """Bytes handed to libsignal do not parse as the expected object (malformed request,
    presentation, key or params)."""


@dataclass(frozen=True)
class VerifiedPresentation:
    """Values a verified presentation reveals: the 16-byte backup id, the level and the type."""

    backup_id: bytes
    level: int
    credential_type: int


@dataclass(frozen=True)
class CredentialInfo:
    """The same three values read from a credential or presentation without verifying it."""

    backup_id: bytes
    level: int
    credential_type: int


def _call(bridge: Bridge, op: str, **args: Any) -> Any:
    """Run one bridge op and map libsignal's rejections onto the zk error types."""
    try:
        return bridge.call(op, **args)
    except LibsignalError as error:
        if error.kind == "InvalidInput":
            raise ZkInvalidInputError(op, error.detail, error.kind) from None
        raise ZkVerificationError(op, error.detail, error.kind) from None


def _require_length(op: str, name: str, value: bytes, length: int) -> None:
    if not isinstance(value, bytes | bytearray) or len(value) != length:
        size = len(value) if isinstance(value, bytes | bytearray) else type(value).__name__
        raise ZkInvalidInputError(op, f"{name} must be {length} bytes, got {size}", "InvalidInput")


def _require_choice(op: str, name: str, value: int, allowed: tuple[int, ...]) -> None:
    if value not in allowed:
        raise ZkInvalidInputError(op, f"{name} must be one of {allowed}, got {value!r}", "InvalidInput")


def _info(result: dict[str, Any]) -> CredentialInfo:
    return CredentialInfo(
        backup_id=unb64(result["backup_id"]),
        level=int(result["level"]),
        credential_type=int(result["credential_type"]),
    )


def read_presentation(bridge: Bridge, presentation: bytes) -> CredentialInfo:
    """Read the backup id, level and type a presentation reveals, WITHOUT verifying it.

    For recordings and reports only; never use this to authenticate a request.
    """
    return _info(_call(bridge, "zk_presentation_info", presentation=b64(presentation)))


class ZkServer:
    """The server half: issues credentials and verifies presentations with one secret."""

    def __init__(self, bridge: Bridge, secret_params: bytes):
        self._bridge = bridge
        self._secret_params = b64(secret_params)

    def __repr__(self) -> str:
        return "ZkServer(<secret params hidden>)"

    @staticmethod
    def generate_secret_params(bridge: Bridge) -> bytes:
        """Generate a fresh GenericServerSecretParams for backup credentials."""
        return unb64(_call(bridge, "zk_server_params_generate")["secret_params"])

    def public_params(self) -> bytes:
        """Return the GenericServerPublicParams that clients need to receive and present."""
        return unb64(_call(self._bridge, "zk_server_public_params", secret_params=self._secret_params))

    def check_request(self, request: bytes) -> None:
        """Raise ZkInvalidInputError unless ``request`` parses as a BackupAuthCredentialRequest."""
        _call(self._bridge, "zk_request_check", request=b64(request))

    def issue(self, request: bytes, redemption_time: int, level: int, credential_type: int) -> bytes:
        """Issue a blinded credential (BackupAuthCredentialResponse) for one redemption day."""
        _require_choice("zk_issue", "level", level, LEVELS)
        _require_choice("zk_issue", "credential_type", credential_type, CREDENTIAL_TYPES)
        response = _call(
            self._bridge,
            "zk_issue",
            secret_params=self._secret_params,
            request=b64(request),
            redemption_time=int(redemption_time),
            level=level,
            credential_type=credential_type,
        )
        return unb64(response)

    def verify_presentation(self, presentation: bytes, now: int) -> VerifiedPresentation:
        """Verify the proof and the redemption window at ``now`` and return what it reveals."""
        result = _call(
            self._bridge,
            "zk_verify_presentation",
            secret_params=self._secret_params,
            presentation=b64(presentation),
            now=int(now),
        )
        info = _info(result)
        return VerifiedPresentation(info.backup_id, info.level, info.credential_type)

    def verify_signature(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        """Check an XEdDSA signature; a malformed public key raises ZkInvalidInputError."""
        _require_length("ec_verify", "public_key", public_key, PUBLIC_KEY_LENGTH)
        result = _call(
            self._bridge,
            "ec_verify",
            public_key=b64(public_key),
            message=b64(message),
            signature=b64(signature),
        )
        return bool(result)


class ZkClient:
    """The client half: builds requests, receives credentials, presents and signs."""

    def __init__(self, bridge: Bridge, public_params: bytes):
        self._bridge = bridge
        self._public_params = b64(public_params)

    def create_request_context(self, backup_key: bytes, aci: bytes) -> tuple[bytes, bytes]:
        """Return (request context, blinded request) for one backup key and 16-byte ACI.

        The context is derived deterministically, so a restored client can rebuild it. It is
        secret: keep it out of logs.
        """
        _require_length("zk_request_context_create", "backup_key", backup_key, BACKUP_KEY_LENGTH)
        _require_length("zk_request_context_create", "aci", aci, ACI_LENGTH)
        result = _call(self._bridge, "zk_request_context_create", backup_key=b64(backup_key), aci=b64(aci))
        return unb64(result["context"]), unb64(result["request"])

    def receive(self, context: bytes, response: bytes, redemption_time: int) -> bytes:
        """Check the issuance proof and unblind the credential for ``redemption_time``.

        Raises ZkVerificationError when the response was issued for another backup key, day
        or server.
        """
        credential = _call(
            self._bridge,
            "zk_receive",
            public_params=self._public_params,
            context=b64(context),
            response=b64(response),
            redemption_time=int(redemption_time),
        )
        return unb64(credential)

    def present(self, credential: bytes) -> bytes:
        """Make a fresh, unlinkable presentation of ``credential``."""
        presentation = _call(self._bridge, "zk_present", public_params=self._public_params, credential=b64(credential))
        return unb64(presentation)

    def sign(self, private_key: bytes, message: bytes) -> bytes:
        """Sign ``message`` with a 32-byte Curve25519 private key (XEdDSA, 64-byte result)."""
        _require_length("ec_sign", "private_key", private_key, PRIVATE_KEY_LENGTH)
        return unb64(_call(self._bridge, "ec_sign", private_key=b64(private_key), message=b64(message)))

    def public_key(self, private_key: bytes) -> bytes:
        """Return the 33-byte serialized public key (0x05 type byte) of a private key."""
        _require_length("ec_public_key", "private_key", private_key, PRIVATE_KEY_LENGTH)
        return unb64(_call(self._bridge, "ec_public_key", private_key=b64(private_key)))

    def credential_info(self, credential: bytes) -> CredentialInfo:
        """Read the backup id, level and type of a received credential."""
        return _info(_call(self._bridge, "zk_credential_info", credential=b64(credential)))
