"""Known answers for keys and the archive container, from fixtures/vectors (no Node needed)."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest

from harness import archive
from harness.archive_metadata import (
    ForwardSecrecySalts,
    build_metadata,
    decrypt_forward_secrecy_token,
    encrypt_forward_secrecy_token,
    parse_metadata,
)
from harness.keys import (
    MessageBackupKey,
    derive_backup_id,
    derive_backup_id_private_key,
    derive_backup_id_public_key,
    derive_backup_key,
    derive_forward_secrecy_password,
    derive_forward_secrecy_token_key,
    derive_local_metadata_key,
    derive_media_encryption_key,
    derive_media_id,
    derive_message_backup_key,
    derive_svr_child_key,
    derive_svr_key,
    derive_thumbnail_transit_key,
    parse_aci,
    validate_recovery_key,
)
from harness.errors import MacMismatchError, RecoveryKeyError
from shared_corpus import LIBSIGNAL_FILES

ROOT = Path(__file__).resolve().parent.parent
VECTORS = json.loads((ROOT / "fixtures" / "vectors" / "backup_format_vectors.json").read_text())
LIBSIGNAL_CORPUS = LIBSIGNAL_FILES
KEY_SETS = {entry["name"]: entry for entry in VECTORS["key_sets"]}


def message_key(key_set: dict, token_hex: str | None) -> MessageBackupKey:
    token = bytes.fromhex(token_hex) if token_hex else None
    return MessageBackupKey.from_recovery_key(key_set["recovery_key"], parse_aci(key_set["aci"]), token)


# --- 6.1 / 6.2: the key hierarchy ------------------------------------------------------------


@pytest.fixture(params=sorted(KEY_SETS), ids=lambda name: f"set{name}")
def key_set(request):
    return KEY_SETS[request.param]


def test_aci_bytes(key_set):
    assert parse_aci(key_set["aci"]).hex() == key_set["aci_bytes"]


def test_backup_key_and_id(key_set):
    backup_key = derive_backup_key(key_set["recovery_key"])
    assert backup_key.hex() == key_set["backup_key"]
    assert derive_backup_id(backup_key, parse_aci(key_set["aci"])).hex() == key_set["backup_id"]


def test_message_key_with_token(key_set):
    key = message_key(key_set, key_set["forward_secrecy_token"])
    assert key.hmac_key.hex() == key_set["message_key"]["hmac_key"]
    assert key.aes_key.hex() == key_set["message_key"]["aes_key"]
    assert key.has_forward_secrecy


def test_message_key_legacy(key_set):
    key = message_key(key_set, None)
    assert key.hmac_key.hex() == key_set["legacy_message_key"]["hmac_key"]
    assert key.aes_key.hex() == key_set["legacy_message_key"]["aes_key"]
    assert not key.has_forward_secrecy


def test_message_key_other_tokens():
    key_set = KEY_SETS["B"]
    for expected in key_set["other_token_message_keys"]:
        key = message_key(key_set, expected["forward_secrecy_token"])
        assert key.hmac_key.hex() == expected["hmac_key"]
        assert key.aes_key.hex() == expected["aes_key"]


def test_svr_key(key_set):
    assert derive_svr_key(key_set["recovery_key"]).hex() == key_set["svr_key"]


def test_backup_id_key_pair(key_set):
    backup_key = bytes.fromhex(key_set["backup_key"])
    aci = parse_aci(key_set["aci"])
    assert derive_backup_id_private_key(backup_key, aci).hex() == key_set["backup_id_private_key"]
    assert derive_backup_id_public_key(backup_key, aci).hex() == key_set["backup_id_public_key"]


def test_local_metadata_key(key_set):
    backup_key = bytes.fromhex(key_set["backup_key"])
    assert derive_local_metadata_key(backup_key).hex() == key_set["local_metadata_key"]


def test_media_keys_set_a():
    key_set = KEY_SETS["A"]
    media = key_set["media"]
    root = bytes.fromhex(key_set["backup_key"])
    media_id = derive_media_id(root, media["media_name"])
    assert media_id.hex() == media["media_id"]
    assert b"".join(derive_media_encryption_key(root, media_id)).hex() == media["media_encryption_key"]
    assert b"".join(derive_thumbnail_transit_key(root, media_id)).hex() == media["thumbnail_transit_key"]


def test_media_key_split_order():
    media = KEY_SETS["A"]["media"]
    root = bytes.fromhex(KEY_SETS["A"]["backup_key"])
    hmac_key, aes_key = derive_media_encryption_key(root, bytes.fromhex(media["media_id"]))
    assert hmac_key.hex() == media["media_encryption_key"][:64]
    assert aes_key.hex() == media["media_encryption_key"][64:]


def test_hmac_of_alphabet():
    vector = KEY_SETS["A"]["hmac_of_alphabet"]
    key = message_key(KEY_SETS["A"], KEY_SETS["A"]["forward_secrecy_token"])
    mac = hmac.new(key.hmac_key, vector["message"].encode("ascii"), "sha256").hexdigest()
    assert mac == vector["mac"]


def test_message_keys_from_parts():
    vector = VECTORS["message_keys_from_parts"]
    backup_key = bytes.fromhex(vector["backup_key"])
    backup_id = bytes.fromhex(vector["backup_id"])
    with_token = derive_message_backup_key(backup_key, backup_id, bytes.fromhex(vector["forward_secrecy_token"]))
    legacy = derive_message_backup_key(backup_key, backup_id)
    assert with_token.hmac_key.hex() == vector["with_token"]["hmac_key"]
    assert with_token.aes_key.hex() == vector["with_token"]["aes_key"]
    assert legacy.hmac_key.hex() == vector["legacy"]["hmac_key"]
    assert legacy.aes_key.hex() == vector["legacy"]["aes_key"]


# --- 6.3: SVR key children -------------------------------------------------------------------


@pytest.mark.parametrize("label", sorted(VECTORS["svr_key_labels"]["children"]))
def test_svr_key_label(label):
    vector = VECTORS["svr_key_labels"]
    child = derive_svr_child_key(bytes.fromhex(vector["svr_key"]), label)
    assert child.hex() == vector["children"][label]


# --- Section 1: recovery key validity -----------------------------------------------------------


@pytest.mark.parametrize("key", VECTORS["recovery_key_validity"]["valid"])
def test_recovery_key_valid(key):
    validate_recovery_key(key)


@pytest.mark.parametrize("key", VECTORS["recovery_key_validity"]["invalid"])
def test_recovery_key_invalid(key):
    with pytest.raises(RecoveryKeyError):
        validate_recovery_key(key)


# --- 6.7: forward-secrecy token in the header ----------------------------------------------------


def test_forward_secrecy_password():
    vector = VECTORS["forward_secrecy_metadata"]
    backup_key = bytes.fromhex(KEY_SETS[vector["key_set"]]["backup_key"])
    password = derive_forward_secrecy_password(backup_key, bytes.fromhex(vector["pw_salt"]))
    assert password.hex() == vector["forward_secrecy_password"]


def test_forward_secrecy_token_key():
    vector = VECTORS["forward_secrecy_metadata"]
    backup_key = bytes.fromhex(KEY_SETS[vector["key_set"]]["backup_key"])
    aes_key, hmac_key = derive_forward_secrecy_token_key(backup_key, bytes.fromhex(vector["enc_salt"]))
    assert aes_key.hex() == vector["token_aes_key"]
    assert hmac_key.hex() == vector["token_hmac_key"]


def test_forward_secrecy_token_encryption():
    vector = VECTORS["forward_secrecy_metadata"]
    backup_key = bytes.fromhex(KEY_SETS[vector["key_set"]]["backup_key"])
    ct = encrypt_forward_secrecy_token(
        backup_key, bytes.fromhex(vector["token"]), bytes.fromhex(vector["enc_salt"]), bytes.fromhex(vector["iv"])
    )
    assert ct.hex() == vector["ct"]


def test_forward_secrecy_token_round_trip():
    vector = VECTORS["forward_secrecy_metadata"]
    backup_key = bytes.fromhex(KEY_SETS[vector["key_set"]]["backup_key"])
    salts = [ForwardSecrecySalts(bytes.fromhex(vector["pw_salt"]), bytes.fromhex(vector["enc_salt"]))]
    metadata, _ = build_metadata(backup_key, bytes.fromhex(vector["token"]), salts, bytes.fromhex(vector["iv"]))
    parsed = parse_metadata(metadata.raw)
    assert parsed.pairs[0].ct.hex() == vector["ct"]
    assert parsed.pairs[0].pw_salt.hex() == vector["pw_salt"]
    token = decrypt_forward_secrecy_token(backup_key, parsed, bytes.fromhex(vector["enc_salt"]))
    assert token.hex() == vector["token"]


def test_forward_secrecy_token_wrong_salt():
    vector = VECTORS["forward_secrecy_metadata"]
    backup_key = bytes.fromhex(KEY_SETS[vector["key_set"]]["backup_key"])
    salts = [ForwardSecrecySalts(bytes.fromhex(vector["pw_salt"]), bytes.fromhex(vector["enc_salt"]))]
    metadata, _ = build_metadata(backup_key, bytes.fromhex(vector["token"]), salts, bytes.fromhex(vector["iv"]))
    with pytest.raises(MacMismatchError):
        decrypt_forward_secrecy_token(backup_key, metadata, b"\x34" * 32)


# --- 6.4: libsignal's encrypted test files -------------------------------------------------------

FILES = VECTORS["libsignal_encrypted_files"]


@pytest.mark.parametrize("entry", FILES["files"], ids=lambda entry: entry["name"])
def test_libsignal_file_decrypts(entry):
    path = LIBSIGNAL_CORPUS / entry["name"]
    data = path.read_bytes()
    assert len(data) == entry["size"]
    assert hashlib.sha256(data).hexdigest() == entry["sha256"]
    key = message_key(KEY_SETS[FILES["key_set"]], entry["forward_secrecy_token"])
    plaintext = archive.read_archive(path, key)
    assert plaintext.hex() == FILES["frame_stream"]
    assert hashlib.sha256(plaintext).hexdigest() == FILES["frame_stream_sha256"]


@pytest.mark.parametrize("entry", FILES["files"], ids=lambda entry: entry["name"])
def test_libsignal_file_header(entry):
    path = LIBSIGNAL_CORPUS / entry["name"]
    header = archive.read_header(path)
    data = path.read_bytes()
    assert header.layout == entry["layout"]
    assert data[header.iv_offset : header.iv_offset + 16].hex() == entry["iv"]
    assert data[-32:].hex() == entry["mac"]
    if entry["layout"] == "modern":
        assert header.metadata.raw.hex() == entry["metadata"]
        assert header.metadata.iv.hex() == entry["metadata_iv"]
    else:
        assert header.metadata is None


def test_libsignal_file_padding_counted():
    entry = next(entry for entry in FILES["files"] if entry["layout"] == "modern")
    key = message_key(KEY_SETS[FILES["key_set"]], entry["forward_secrecy_token"])
    with archive.open_archive(LIBSIGNAL_CORPUS / entry["name"], key) as chunks:
        b"".join(chunks)
    assert chunks.complete
    assert chunks.compressed_length == entry["gzip_length"]
    assert chunks.padding_length == entry["padding_length"]
    assert chunks.padding_is_zero
    assert chunks.pkcs7_valid


# --- 6.5: synthetic archives, byte for byte ------------------------------------------------------

SYNTHETIC = VECTORS["synthetic_archives"]


@pytest.mark.parametrize("entry", SYNTHETIC["archives"], ids=lambda entry: entry["layout"])
def test_synthetic_archive_bytes(entry, tmp_path):
    key = message_key(KEY_SETS[SYNTHETIC["key_set"]], entry["forward_secrecy_token"])
    metadata = bytes.fromhex(entry["metadata"]) if entry["metadata"] else None
    out = tmp_path / "archive.bin"
    result = archive.write_archive(
        [bytes.fromhex(SYNTHETIC["gzip_member"])],
        out,
        key,
        layout=entry["layout"],
        metadata=metadata,
        iv=bytes.fromhex(SYNTHETIC["iv"]),
        precompressed=True,
    )
    data = out.read_bytes()
    assert len(data) == entry["size"]
    assert hashlib.sha256(data).hexdigest() == entry["sha256"]
    assert result.mac.hex() == entry["mac"]
    assert result.padded_length == SYNTHETIC["padded_length"]


@pytest.mark.parametrize("entry", SYNTHETIC["archives"], ids=lambda entry: entry["layout"])
def test_synthetic_archive_decrypts(entry, tmp_path):
    key = message_key(KEY_SETS[SYNTHETIC["key_set"]], entry["forward_secrecy_token"])
    metadata = bytes.fromhex(entry["metadata"]) if entry["metadata"] else None
    out = tmp_path / "archive.bin"
    archive.write_archive(
        [bytes.fromhex(SYNTHETIC["gzip_member"])],
        out,
        key,
        layout=entry["layout"],
        metadata=metadata,
        iv=bytes.fromhex(SYNTHETIC["iv"]),
        precompressed=True,
    )
    assert archive.read_archive(out, key).hex() == SYNTHETIC["frame_stream"]


# --- Bucket padding ------------------------------------------------------------------------------


@pytest.mark.parametrize("length, padded", sorted((int(k), v) for k, v in VECTORS["bucket_padding"]["padded_length"].items()))
def test_bucket_padded_length(length, padded):
    assert archive.bucket_padded_length(length) == padded
