"""harness.keys and harness.archive against libsignal 0.103.0 (through the Node bridge)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import uuid
import zlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from harness import archive
from harness.errors import ArchiveError, MacMismatchError, RecoveryKeyError
from harness.keys import (
    SVR_KEY_LABELS,
    MessageBackupKey,
    derive_backup_id,
    derive_backup_id_private_key,
    derive_backup_id_public_key,
    derive_backup_key,
    derive_local_metadata_key,
    derive_media_encryption_key,
    derive_media_id,
    derive_message_backup_key,
    derive_svr_child_key,
    derive_svr_key,
    derive_thumbnail_transit_key,
    generate_recovery_key,
    parse_aci,
    validate_recovery_key,
)
from libsignal_bridge import Bridge, b64
from shared_corpus import LIBSIGNAL_FILES, SIGNAL_TEST_CASES

pytestmark = pytest.mark.oracle

LIBSIGNAL = LIBSIGNAL_FILES
FRAME_STREAM_SHA256 = "0d5d21b85e69e13811e4bd01df6bc022413d174e3216f975efbac6d925d79fd8"
RANDOM_CASES = 200


@pytest.fixture(scope="module")
def bridge():
    with Bridge() as running:
        yield running


def unb64(value: str) -> bytes:
    return base64.b64decode(value)


def random_media_name(rng: random.Random) -> str:
    alphabet = "abcdefghij0123456789_.-é日本 "
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))


def python_derivations(recovery_key: str, aci: uuid.UUID, token: bytes | None, media_name: str) -> dict:
    """The same names and layout as the derive_all op, computed by harness.keys."""
    aci_bytes = aci.bytes
    backup_key = derive_backup_key(recovery_key)
    backup_id = derive_backup_id(backup_key, aci_bytes)
    svr_key = derive_svr_key(recovery_key)
    media_id = derive_media_id(backup_key, media_name)
    legacy = derive_message_backup_key(backup_key, backup_id)
    message = derive_message_backup_key(backup_key, backup_id, token)
    derived = {
        "backup_key": backup_key,
        "svr_key": svr_key,
        "backup_id": backup_id,
        "backup_id_private_key": derive_backup_id_private_key(backup_key, aci_bytes),
        "backup_id_public_key": derive_backup_id_public_key(backup_key, aci_bytes),
        "local_metadata_key": derive_local_metadata_key(backup_key),
        "media_id": media_id,
        "media_encryption_key": b"".join(derive_media_encryption_key(backup_key, media_id)),
        "thumbnail_transit_key": b"".join(derive_thumbnail_transit_key(backup_key, media_id)),
        "legacy": {"hmac_key": legacy.hmac_key, "aes_key": legacy.aes_key},
        "message": {"hmac_key": message.hmac_key, "aes_key": message.aes_key},
        "message_from_parts": {"hmac_key": message.hmac_key, "aes_key": message.aes_key},
    }
    for label in SVR_KEY_LABELS:
        derived["svr_" + label.lower().replace(" ", "_")] = derive_svr_child_key(svr_key, label)
    return derived


def decode_oracle(result: dict) -> dict:
    return {
        name: {part: unb64(v) for part, v in value.items()} if isinstance(value, dict) else unb64(value)
        for name, value in result.items()
    }


def test_random_keys_match_libsignal(bridge):
    rng = random.Random(20250708)
    for case in range(RANDOM_CASES):
        recovery_key = generate_recovery_key()
        aci = uuid.UUID(bytes=rng.randbytes(16))
        token = rng.randbytes(32) if case % 2 else None
        media_name = random_media_name(rng)
        oracle = bridge.call(
            "derive_all",
            recovery_key=recovery_key,
            aci=str(aci),
            token=None if token is None else b64(token),
            media_name=media_name,
        )
        expected = decode_oracle(oracle)
        actual = python_derivations(recovery_key, aci, token, media_name)
        assert actual.keys() == expected.keys()
        for name in expected:
            assert actual[name] == expected[name], f"case {case}: {name} differs (token={token is not None})"


def test_media_root_key_derivations_match(bridge):
    rng = random.Random(7)
    for _ in range(50):
        media_root_key = rng.randbytes(32)
        aci = uuid.UUID(bytes=rng.randbytes(16))
        media_name = rng.randbytes(48).hex() + rng.choice(["", "_thumbnail"])
        oracle = decode_oracle(
            bridge.call("backup_key_derive", backup_key=b64(media_root_key), aci=str(aci), media_name=media_name)
        )
        media_id = derive_media_id(media_root_key, media_name)
        assert derive_backup_id(media_root_key, aci.bytes) == oracle["backup_id"]
        assert derive_backup_id_private_key(media_root_key, aci.bytes) == oracle["backup_id_private_key"]
        assert derive_backup_id_public_key(media_root_key, aci.bytes) == oracle["backup_id_public_key"]
        assert media_id == oracle["media_id"]
        assert b"".join(derive_media_encryption_key(media_root_key, media_id)) == oracle["media_encryption_key"]
        assert b"".join(derive_thumbnail_transit_key(media_root_key, media_id)) == oracle["thumbnail_transit_key"]


def test_svr_children_match(bridge):
    rng = random.Random(11)
    for _ in range(30):
        svr_key = rng.randbytes(32)
        oracle = decode_oracle(bridge.call("svr_key_derive", svr_key=b64(svr_key)))
        for label in SVR_KEY_LABELS:
            assert derive_svr_child_key(svr_key, label) == oracle[label.lower().replace(" ", "_")]


def test_message_key_from_parts_matches(bridge):
    rng = random.Random(13)
    for case in range(30):
        backup_key, backup_id = rng.randbytes(32), rng.randbytes(16)
        token = rng.randbytes(32) if case % 2 else None
        oracle = decode_oracle(
            bridge.call(
                "message_backup_key_derive",
                backup_key=b64(backup_key),
                backup_id=b64(backup_id),
                token=None if token is None else b64(token),
            )
        )
        key = derive_message_backup_key(backup_key, backup_id, token)
        assert key.hmac_key == oracle["hmac_key"]
        assert key.aes_key == oracle["aes_key"]


def validity_cases() -> list[str]:
    rng = random.Random(17)
    base = generate_recovery_key()
    cases = [
        base,
        base[:-1],
        base + "a",
        base.upper(),
        base[:10] + "-" + base[11:],
        base[:10] + "é" + base[12:],
        base[:10] + "é" + base[11:],
        base[:10] + " " + base[11:],
        "",
        "invalid key",
        "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqr",
    ]
    for _ in range(40):
        cases.append("".join(rng.choice("abcxyz019AZ-_ é") for _ in range(rng.choice([63, 64, 65]))))
    return cases


def test_validity_matches_libsignal(bridge):
    for key in validity_cases():
        oracle = bridge.call("aep_is_valid", recovery_key=key)["valid"]
        try:
            validate_recovery_key(key)
            ours = True
        except RecoveryKeyError:
            ours = False
        assert ours == oracle, f"validity of a {len(key)}-character entry differs"


def test_libsignal_generated_keys_valid(bridge):
    for _ in range(50):
        validate_recovery_key(bridge.call("aep_generate")["recovery_key"])


@pytest.mark.parametrize(
    "name, token",
    [("legacy-account.binproto.encrypted", None), ("new-account.binproto.encrypted", b"\xab" * 32)],
)
def test_corpus_files_decrypt_with_libsignal_keys(bridge, name, token):
    oracle = decode_oracle(
        bridge.call(
            "derive_all",
            recovery_key="m" * 64,
            aci="11111111-1111-1111-1111-111111111111",
            token=None if token is None else b64(token),
        )
    )
    key = MessageBackupKey(oracle["message"]["hmac_key"], oracle["message"]["aes_key"])
    assert key == MessageBackupKey.from_recovery_key("m" * 64, parse_aci("11111111-1111-1111-1111-111111111111"), token)
    plaintext = archive.read_archive(LIBSIGNAL / name, key)
    assert len(plaintext) == 117
    assert hashlib.sha256(plaintext).hexdigest() == FRAME_STREAM_SHA256


# --- Archives written here, read by libsignal ------------------------------------------------------

CORPUS_TESTS = SIGNAL_TEST_CASES
ACI_TEXT = "11111111-1111-1111-1111-111111111111"


def libsignal_verdict(bridge: Bridge, path: Path, token: bytes | None) -> dict:
    return bridge.call(
        "validate_archive",
        path=str(path),
        recovery_key="m" * 64,
        aci=ACI_TEXT,
        forward_secrecy_token=None if token is None else b64(token),
    )


@pytest.mark.parametrize("layout", ["modern", "legacy"])
@pytest.mark.parametrize("padding", ["bucket", "none", 100_000])
def test_written_archive_valid_in_libsignal(bridge, tmp_path, layout, padding):
    token = b"\xcd" * 32 if layout == "modern" else None
    key = MessageBackupKey.from_recovery_key("m" * 64, parse_aci(ACI_TEXT), token)
    out = tmp_path / "archive.bin"
    plaintext = (LIBSIGNAL / "canonical-backup.binproto").read_bytes()
    archive.write_archive([plaintext], out, key, layout=layout, padding=padding)
    verdict = libsignal_verdict(bridge, out, token)
    assert verdict["ok"], verdict["error"]
    assert verdict["unknown_fields"] == []


def test_corpus_sample_valid_in_libsignal(bridge, tmp_path):
    rng = random.Random(3)
    sources = rng.sample(sorted(CORPUS_TESTS.glob("*.binproto")), 12)
    token = b"\x42" * 32
    key = MessageBackupKey.from_recovery_key("m" * 64, parse_aci(ACI_TEXT), token)
    for source in sources:
        out = tmp_path / (source.stem + ".bin")
        archive.write_archive([source.read_bytes()], out, key)
        verdict = libsignal_verdict(bridge, out, token)
        assert verdict["ok"], f"{source.name}: {verdict['error']}"
        assert archive.read_archive(out, key) == source.read_bytes()


def test_wrong_key_rejected_by_both(bridge, tmp_path):
    out = tmp_path / "archive.bin"
    key = MessageBackupKey.from_recovery_key("m" * 64, parse_aci(ACI_TEXT), b"\x01" * 32)
    archive.write_archive([(LIBSIGNAL / "canonical-backup.binproto").read_bytes()], out, key)
    verdict = libsignal_verdict(bridge, out, b"\x02" * 32)
    assert not verdict["ok"]
    assert "HMAC doesn't match" in verdict["error"]
    with pytest.raises(MacMismatchError):
        archive.read_archive(out, MessageBackupKey.from_recovery_key("m" * 64, parse_aci(ACI_TEXT), b"\x02" * 32))


def legacy_archive_of(blocks: bytes) -> bytes:
    """IV, AES-CBC of ``blocks`` (whole blocks, padding included) and a valid MAC, legacy keys."""
    key = MessageBackupKey.from_recovery_key("m" * 64, parse_aci(ACI_TEXT))
    iv = b"\x07" * 16
    encryptor = Cipher(algorithms.AES(key.aes_key), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(blocks) + encryptor.finalize()
    return iv + ciphertext + hmac.new(key.hmac_key, iv + ciphertext, "sha256").digest()


def crafted_blocks(case: str) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    member = compressor.compress((LIBSIGNAL / "canonical-backup.binproto").read_bytes()) + compressor.flush()
    align = -len(member) % 16
    if case == "bad-pad-after-zeros":
        return member + bytes(align + 32)
    if case == "bad-pad-in-member-block":
        blocks = member + bytes(align or 16)
        return blocks[:-1] + b"\x11"
    if case == "garbage-after-member":
        return member + b"\x55" * (align + 32) + b"\x10" * 16
    if case == "truncated-member":
        cut = member[:-20]
        pad = 16 - len(cut) % 16
        return cut + bytes([pad]) * pad
    if case == "not-gzip":
        return b"\x10" * 16 * 4
    raise ValueError(case)


@pytest.mark.parametrize(
    "case, accepted",
    [
        ("bad-pad-after-zeros", True),
        ("bad-pad-in-member-block", False),
        ("garbage-after-member", True),
        ("truncated-member", False),
        ("not-gzip", False),
    ],
)
def test_content_verdicts_agree(bridge, tmp_path, case, accepted):
    path = tmp_path / "archive.bin"
    path.write_bytes(legacy_archive_of(crafted_blocks(case)))
    verdict = libsignal_verdict(bridge, path, None)
    assert verdict["ok"] == accepted, verdict["error"]
    key = MessageBackupKey.from_recovery_key("m" * 64, parse_aci(ACI_TEXT))
    try:
        archive.read_archive(path, key)
        ours = True
    except ArchiveError:
        ours = False
    assert ours == accepted
