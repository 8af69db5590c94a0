"""The reference app's thumbnails: their bytes, their two encryption layers and the store columns."""

from __future__ import annotations

import hmac
import sqlite3

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from harness import keys
from harness.scenario import thumbnail_bytes
from reference_app.media import AttachmentIntegrityError, encrypt_attachment, padded_size
from reference_app.media_copy import media_name, thumbnail_attachment_key, thumbnail_media_name
from reference_app.store import MessageStore
from reference_app.thumbnails import (
    THUMBNAIL_SIZE,
    decrypt_thumbnail_object,
    encrypt_thumbnail,
    has_thumbnail,
    thumbnail_for_plaintext,
    thumbnail_for_seed,
)

ROOT = bytes(range(32))
NAME = media_name(b"\x11" * 32, b"\x22" * 64)


def server_layer(transit_object: bytes, media_id: bytes) -> bytes:
    """Add the media tier's outer layer as the stub's copy does: IV, AES-256-CBC, HMAC-SHA256."""
    hmac_key, aes_key = keys.derive_media_encryption_key(ROOT, media_id)
    iv = b"\x07" * 16
    padder = padding.PKCS7(128).padder()
    padded = padder.update(transit_object) + padder.finalize()
    encryptor = Cipher(algorithms.AES(aes_key), modes.CBC(iv)).encryptor()
    body = iv + encryptor.update(padded) + encryptor.finalize()
    return body + hmac.new(hmac_key, body, "sha256").digest()


def test_seed_thumbnail_matches_scenario():
    attachment = {"seed": "scenario:m1:0", "thumbnail": True, "size": 10, "embed": None}
    assert thumbnail_for_seed("scenario:m1:0") == thumbnail_bytes(attachment)
    assert len(thumbnail_for_seed("x")) == THUMBNAIL_SIZE


def test_plaintext_thumbnail_is_deterministic():
    assert thumbnail_for_plaintext(b"\x01" * 32) == thumbnail_for_plaintext(b"\x01" * 32)
    assert thumbnail_for_plaintext(b"\x01" * 32) != thumbnail_for_plaintext(b"\x02" * 32)


@pytest.mark.parametrize(
    "content_type, expected",
    [("image/jpeg", True), ("video/mp4", True), ("application/pdf", False), ("audio/aac", False), (None, False), ("", False)],
)
def test_has_thumbnail_by_type(content_type, expected):
    assert has_thumbnail(content_type) is expected


def test_thumbnail_key_is_transit_key_bytes():
    thumbnail_id = keys.derive_media_id(ROOT, thumbnail_media_name(NAME))
    first, second = keys.derive_thumbnail_transit_key(ROOT, thumbnail_id)
    assert thumbnail_attachment_key(ROOT, NAME) == first + second


def test_thumbnail_layers_round_trip():
    thumbnail = thumbnail_for_seed("photo")
    transit_object = encrypt_thumbnail(thumbnail, ROOT, NAME)
    stored = server_layer(transit_object, keys.derive_media_id(ROOT, thumbnail_media_name(NAME)))
    padded = decrypt_thumbnail_object(stored, ROOT, NAME)
    assert padded[:THUMBNAIL_SIZE] == thumbnail
    assert len(padded) == padded_size(THUMBNAIL_SIZE)
    assert padded[THUMBNAIL_SIZE:] == b"\x00" * (len(padded) - THUMBNAIL_SIZE)


def test_thumbnail_inner_layer_is_not_media_key():
    """The inner layer uses the thumbnail transit key, not the attachment's media keys."""
    thumbnail_id = keys.derive_media_id(ROOT, thumbnail_media_name(NAME))
    hmac_key, aes_key = keys.derive_media_encryption_key(ROOT, thumbnail_id)
    wrong_inner = encrypt_attachment(thumbnail_for_seed("photo"), aes_key + hmac_key)
    stored = server_layer(wrong_inner, thumbnail_id)
    with pytest.raises(AttachmentIntegrityError, match="MAC"):
        decrypt_thumbnail_object(stored, ROOT, NAME)


def test_thumbnail_under_attachment_id_rejected():
    """An outer layer made with the attachment's mediaId instead of the thumbnail's fails."""
    transit_object = encrypt_thumbnail(thumbnail_for_seed("photo"), ROOT, NAME)
    stored = server_layer(transit_object, keys.derive_media_id(ROOT, NAME))
    with pytest.raises(AttachmentIntegrityError, match="MAC"):
        decrypt_thumbnail_object(stored, ROOT, NAME)


def test_old_store_gains_thumbnail_columns(tmp_path):
    path = tmp_path / MessageStore.FILE_NAME
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE attachments (id INTEGER PRIMARY KEY, chat_item_id INTEGER NOT NULL, position INTEGER NOT NULL, role TEXT NOT NULL)")
        db.execute("INSERT INTO attachments (chat_item_id, position, role) VALUES (1, 0, 'attachment')")
    store = MessageStore(path)
    columns = {row["name"] for row in store.query("PRAGMA table_info(attachments)")}
    row = store.query_one("SELECT * FROM attachments")
    version = store.get_meta("schema_version")
    store.close()
    assert {"thumbnail_file", "thumbnail_media_tier_cdn_number"} <= columns
    assert row["thumbnail_file"] is None
    assert version == 2
