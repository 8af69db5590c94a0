"""The forward-secrecy token of modern archives, and how a restorer gets it back.

Each modern archive is encrypted with a fresh random 32-byte token (the HKDF salt of the
message backup key). A real client stores the token in SVR-B, an enclave that releases a
secret ``enc_salt`` to whoever knows the password derived from the backup key; the token
sits in the archive's plaintext header encrypted under a key derived from that ``enc_salt``.

NOTE: the stub server has no SVR-B enclave, so this app derives ``enc_salt`` from the backup
key and the header's public ``pw_salt``:

    enc_salt = HMAC-SHA256(key = backup key, message = "ReferenceApp SVR-B stand-in:" || pw_salt)

A restorer (or the harness) with the recovery key recovers the token from the header alone.
The archive format is exactly the modern one; what is lost is the forward secrecy itself.
"""

from __future__ import annotations

import hmac
import secrets

from harness.errors import MacMismatchError
from harness.archive_metadata import BackupMetadata, ForwardSecrecySalts, decrypt_forward_secrecy_token
from harness.keys import FORWARD_SECRECY_TOKEN_LENGTH, METADATA_SALT_LENGTH

STAND_IN_LABEL = b"ReferenceApp SVR-B stand-in:"


def enc_salt_for(backup_key: bytes, pw_salt: bytes) -> bytes:
    return hmac.new(backup_key, STAND_IN_LABEL + pw_salt, "sha256").digest()


def new_token() -> bytes:
    return secrets.token_bytes(FORWARD_SECRECY_TOKEN_LENGTH)


def new_salts(backup_key: bytes) -> ForwardSecrecySalts:
    pw_salt = secrets.token_bytes(METADATA_SALT_LENGTH)
    return ForwardSecrecySalts(pw_salt=pw_salt, enc_salt=enc_salt_for(backup_key, pw_salt))


def recover_token(backup_key: bytes, metadata: BackupMetadata) -> bytes:
    """Return the token of an archive header; MacMismatchError when no pair opens with this key."""
    for index, pair in enumerate(metadata.pairs):
        try:
            return decrypt_forward_secrecy_token(backup_key, metadata, enc_salt_for(backup_key, pair.pw_salt), index)
        except MacMismatchError:
            continue
    raise MacMismatchError("no forward-secrecy token in the archive header opens with this recovery key")
