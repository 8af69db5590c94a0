"""Attachment thumbnails: which attachments have one, their bytes, and their two layers.

A phone keeps a small preview next to each image or video attachment. The app's thumbnails
are not decodable images. Like the scenario's attachment bytes, a thumbnail is a 2048-byte
AES-256-CTR keystream keyed by SHA-256 of ``<seed>:thumbnail``, the same bytes as
``harness.scenario.thumbnail_bytes``. An attachment that arrived without a seed (restored
from an archive whose media tier has no thumbnail) gets one keyed by its plaintext SHA-256.

On the paid tier each thumbnail goes to the media tier under the media name
``<attachment media name>_thumbnail``. The app encrypts it like an attachment (zero padding
to the size bucket, AES-256-CBC, HMAC-SHA256) with the 64-byte thumbnail transit key and
uploads it to the transit tier. The copy then uses the normal media keys of the thumbnail's
mediaId, with which the server adds its outer layer.
"""

from __future__ import annotations

from harness import keys
from reference_app.media import decrypt_layer, encrypt_attachment, generate_content
from reference_app.media_copy import thumbnail_attachment_key, thumbnail_media_name

THUMBNAIL_SIZE = 2048
THUMBNAIL_CONTENT_TYPES = ("image/", "video/")


def has_thumbnail(content_type: str | None) -> bool:
    """Return whether an attachment of ``content_type`` gets a thumbnail (images and videos)."""
    return bool(content_type) and content_type.startswith(THUMBNAIL_CONTENT_TYPES)


def thumbnail_for_seed(seed: str) -> bytes:
    """Return the thumbnail of the attachment generated from ``seed``."""
    return generate_content(seed + ":thumbnail", THUMBNAIL_SIZE)


def thumbnail_for_plaintext(plaintext_hash: bytes) -> bytes:
    """Return the thumbnail the app makes for an attachment without a seed (a restored one)."""
    return generate_content("thumbnail:" + plaintext_hash.hex(), THUMBNAIL_SIZE)


def encrypt_thumbnail(thumbnail: bytes, media_root_key: bytes, attachment_media_name: str) -> bytes:
    """Encrypt a thumbnail for its transit-tier upload (the inner layer)."""
    return encrypt_attachment(thumbnail, thumbnail_attachment_key(media_root_key, attachment_media_name))


def decrypt_thumbnail_object(stored: bytes, media_root_key: bytes, attachment_media_name: str) -> bytes:
    """Remove both layers of a thumbnail's media tier object and return the padded thumbnail.

    The archive records no thumbnail length, so the zero padding of the size bucket stays on
    the result, as on Android. Raises AttachmentIntegrityError on a bad MAC or padding.
    """
    media_id = keys.derive_media_id(media_root_key, thumbnail_media_name(attachment_media_name))
    hmac_key, aes_key = keys.derive_media_encryption_key(media_root_key, media_id)
    transit_object = decrypt_layer(stored, aes_key, hmac_key)
    thumbnail_key = thumbnail_attachment_key(media_root_key, attachment_media_name)
    return decrypt_layer(transit_object, thumbnail_key[:32], thumbnail_key[32:])
