"""Copy request fields of the reference app's media tier client (no server needed)."""

from __future__ import annotations

import base64
import os

import pytest

from harness import keys
from reference_app.media_copy import (
    CopyMediaRequest,
    decode_media_id,
    encode_media_id,
    media_name,
    thumbnail_media_name,
    thumbnail_transit_key,
)


def test_media_name_is_hex_of_hash_and_key():
    assert media_name(b"\x01\xab", b"\xff") == "01abff"


def test_thumbnail_media_name_suffix():
    assert thumbnail_media_name("01abff") == "01abff_thumbnail"


def test_media_id_round_trip_without_padding():
    media_id = bytes(range(250, 256)) + bytes(9)

    encoded = encode_media_id(media_id)

    assert "=" not in encoded
    assert "+" not in encoded
    assert "/" not in encoded
    assert len(encoded) == 20
    assert decode_media_id(encoded) == media_id


def test_media_id_invalid_rejected():
    with pytest.raises(ValueError, match="not URL-safe base64"):
        decode_media_id("a")


def test_copy_request_json_fields():
    root = os.urandom(32)
    name = media_name(os.urandom(32), os.urandom(64))

    request = CopyMediaRequest.for_media_name(root, name, source_cdn=3, source_key="k" * 20, object_length=100)
    body = request.to_json()

    media_id = keys.derive_media_id(root, name)
    hmac_key, aes_key = keys.derive_media_encryption_key(root, media_id)
    assert body["sourceAttachment"] == {"cdn": 3, "key": "k" * 20}
    assert body["objectLength"] == 100
    assert body["mediaId"] == encode_media_id(media_id)
    assert base64.b64decode(body["hmacKey"]) == hmac_key
    assert base64.b64decode(body["encryptionKey"]) == aes_key


def test_copy_request_repr_hides_keys():
    request = CopyMediaRequest.for_media_name(os.urandom(32), "name", source_cdn=3, source_key="key", object_length=1)

    text = repr(request)

    assert request.hmac_key.hex() not in text
    assert str(request.hmac_key) not in text
    assert str(request.encryption_key) not in text


def test_thumbnail_transit_key_uses_thumbnail_id():
    root = os.urandom(32)
    thumbnail_id = keys.derive_media_id(root, "name_thumbnail")

    assert thumbnail_transit_key(root, "name") == keys.derive_thumbnail_transit_key(root, thumbnail_id)
    assert thumbnail_transit_key(root, "name") != keys.derive_media_encryption_key(root, thumbnail_id)
