"""Attachment bytes, their encryption, and the transit tier (the normal attachment CDN).

An attachment on the wire is Signal's attachment format: the plaintext is padded with zeros
to a size bucket, then ``IV(16) || AES-256-CBC(PKCS#7) || HMAC-SHA256(IV || ciphertext)``
under a 64-byte attachment key (AES key first, then HMAC key). The free tier keeps an
attachment restorable only while its transit-tier object exists, so sending an attachment
uploads it there (``GET /v4/attachments/form/upload`` with account auth, then TUS) and the
upload time is recorded for the archive's ``transitTierUploadTimestamp``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from reference_app.archive_client import AccountAuth
from reference_app.errors import AppError, InvalidResponse
from reference_app.http_api import Timeouts, json_object, new_session, send
from reference_app.tus_client import TusClient, UploadForm

log = logging.getLogger(__name__)

ATTACHMENT_KEY_LENGTH = 64
IV_LENGTH = 16
MAC_LENGTH = 32
# Signal pads attachment plaintext to max(541, floor(1.05 ** ceil(log(size, 1.05)))) bytes.
MIN_PADDED_SIZE = 541
PADDING_BASE = 1.05


class AttachmentIntegrityError(AppError):
    """Downloaded attachment bytes fail their MAC or do not match the recorded hash."""


def generate_content(seed: str, size: int, embed: str | None = None) -> bytes:
    """Return the deterministic bytes of a scenario attachment.

    The same derivation as the harness's scenario loader: an AES-256-CTR keystream keyed by
    SHA-256 of the seed, with ``embed`` written at byte min(64, size - len(embed)).
    """
    key = hashlib.sha256(seed.encode("utf-8")).digest()
    data = bytearray(Cipher(algorithms.AES(key), modes.CTR(b"\x00" * 16)).encryptor().update(b"\x00" * size))
    if embed:
        encoded = embed.encode("utf-8")
        embed_at = min(64, size - len(encoded))
        start, end = max(embed_at, 0), min(embed_at + len(encoded), size)
        if start < end:
            data[start:end] = encoded[start - embed_at : end - embed_at]
    return bytes(data)


def padded_size(size: int) -> int:
    if size <= 0:
        return MIN_PADDED_SIZE
    return max(MIN_PADDED_SIZE, math.floor(PADDING_BASE ** math.ceil(math.log(size, PADDING_BASE))))


def encrypted_size(size: int) -> int:
    """Return the byte size of the encrypted transit object for ``size`` plaintext bytes."""
    padded = padded_size(size)
    return IV_LENGTH + (padded // 16 + 1) * 16 + MAC_LENGTH


def new_attachment_key() -> bytes:
    return secrets.token_bytes(ATTACHMENT_KEY_LENGTH)


def encrypt_attachment(plaintext: bytes, key: bytes, iv: bytes | None = None) -> bytes:
    """Encrypt attachment plaintext into the transit-tier format."""
    aes_key, hmac_key = key[:32], key[32:]
    body = plaintext + b"\x00" * (padded_size(len(plaintext)) - len(plaintext))
    padder = padding.PKCS7(128).padder()
    padded = padder.update(body) + padder.finalize()
    iv = iv or secrets.token_bytes(IV_LENGTH)
    encryptor = Cipher(algorithms.AES(aes_key), modes.CBC(iv)).encryptor()
    ciphertext = iv + encryptor.update(padded) + encryptor.finalize()
    return ciphertext + hmac.new(hmac_key, ciphertext, "sha256").digest()


def decrypt_layer(blob: bytes, aes_key: bytes, hmac_key: bytes) -> bytes:
    """Check the MAC of ``IV || CBC ciphertext || MAC`` and return the unpadded plaintext."""
    if len(blob) < IV_LENGTH + 16 + MAC_LENGTH:
        raise AttachmentIntegrityError(f"encrypted attachment is too short ({len(blob)} bytes)")
    body, mac = blob[:-MAC_LENGTH], blob[-MAC_LENGTH:]
    if not hmac.compare_digest(mac, hmac.new(hmac_key, body, "sha256").digest()):
        raise AttachmentIntegrityError("attachment MAC does not match")
    decryptor = Cipher(algorithms.AES(aes_key), modes.CBC(body[:IV_LENGTH])).decryptor()
    padded = decryptor.update(body[IV_LENGTH:]) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise AttachmentIntegrityError("attachment padding is invalid") from None


def decrypt_attachment(blob: bytes, key: bytes, size: int, plaintext_hash: bytes | None) -> bytes:
    """Decrypt a transit-tier attachment, cut the padding and check the plaintext hash."""
    plaintext = decrypt_layer(blob, key[:32], key[32:])[:size]
    if plaintext_hash and hashlib.sha256(plaintext).digest() != plaintext_hash:
        raise AttachmentIntegrityError("attachment plaintext does not match its SHA-256")
    return plaintext


@dataclass(frozen=True)
class TransitUpload:
    cdn_number: int
    cdn_key: str
    length: int


class TransitClient:
    """Uploads to the transit tier with the account's attachment upload form."""

    ROUTE = "GET /v4/attachments/form/upload"

    def __init__(self, base_url: str, account: AccountAuth, timeouts: Timeouts | None = None):
        self._base_url = base_url.rstrip("/")
        self._account = account
        self._timeouts = timeouts or Timeouts()
        self._session = new_session()
        self._cdn_session = new_session()
        self._tus = TusClient(self._base_url, timeouts=self._timeouts, session=self._cdn_session)

    def close(self) -> None:
        self._session.close()
        self._cdn_session.close()

    def upload(
        self,
        encrypted: bytes,
        *,
        extra_params: dict[str, str] | None = None,
        extra_headers: dict[str, str] | None = None,
    ) -> TransitUpload:
        """Upload one encrypted attachment; the extras exist for planted defects only."""
        response = send(
            self._session,
            "GET",
            f"{self._base_url}/v4/attachments/form/upload",
            self.ROUTE,
            expected=(200,),
            timeouts=self._timeouts,
            headers={**(extra_headers or {}), "Authorization": self._account.header()},
            params={"uploadLength": len(encrypted), **(extra_params or {})},
        )
        form = UploadForm.from_json(json_object(response, self.ROUTE), self.ROUTE)
        self._tus.upload(form, encrypted)
        return TransitUpload(cdn_number=form.cdn, cdn_key=form.key, length=len(encrypted))

    def download(self, cdn_key: str) -> bytes:
        route = "GET /attachments/{key}"
        response = send(self._cdn_session, "GET", f"{self._base_url}/attachments/{cdn_key}", route, expected=(200,), timeouts=self._timeouts)
        if not response.content:
            raise InvalidResponse(route, "empty body")
        return response.content


class AttachmentFiles:
    """Plaintext attachment files in the data directory (``attachments/<id>``)."""

    def __init__(self, directory: Path):
        self.directory = directory

    def path(self, name: str) -> Path:
        return self.directory / name

    def write(self, data: bytes) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = secrets.token_hex(12)
        self.path(name).write_bytes(data)
        return name

    def read(self, name: str) -> bytes:
        return self.path(name).read_bytes()

    def exists(self, name: str | None) -> bool:
        return bool(name) and self.path(name).is_file()

    def delete(self, name: str | None) -> None:
        if name:
            self.path(name).unlink(missing_ok=True)

    def names(self) -> Iterator[str]:
        if self.directory.is_dir():
            for path in self.directory.iterdir():
                yield path.name
