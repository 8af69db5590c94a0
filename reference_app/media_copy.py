"""The fields of a transit-to-media-tier copy (``PUT /v1/archives/media`` and ``/media/batch``).

Every value comes from the media root backup key (32 random bytes kept in the backup file):

* media name: lower-case hex of (plaintext SHA-256 ‖ attachment key); a thumbnail's media name
  is the attachment's plus ``"_thumbnail"``;
* mediaId: HKDF(media root key, "20241007_SIGNAL_BACKUP_MEDIA_ID:" ‖ media name), 15 bytes,
  sent as URL-safe base64 without padding;
* hmacKey ‖ encryptionKey: HKDF(media root key, "20241007_SIGNAL_BACKUP_ENCRYPT_MEDIA:" ‖
  mediaId), 32 + 32 bytes, sent as standard base64. Thumbnails use the same derivation with
  the thumbnail's mediaId.

The thumbnail *transit* key (info "20241030_SIGNAL_BACKUP_ENCRYPT_THUMBNAIL:") is a different
thing: Android encrypts the thumbnail with it before the transit upload
(ArchiveThumbnailUploadJob). ``thumbnail_transit_key`` returns it as ``harness.keys`` splits it,
and ``thumbnail_attachment_key`` returns the 64 bytes as Android uses them. The derivations are
``harness.keys`` (libsignal ``account-keys`` ``backup.rs``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from harness import keys
from reference_app.errors import CorruptMedia

THUMBNAIL_SUFFIX = "_thumbnail"
MEDIA_ID_LENGTH = 15
MAX_BATCH_ITEMS = 1000
IV_LENGTH = 16
MAC_LENGTH = 32


def media_name(plaintext_hash: bytes, attachment_key: bytes) -> str:
    """Return the media name of an attachment: lower-case hex of hash ‖ key."""
    return (plaintext_hash + attachment_key).hex()


def thumbnail_media_name(attachment_media_name: str) -> str:
    return attachment_media_name + THUMBNAIL_SUFFIX


def encode_media_id(media_id: bytes) -> str:
    """Encode a mediaId as the API sends it: URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(media_id).decode("ascii").rstrip("=")


def decode_media_id(text: str) -> bytes:
    """Decode a mediaId from the API (URL-safe base64, padding optional); ValueError if invalid."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ValueError(f"mediaId {text!r} is not URL-safe base64") from None


def thumbnail_transit_key(media_root_key: bytes, attachment_media_name: str) -> tuple[bytes, bytes]:
    """Return (hmac key, aes key) that encrypt a thumbnail for its transit-tier upload."""
    thumbnail_id = keys.derive_media_id(media_root_key, thumbnail_media_name(attachment_media_name))
    return keys.derive_thumbnail_transit_key(media_root_key, thumbnail_id)


def thumbnail_attachment_key(media_root_key: bytes, attachment_media_name: str) -> bytes:
    """Return the 64-byte attachment key that encrypts a thumbnail for its transit-tier upload.

    This is the whole HKDF output of ``thumbnail_transit_key`` in derivation order. Android
    hands those 64 bytes to its attachment cipher as an attachment key, which takes the first
    32 bytes as the AES key and the last 32 as the HMAC key (Signal-Android
    ``ArchiveThumbnailUploadJob`` and ``AttachmentCipherOutputStream``). So the part that
    ``harness.keys`` names ``hmac_key`` is the AES key in practice.
    """
    return b"".join(thumbnail_transit_key(media_root_key, attachment_media_name))


@dataclass(frozen=True)
class CopyMediaRequest:
    """One copy from a transit object to the media tier. The two keys are hidden from repr."""

    source_cdn: int
    source_key: str
    object_length: int
    media_id: bytes
    hmac_key: bytes = field(repr=False)
    encryption_key: bytes = field(repr=False)

    @classmethod
    def for_media_name(
        cls,
        media_root_key: bytes,
        name: str,
        *,
        source_cdn: int,
        source_key: str,
        object_length: int,
    ) -> CopyMediaRequest:
        """Derive mediaId and keys for ``name`` (use ``thumbnail_media_name`` for a thumbnail)."""
        media_id = keys.derive_media_id(media_root_key, name)
        hmac_key, encryption_key = keys.derive_media_encryption_key(media_root_key, media_id)
        return cls(
            source_cdn=source_cdn,
            source_key=source_key,
            object_length=object_length,
            media_id=media_id,
            hmac_key=hmac_key,
            encryption_key=encryption_key,
        )

    def to_json(self) -> dict[str, Any]:
        """Return the ``CopyMediaRequest`` JSON body."""
        return {
            "sourceAttachment": {"cdn": self.source_cdn, "key": self.source_key},
            "objectLength": self.object_length,
            "mediaId": encode_media_id(self.media_id),
            "hmacKey": base64.b64encode(self.hmac_key).decode("ascii"),
            "encryptionKey": base64.b64encode(self.encryption_key).decode("ascii"),
        }


@dataclass(frozen=True)
class CopyResult:
    """The outcome of one copy: 200 on success, else 400, 410 or 413 with the server's reason."""

    media_id: bytes
    status: int
    cdn: int | None
    failure_reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200


@dataclass(frozen=True)
class StoredMedia:
    """One object of the media tier as ``GET /v1/archives/media`` lists it."""

    cdn: int
    media_id: bytes
    object_length: int


@dataclass(frozen=True)
class MediaPage:
    """One page of the media listing; ``cursor`` None means the listing is complete."""

    objects: tuple[StoredMedia, ...]
    backup_dir: str
    media_dir: str
    cursor: str | None


def strip_media_tier_layer(stored: bytes, hmac_key: bytes, encryption_key: bytes) -> bytes:
    """Remove the server's layer from a media tier object and return the transit bytes.

    The layer is IV (16) ‖ AES-256-CBC with PKCS#7 ‖ HMAC-SHA256 over IV and ciphertext
    (32), keyed with the copy request's ``encryptionKey`` and ``hmacKey``. Upstream's exact
    MAC coverage is not public; this follows the stub server. A bad MAC or padding raises
    CorruptMedia.
    """
    if len(stored) < IV_LENGTH + 16 + MAC_LENGTH or (len(stored) - IV_LENGTH - MAC_LENGTH) % 16:
        raise CorruptMedia(f"media tier object of {len(stored)} bytes has an impossible length")
    body, mac = stored[:-MAC_LENGTH], stored[-MAC_LENGTH:]
    expected = hmac.new(hmac_key, body, hashlib.sha256).digest()
    if not hmac.compare_digest(mac, expected):
        raise CorruptMedia("media tier object failed its MAC check: it is corrupt or the keys are wrong")
    decryptor = Cipher(algorithms.AES(encryption_key), modes.CBC(body[:IV_LENGTH])).decryptor()
    padded = decryptor.update(body[IV_LENGTH:]) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise CorruptMedia("media tier object has invalid padding after decryption") from None
