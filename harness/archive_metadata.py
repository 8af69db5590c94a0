"""The plaintext header of a modern archive (``MetadataPb``) and the forward-secrecy token in it.

A modern archive starts with ``SBACKUP\\x01``, a varint length and a small protobuf message
of package ``svrb.backup_metadata``. That message has one or two pairs (field 1), each of
``ct`` (field 1, the encrypted forward-secrecy token, 48 bytes) and ``pw_salt`` (field 2,
32 bytes), and one shared ``iv`` (field 2, 12 bytes). The archive MAC does not cover it.

Each ``ct`` is AES-256-CTR(token) followed by the first 16 bytes of HMAC-SHA256 over
``iv || AES-CTR output``, under the key pair derived from the backup key and an ``enc_salt``
that SVR-B releases to a restorer who knows the password derived from ``pw_salt``.
This follows libsignal's ``rust/net/src/svrb.rs``. No libsignal API runs it offline, so only
the shape checks below are confirmed against libsignal 0.103.0.
"""

from __future__ import annotations

import dataclasses
import hmac
import logging
import secrets
from collections.abc import Sequence

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from harness.errors import MacMismatchError, NotABackupError, UnsupportedVersionError
from harness.keys import (
    FORWARD_SECRECY_TOKEN_LENGTH,
    METADATA_SALT_LENGTH,
    derive_forward_secrecy_token_key,
)

log = logging.getLogger(__name__)

# First 8 bytes of a modern archive; the last byte is the container version.
MODERN_MAGIC = b"SBACKUP\x01"
METADATA_IV_LENGTH = 12
ENCRYPTED_TOKEN_LENGTH = FORWARD_SECRECY_TOKEN_LENGTH + 16
MAX_PAIRS = 2

_WIRE_VARINT, _WIRE_FIXED64, _WIRE_LEN, _WIRE_FIXED32 = 0, 1, 2, 5


@dataclasses.dataclass(frozen=True)
class MetadataPair:
    """One SVR-B entry as stored in the header: encrypted token and password salt."""

    ct: bytes
    pw_salt: bytes


@dataclasses.dataclass(frozen=True)
class BackupMetadata:
    """A parsed ``MetadataPb``. ``raw`` is the exact byte string found in (or written to) the file."""

    pairs: tuple[MetadataPair, ...]
    iv: bytes
    raw: bytes = dataclasses.field(default=b"", repr=False)
    unknown_field_numbers: tuple[int, ...] = ()

    def encode(self) -> bytes:
        """Serialize as protobuf: every pair (field 1) in order, then the iv (field 2)."""
        out = bytearray()
        for pair in self.pairs:
            body = _length_delimited(1, pair.ct) + _length_delimited(2, pair.pw_salt)
            out += _length_delimited(1, body)
        out += _length_delimited(2, self.iv)
        return bytes(out)


@dataclasses.dataclass(frozen=True)
class ForwardSecrecySalts:
    """The two salts of one SVR-B entry. ``enc_salt`` is secret and never in the file."""

    pw_salt: bytes
    enc_salt: bytes = dataclasses.field(repr=False)

    @classmethod
    def generate(cls) -> ForwardSecrecySalts:
        return cls(secrets.token_bytes(METADATA_SALT_LENGTH), secrets.token_bytes(METADATA_SALT_LENGTH))


# --- Token encryption ------------------------------------------------------------------------


def _ctr(key: bytes, iv: bytes, data: bytes) -> bytes:
    # The initial counter block is iv(12) || 00000000; the 2-block token never wraps the counter.
    cipher = Cipher(algorithms.AES(key), modes.CTR(iv + b"\x00" * 4))
    encryptor = cipher.encryptor()
    return encryptor.update(data) + encryptor.finalize()


def _token_tag(hmac_key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    return hmac.new(hmac_key, iv + ciphertext, "sha256").digest()[:16]


def encrypt_forward_secrecy_token(backup_key: bytes, token: bytes, enc_salt: bytes, iv: bytes) -> bytes:
    """Encrypt a forward-secrecy token into the 48-byte ``ct`` of a header pair."""
    if len(token) != FORWARD_SECRECY_TOKEN_LENGTH:
        raise ValueError(f"token must be {FORWARD_SECRECY_TOKEN_LENGTH} bytes, got {len(token)}")
    if len(iv) != METADATA_IV_LENGTH:
        raise ValueError(f"iv must be {METADATA_IV_LENGTH} bytes, got {len(iv)}")
    aes_key, hmac_key = derive_forward_secrecy_token_key(backup_key, enc_salt)
    ciphertext = _ctr(aes_key, iv, token)
    return ciphertext + _token_tag(hmac_key, iv, ciphertext)


def decrypt_forward_secrecy_token(
    backup_key: bytes, metadata: BackupMetadata, enc_salt: bytes, pair_index: int | None = None
) -> bytes:
    """Recover the forward-secrecy token from a header, given the ``enc_salt`` SVR-B released.

    With ``pair_index`` None every pair is tried, so a restorer need not know which SVR-B
    entry the salt belongs to. Raises MacMismatchError when no pair authenticates.
    """
    aes_key, hmac_key = derive_forward_secrecy_token_key(backup_key, enc_salt)
    indexes = range(len(metadata.pairs)) if pair_index is None else [pair_index]
    for index in indexes:
        ct = metadata.pairs[index].ct
        if len(ct) != ENCRYPTED_TOKEN_LENGTH:
            continue
        ciphertext, tag = ct[:FORWARD_SECRECY_TOKEN_LENGTH], ct[FORWARD_SECRECY_TOKEN_LENGTH:]
        if hmac.compare_digest(tag, _token_tag(hmac_key, metadata.iv, ciphertext)):
            return _ctr(aes_key, metadata.iv, ciphertext)
    raise MacMismatchError(
        "forward-secrecy token MAC mismatch: wrong recovery key or enc_salt for this archive header"
    )


def build_metadata(
    backup_key: bytes,
    token: bytes,
    salts: Sequence[ForwardSecrecySalts] | None = None,
    iv: bytes | None = None,
) -> tuple[BackupMetadata, tuple[ForwardSecrecySalts, ...]]:
    """Build a well-formed header that carries ``token`` once per SVR-B entry.

    ``salts`` defaults to one entry with random salts; pass two to mimic a client that keeps
    the previous entry. ``iv`` defaults to 12 random bytes. Returns the header and the salts,
    which a test restorer needs because ``enc_salt`` is not stored in the file.
    """
    chosen = tuple(salts) if salts is not None else (ForwardSecrecySalts.generate(),)
    if not 1 <= len(chosen) <= MAX_PAIRS:
        raise ValueError(f"a header contains 1 or 2 pairs, got {len(chosen)}")
    header_iv = secrets.token_bytes(METADATA_IV_LENGTH) if iv is None else iv
    pairs = tuple(
        MetadataPair(
            ct=encrypt_forward_secrecy_token(backup_key, token, salt.enc_salt, header_iv),
            pw_salt=salt.pw_salt,
        )
        for salt in chosen
    )
    metadata = BackupMetadata(pairs=pairs, iv=header_iv)
    return dataclasses.replace(metadata, raw=metadata.encode()), chosen


# --- Parsing ---------------------------------------------------------------------------------


def parse_metadata(data: bytes) -> BackupMetadata:
    """Parse and shape-check a ``MetadataPb`` in libsignal's order and wording.

    Raises NotABackupError for invalid protobuf or a field of the wrong size, and
    UnsupportedVersionError for more than two pairs. Unknown fields are logged and kept by
    number only.
    """
    pairs: list[MetadataPair] = []
    iv = b""
    unknown: list[int] = []
    for number, wire_type, value in _iter_fields(data, "unencrypted metadata"):
        if number == 1 and wire_type == _WIRE_LEN:
            pairs.append(_parse_pair(value, unknown))
        elif number == 2 and wire_type == _WIRE_LEN:
            iv = value
        elif number in (1, 2):
            raise NotABackupError(
                f"invalid protobuf in unencrypted metadata: field {number} has wire type {wire_type}"
            )
        else:
            unknown.append(number)
    if unknown:
        log.info("unencrypted metadata has unknown field numbers %s", sorted(set(unknown)))
    _check_shape(pairs, iv)
    return BackupMetadata(tuple(pairs), iv, bytes(data), tuple(unknown))


def _parse_pair(data: bytes, unknown: list[int]) -> MetadataPair:
    ct = b""
    pw_salt = b""
    for number, wire_type, value in _iter_fields(data, "unencrypted metadata pair"):
        if number in (1, 2) and wire_type != _WIRE_LEN:
            raise NotABackupError(
                f"invalid protobuf in unencrypted metadata pair: field {number} has wire type {wire_type}"
            )
        if number == 1:
            ct = value
        elif number == 2:
            pw_salt = value
        else:
            unknown.append(number)
    return MetadataPair(ct, pw_salt)


def _check_shape(pairs: list[MetadataPair], iv: bytes) -> None:
    if not pairs:
        raise NotABackupError("missing field 'pair' in unencrypted metadata")
    if len(pairs) > MAX_PAIRS:
        raise UnsupportedVersionError(
            f"unencrypted metadata contains {len(pairs)} forward secrecy pairs (expected 1 or 2)"
        )
    for pair in pairs:
        _check_field("pair.ct", pair.ct, ENCRYPTED_TOKEN_LENGTH)
        _check_field("pair.pw_salt", pair.pw_salt, METADATA_SALT_LENGTH)
    if len(iv) != METADATA_IV_LENGTH:
        raise NotABackupError(
            f"unencrypted metadata field 'iv' was {len(iv)} bytes long (expected {METADATA_IV_LENGTH})"
        )


def _check_field(name: str, value: bytes, expected: int) -> None:
    if not value:
        raise NotABackupError(f"missing field '{name}' in unencrypted metadata")
    if len(value) != expected:
        raise NotABackupError(
            f"unencrypted metadata field '{name}' was {len(value)} bytes long (expected {expected})"
        )


# --- Protobuf wire format (only what MetadataPb needs) -------------------------------------------


def read_varint(data: bytes | memoryview, offset: int) -> tuple[int, int]:
    """Decode a base-128 varint at ``offset``; return (value, offset after it).

    Raises IndexError when the data ends inside the varint and ValueError when it is longer
    than 10 bytes.
    """
    value = 0
    for shift in range(0, 70, 7):
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, offset
    raise ValueError("varint longer than 10 bytes")


def encode_varint(value: int) -> bytes:
    """Encode a non-negative integer as a base-128 varint."""
    if value < 0:
        raise ValueError("varint must not be negative")
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _length_delimited(number: int, value: bytes) -> bytes:
    return encode_varint(number << 3 | _WIRE_LEN) + encode_varint(len(value)) + value


def _iter_fields(data: bytes, where: str):
    """Yield (field number, wire type, value) of a protobuf message; bytes for LEN fields."""
    offset = 0
    end = len(data)
    try:
        while offset < end:
            tag, offset = read_varint(data, offset)
            number, wire_type = tag >> 3, tag & 7
            if number == 0:
                raise ValueError("field number 0")
            if wire_type == _WIRE_VARINT:
                value, offset = read_varint(data, offset)
                yield number, wire_type, value
            elif wire_type == _WIRE_LEN:
                length, offset = read_varint(data, offset)
                if offset + length > end:
                    raise IndexError
                yield number, wire_type, bytes(data[offset : offset + length])
                offset += length
            elif wire_type in (_WIRE_FIXED64, _WIRE_FIXED32):
                size = 8 if wire_type == _WIRE_FIXED64 else 4
                if offset + size > end:
                    raise IndexError
                yield number, wire_type, bytes(data[offset : offset + size])
                offset += size
            else:
                raise ValueError(f"unsupported wire type {wire_type}")
    except IndexError:
        raise NotABackupError(f"invalid protobuf in {where}: a field runs past the end") from None
    except ValueError as error:
        raise NotABackupError(f"invalid protobuf in {where}: {error}") from None
