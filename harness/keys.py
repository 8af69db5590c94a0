"""Recovery keys and every key derived from them for Signal-style secure backups.

The recovery key is libsignal's AccountEntropyPool: 64 characters from ``0-9a-z``, drawn
uniformly with a CSPRNG. Its 64 ASCII bytes are the input key material of two HKDF-SHA256
derivations, the SVR key and the backup key. Everything else derives from the backup key, the
account's ACI, a per-backup forward-secrecy token, or the random media root key stored inside
the archive. Info strings, salts and output splits follow libsignal 0.103.0
(``rust/account-keys/src/lib.rs``, ``rust/account-keys/src/backup.rs``,
``rust/message-backup/src/key.rs``), checked against its known answers in the tests.

No value returned here may reach a log, an error message or a repr: errors name the rule a
value broke and never echo the value.
"""

from __future__ import annotations

import dataclasses
import hmac
import secrets
import uuid

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from harness.errors import RecoveryKeyError, UsageError

ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
RECOVERY_KEY_LENGTH = 64
DISPLAY_GROUP_SIZE = 4
# Characters a user may type between groups of a recovery key; normalize_recovery_key drops them.
ENTRY_SEPARATORS = frozenset(" \t\r\n-")

BACKUP_KEY_LENGTH = 32
ACI_LENGTH = 16
BACKUP_ID_LENGTH = 16
FORWARD_SECRECY_TOKEN_LENGTH = 32
MEDIA_ID_LENGTH = 15
METADATA_SALT_LENGTH = 32

# HKDF info strings (ASCII, no terminator). A trailing colon is part of the string, and the
# variable part (ACI, backup id, media name or media id) is appended directly after it.
INFO_SVR_KEY = b"20240801_SIGNAL_SVR_MASTER_KEY"
INFO_BACKUP_KEY = b"20240801_SIGNAL_BACKUP_KEY"
INFO_BACKUP_ID = b"20241024_SIGNAL_BACKUP_ID:"
INFO_MESSAGE_BACKUP_KEY_LEGACY = b"20241007_SIGNAL_BACKUP_ENCRYPT_MESSAGE_BACKUP:"
INFO_MESSAGE_BACKUP_KEY = b"20250708_SIGNAL_BACKUP_ENCRYPT_MESSAGE_BACKUP:"
INFO_BACKUP_ID_KEY_PAIR = b"20241024_SIGNAL_BACKUP_ID_KEYPAIR:"
INFO_LOCAL_METADATA_KEY = b"20241011_SIGNAL_LOCAL_BACKUP_METADATA_KEY"
INFO_MEDIA_ID = b"20241007_SIGNAL_BACKUP_MEDIA_ID:"
INFO_MEDIA_ENCRYPTION_KEY = b"20241007_SIGNAL_BACKUP_ENCRYPT_MEDIA:"
INFO_THUMBNAIL_TRANSIT_KEY = b"20241030_SIGNAL_BACKUP_ENCRYPT_THUMBNAIL:"
INFO_FORWARD_SECRECY_PASSWORD = b"Signal Message Backup 20250627:SVR PIN"
INFO_FORWARD_SECRECY_TOKEN_KEY = (
    b"Signal Message Backup 20250627:BackupForwardSecrecyToken Encryption Key"
)

# Labels of the keys derived from the SVR key with HMAC-SHA256(svr_key, label).
SVR_KEY_LABELS = (
    "Registration Lock",
    "Registration Recovery",
    "Storage Service Encryption",
    "Logging Key",
)

# libsignal serializes a Curve25519 public key with this type byte in front.
DJB_KEY_TYPE = b"\x05"


# --- Recovery keys ---------------------------------------------------------------------------


def generate_recovery_key() -> str:
    """Return a new recovery key: 64 characters drawn uniformly from ALPHABET with a CSPRNG."""
    return "".join(secrets.choice(ALPHABET) for _ in range(RECOVERY_KEY_LENGTH))


def validate_recovery_key(key: str) -> None:
    """Raise RecoveryKeyError unless ``key`` is a canonical recovery key.

    Canonical means exactly 64 characters, each a digit or a lower-case ASCII letter. The error
    names the rule that failed and, for the alphabet rule, the 1-based position of the first
    bad character, never the key itself.
    """
    if not isinstance(key, str):
        raise RecoveryKeyError(f"invalid recovery key: expected a string, got {type(key).__name__}")
    if len(key) != RECOVERY_KEY_LENGTH:
        raise RecoveryKeyError(
            f"invalid recovery key: expected {RECOVERY_KEY_LENGTH} characters, got {len(key)}"
        )
    for position, char in enumerate(key, start=1):
        if char not in ALPHABET:
            raise RecoveryKeyError(
                f"invalid recovery key: character {position} is {_describe_character(char)}; "
                f"only digits and lower-case letters a-z are allowed"
            )


def normalize_recovery_key(entry: str) -> str:
    """Turn a recovery key as a user typed it into the canonical form, and validate it.

    Spaces, tabs, line breaks and dashes are dropped and letters are lower-cased, so the
    display form (``ABCD EFGH ...``) and a dash-grouped form are accepted. Any other character
    outside ``0-9a-zA-Z`` raises RecoveryKeyError naming its position in ``entry``, because
    silently dropping it would hide a typo.
    """
    if not isinstance(entry, str):
        raise RecoveryKeyError(
            f"invalid recovery key: expected a string, got {type(entry).__name__}"
        )
    characters: list[str] = []
    for position, char in enumerate(entry, start=1):
        if char in ENTRY_SEPARATORS:
            continue
        lowered = char.lower() if char.isascii() else char
        if lowered not in ALPHABET:
            raise RecoveryKeyError(
                f"invalid recovery key: character {position} of the entry is "
                f"{_describe_character(char)}; only letters, digits, spaces and dashes are allowed"
            )
        characters.append(lowered)
    key = "".join(characters)
    if len(key) != RECOVERY_KEY_LENGTH:
        raise RecoveryKeyError(
            f"invalid recovery key: expected {RECOVERY_KEY_LENGTH} characters, got {len(key)} "
            "(not counting spaces and dashes)"
        )
    return key


def display_recovery_key(key: str) -> str:
    """Return the display form: upper case, groups of 4 separated by single spaces."""
    validate_recovery_key(key)
    upper = key.upper()
    groups = [upper[i : i + DISPLAY_GROUP_SIZE] for i in range(0, len(upper), DISPLAY_GROUP_SIZE)]
    return " ".join(groups)


def _describe_character(char: str) -> str:
    """Describe a rejected character without revealing key material.

    An upper-case letter would be a key character after lower-casing, so only its class is
    named. Characters that can never be part of a key are shown.
    """
    if char.isascii() and char.isupper():
        return "an upper-case letter"
    if char.isspace():
        return "a whitespace character"
    if char.isprintable() and char.isascii():
        return f"{char!r}"
    return f"U+{ord(char):04X}"


# --- Parsing other inputs --------------------------------------------------------------------


def parse_aci(text: str) -> bytes:
    """Return the 16 raw bytes (RFC 4122 order) of an ACI given as a UUID string.

    Raises UsageError for anything that is not a UUID.
    """
    try:
        return uuid.UUID(text.strip()).bytes
    except (ValueError, AttributeError, TypeError):
        raise UsageError(
            f"invalid ACI {text!r}: expected a UUID such as 11111111-1111-1111-1111-111111111111"
        ) from None


def parse_forward_secrecy_token(text: str) -> bytes:
    """Return the 32-byte forward-secrecy token written as 64 hex digits.

    Raises UsageError naming the rule that failed; the message never contains the token.
    """
    cleaned = text.strip().lower()
    if cleaned.startswith("0x"):
        cleaned = cleaned[2:]
    expected_digits = 2 * FORWARD_SECRECY_TOKEN_LENGTH
    if len(cleaned) != expected_digits:
        raise UsageError(
            f"invalid forward-secrecy token: expected {expected_digits} hex digits, "
            f"got {len(cleaned)}"
        )
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        raise UsageError(
            "invalid forward-secrecy token: it contains a character that is not a hex digit"
        ) from None


# --- Derivations -----------------------------------------------------------------------------


def _hkdf(ikm: bytes, info: bytes, length: int, salt: bytes | None = None) -> bytes:
    """HKDF-SHA256; no salt means RFC 5869's 32 zero bytes, as libsignal does."""
    return HKDF(algorithm=SHA256(), length=length, salt=salt, info=info).derive(ikm)


def _require_length(name: str, value: bytes, length: int) -> None:
    if not isinstance(value, (bytes, bytearray)):
        raise TypeError(f"{name} must be bytes, got {type(value).__name__}")
    if len(value) != length:
        raise ValueError(f"{name} must be {length} bytes, got {len(value)}")


def _recovery_key_material(recovery_key: str) -> bytes:
    validate_recovery_key(recovery_key)
    return recovery_key.encode("ascii")


def derive_svr_key(recovery_key: str) -> bytes:
    """Derive the 32-byte SVR key ("master key") from a canonical recovery key."""
    return _hkdf(_recovery_key_material(recovery_key), INFO_SVR_KEY, 32)


def derive_svr_child_key(svr_key: bytes, label: str) -> bytes:
    """Derive a key from the SVR key as HMAC-SHA256(svr_key, label), e.g. "Registration Lock"."""
    _require_length("svr_key", svr_key, 32)
    return hmac.new(svr_key, label.encode("utf-8"), "sha256").digest()


def derive_backup_key(recovery_key: str) -> bytes:
    """Derive the 32-byte backup key (the root of the message backup keys)."""
    return _hkdf(_recovery_key_material(recovery_key), INFO_BACKUP_KEY, BACKUP_KEY_LENGTH)


def derive_backup_id(backup_key: bytes, aci: bytes) -> bytes:
    """Derive the 16-byte backup id from a backup key (or media root key) and the ACI."""
    _require_length("backup_key", backup_key, BACKUP_KEY_LENGTH)
    _require_length("aci", aci, ACI_LENGTH)
    return _hkdf(bytes(backup_key), INFO_BACKUP_ID + bytes(aci), BACKUP_ID_LENGTH)


def derive_backup_id_private_key(backup_key: bytes, aci: bytes) -> bytes:
    """Derive the backup-id Curve25519 private key: 32 HKDF bytes, clamped."""
    _require_length("backup_key", backup_key, BACKUP_KEY_LENGTH)
    _require_length("aci", aci, ACI_LENGTH)
    raw = bytearray(_hkdf(bytes(backup_key), INFO_BACKUP_ID_KEY_PAIR + bytes(aci), 32))
    raw[0] &= 0xF8
    raw[31] &= 0x7F
    raw[31] |= 0x40
    return bytes(raw)


def derive_backup_id_public_key(backup_key: bytes, aci: bytes) -> bytes:
    """Derive the backup-id public key, serialized as libsignal does: 0x05 then 32 bytes."""
    private_key = X25519PrivateKey.from_private_bytes(derive_backup_id_private_key(backup_key, aci))
    return DJB_KEY_TYPE + private_key.public_key().public_bytes_raw()


def derive_local_metadata_key(backup_key: bytes) -> bytes:
    """Derive the 32-byte key that encrypts the backup id in a local backup's metadata file."""
    _require_length("backup_key", backup_key, BACKUP_KEY_LENGTH)
    return _hkdf(bytes(backup_key), INFO_LOCAL_METADATA_KEY, 32)


def derive_media_id(media_root_key: bytes, media_name: str) -> bytes:
    """Derive the 15-byte media id of a media name (any UTF-8 string, may be empty)."""
    _require_length("media_root_key", media_root_key, BACKUP_KEY_LENGTH)
    return _hkdf(bytes(media_root_key), INFO_MEDIA_ID + media_name.encode("utf-8"), MEDIA_ID_LENGTH)


def derive_media_encryption_key(media_root_key: bytes, media_id: bytes) -> tuple[bytes, bytes]:
    """Derive the media-tier encryption key of a media id as (hmac_key, aes_key)."""
    return _derive_media_key_pair(media_root_key, media_id, INFO_MEDIA_ENCRYPTION_KEY)


def derive_thumbnail_transit_key(media_root_key: bytes, media_id: bytes) -> tuple[bytes, bytes]:
    """Derive the transit-tier thumbnail key of a media id as (hmac_key, aes_key)."""
    return _derive_media_key_pair(media_root_key, media_id, INFO_THUMBNAIL_TRANSIT_KEY)


def _derive_media_key_pair(media_root_key: bytes, media_id: bytes, info: bytes) -> tuple[bytes, bytes]:
    _require_length("media_root_key", media_root_key, BACKUP_KEY_LENGTH)
    _require_length("media_id", media_id, MEDIA_ID_LENGTH)
    okm = _hkdf(bytes(media_root_key), info + bytes(media_id), 64)
    return okm[:32], okm[32:]


def derive_forward_secrecy_password(backup_key: bytes, pw_salt: bytes) -> bytes:
    """Derive the 32-byte password under which SVR-B stores a forward-secrecy token."""
    _require_length("backup_key", backup_key, BACKUP_KEY_LENGTH)
    _require_length("pw_salt", pw_salt, METADATA_SALT_LENGTH)
    return _hkdf(bytes(backup_key), INFO_FORWARD_SECRECY_PASSWORD, 32, salt=bytes(pw_salt))


def derive_forward_secrecy_token_key(backup_key: bytes, enc_salt: bytes) -> tuple[bytes, bytes]:
    """Derive the key pair that encrypts the token in an archive header, as (aes_key, hmac_key).

    ``enc_salt`` is the 32-byte secret SVR-B releases. The AES key (first 32 bytes) drives
    AES-256-CTR; the HMAC key (last 32 bytes) authenticates the result.
    """
    _require_length("backup_key", backup_key, BACKUP_KEY_LENGTH)
    _require_length("enc_salt", enc_salt, METADATA_SALT_LENGTH)
    okm = _hkdf(bytes(backup_key), INFO_FORWARD_SECRECY_TOKEN_KEY, 64, salt=bytes(enc_salt))
    return okm[:32], okm[32:]


@dataclasses.dataclass(frozen=True)
class MessageBackupKey:
    """The two keys that protect an archive: HMAC-SHA256 key and AES-256-CBC key.

    ``forward_secrecy_token`` and ``backup_key`` are kept when known, so an ArchiveWriter can
    build the modern header from the key alone. No field appears in the repr.
    """

    hmac_key: bytes = dataclasses.field(repr=False)
    aes_key: bytes = dataclasses.field(repr=False)
    backup_key: bytes | None = dataclasses.field(default=None, repr=False, compare=False)
    forward_secrecy_token: bytes | None = dataclasses.field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        _require_length("hmac_key", self.hmac_key, 32)
        _require_length("aes_key", self.aes_key, 32)

    @property
    def has_forward_secrecy(self) -> bool:
        """Whether the key was derived with a forward-secrecy token (modern archives)."""
        return self.forward_secrecy_token is not None

    @classmethod
    def from_recovery_key(
        cls, recovery_key: str, aci: bytes, forward_secrecy_token: bytes | None = None
    ) -> MessageBackupKey:
        """Derive the archive keys from a canonical recovery key, the ACI and an optional token."""
        backup_key = derive_backup_key(recovery_key)
        backup_id = derive_backup_id(backup_key, aci)
        return derive_message_backup_key(backup_key, backup_id, forward_secrecy_token)


def derive_message_backup_key(
    backup_key: bytes, backup_id: bytes, forward_secrecy_token: bytes | None = None
) -> MessageBackupKey:
    """Derive the archive keys from the backup key and backup id.

    With a token (modern archives) the token is the HKDF salt and the newer info string is
    used. Without one, the legacy info string applies (legacy and local archives).
    """
    _require_length("backup_key", backup_key, BACKUP_KEY_LENGTH)
    _require_length("backup_id", backup_id, BACKUP_ID_LENGTH)
    if forward_secrecy_token is None:
        okm = _hkdf(bytes(backup_key), INFO_MESSAGE_BACKUP_KEY_LEGACY + bytes(backup_id), 64)
    else:
        _require_length("forward_secrecy_token", forward_secrecy_token, FORWARD_SECRECY_TOKEN_LENGTH)
        okm = _hkdf(
            bytes(backup_key),
            INFO_MESSAGE_BACKUP_KEY + bytes(backup_id),
            64,
            salt=bytes(forward_secrecy_token),
        )
    return MessageBackupKey(
        hmac_key=okm[:32],
        aes_key=okm[32:],
        backup_key=bytes(backup_key),
        forward_secrecy_token=None if forward_secrecy_token is None else bytes(forward_secrecy_token),
    )
