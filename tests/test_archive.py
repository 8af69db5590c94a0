"""Archive writer and reader: round trips, header building, atomic output, flat memory."""

from __future__ import annotations

import gc
import hashlib
import json
import os
import random
import tracemalloc
import zlib
from pathlib import Path

import pytest

from harness import archive
from harness.archive_metadata import (
    MODERN_MAGIC,
    ForwardSecrecySalts,
    decrypt_forward_secrecy_token,
    parse_metadata,
)
from harness.archive_reader import OUTPUT_CHUNK_SIZE
from harness.cli import main
from harness.errors import UsageError
from harness.keys import MessageBackupKey, parse_aci
from shared_corpus import CORPUS

RECOVERY_KEY = "m" * 64
ACI_TEXT = "11111111-1111-1111-1111-111111111111"
ACI = parse_aci(ACI_TEXT)
TOKEN = b"\xab" * 32
MODERN_KEY = MessageBackupKey.from_recovery_key(RECOVERY_KEY, ACI, TOKEN)
LEGACY_KEY = MessageBackupKey.from_recovery_key(RECOVERY_KEY, ACI)
CORPUS = CORPUS
CANONICAL = CORPUS / "libsignal" / "canonical-backup.binproto"

LAYOUTS = [("modern", MODERN_KEY), ("legacy", LEGACY_KEY)]


def frame_stream(size: int, seed: int = 1) -> bytes:
    """Return ``size`` bytes that compress about 3x, like real frames with varied text."""
    rng = random.Random(seed)
    words = [rng.randbytes(rng.randint(2, 9)).hex().encode() for _ in range(2000)]
    out = bytearray()
    while len(out) < size:
        out += rng.choice(words) + b" "
    return bytes(out[:size])


def leftover_files(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


# --- Round trips ---------------------------------------------------------------------------------


@pytest.mark.parametrize("layout, key", LAYOUTS)
def test_round_trip_small(layout, key, tmp_path):
    plaintext = CANONICAL.read_bytes()
    out = tmp_path / "backup.bin"
    result = archive.write_archive([plaintext], out, key, layout=layout)
    assert result.file_size == out.stat().st_size
    assert result.plaintext_length == len(plaintext)
    assert archive.read_archive(out, key) == plaintext


@pytest.mark.parametrize("layout, key", LAYOUTS)
def test_round_trip_many_chunks(layout, key, tmp_path):
    plaintext = frame_stream(3_000_000)
    pieces = [plaintext[i : i + 7919] for i in range(0, len(plaintext), 7919)]
    out = tmp_path / "backup.bin"
    archive.write_archive(pieces, out, key, layout=layout)
    with archive.open_archive(out, key) as chunks:
        sizes = []
        digest = hashlib.sha256()
        for chunk in chunks:
            sizes.append(len(chunk))
            digest.update(chunk)
    assert digest.digest() == hashlib.sha256(plaintext).digest()
    assert max(sizes) <= OUTPUT_CHUNK_SIZE
    assert chunks.complete


@pytest.mark.parametrize("layout, key", LAYOUTS)
def test_round_trip_empty_stream(layout, key, tmp_path):
    out = tmp_path / "backup.bin"
    archive.write_archive([], out, key, layout=layout)
    assert archive.read_archive(out, key) == b""


@pytest.mark.parametrize("padding", ["bucket", "none", 0, 70000])
def test_padding_options(padding, tmp_path):
    plaintext = frame_stream(20_000)
    out = tmp_path / "backup.bin"
    result = archive.write_archive([plaintext], out, MODERN_KEY, padding=padding)
    with archive.open_archive(out, MODERN_KEY) as chunks:
        assert b"".join(chunks) == plaintext
    expected = {
        "bucket": archive.bucket_padded_length(result.compressed_length),
        "none": result.compressed_length,
        0: result.compressed_length,
        70000: result.compressed_length + 70000,
    }[padding]
    assert result.padded_length == expected
    assert chunks.compressed_length == result.compressed_length
    assert chunks.padding_length == expected - result.compressed_length
    assert chunks.padding_is_zero


def test_block_aligned_gzip_gets_full_pad_block(tmp_path):
    # The empty gzip member (20 bytes) zero-padded to 32: PKCS#7 then adds a whole 0x10 block.
    member = zlib.compressobj(9, zlib.DEFLATED, 31)
    gzip_bytes = member.compress(b"") + member.flush()
    out = tmp_path / "backup.bin"
    padding = (-len(gzip_bytes)) % 16
    result = archive.write_archive([gzip_bytes], out, LEGACY_KEY, layout="legacy", padding=padding, precompressed=True)
    assert result.padded_length % 16 == 0
    assert out.stat().st_size == 16 + result.padded_length + 16 + 32
    assert archive.read_archive(out, LEGACY_KEY) == b""


# --- Header ---------------------------------------------------------------------------------------


def test_modern_header_from_key(tmp_path):
    out = tmp_path / "backup.bin"
    result = archive.write_archive([b"\x02\x08\x01"], out, MODERN_KEY)
    data = out.read_bytes()
    assert data.startswith(MODERN_MAGIC)
    header = archive.read_header(out)
    assert header.layout == "modern"
    assert header.metadata.raw == result.metadata.raw
    assert len(header.metadata.pairs) == 1
    assert len(result.forward_secrecy_salts) == 1
    salts = result.forward_secrecy_salts[0]
    assert header.metadata.pairs[0].pw_salt == salts.pw_salt
    token = decrypt_forward_secrecy_token(MODERN_KEY.backup_key, header.metadata, salts.enc_salt)
    assert token == TOKEN


def test_modern_header_two_pairs(tmp_path):
    salts = [ForwardSecrecySalts(b"\x01" * 32, b"\x02" * 32), ForwardSecrecySalts(b"\x03" * 32, b"\x04" * 32)]
    out = tmp_path / "backup.bin"
    archive.write_archive([b""], out, MODERN_KEY, forward_secrecy_salts=salts, metadata_iv=b"\x05" * 12)
    metadata = archive.read_header(out).metadata
    assert [pair.pw_salt for pair in metadata.pairs] == [b"\x01" * 32, b"\x03" * 32]
    assert metadata.iv == b"\x05" * 12
    for index, salt in enumerate(salts):
        assert decrypt_forward_secrecy_token(MODERN_KEY.backup_key, metadata, salt.enc_salt, index) == TOKEN


def test_modern_header_needs_token(tmp_path):
    with pytest.raises(ValueError, match="forward-secrecy token"):
        archive.ArchiveWriter(tmp_path / "backup.bin", LEGACY_KEY, layout="modern")
    assert leftover_files(tmp_path) == []


def test_prebuilt_metadata_written_verbatim(tmp_path):
    source = archive.read_header(CORPUS / "libsignal" / "new-account.binproto.encrypted").metadata.raw
    out = tmp_path / "backup.bin"
    archive.write_archive([b""], out, MODERN_KEY, metadata=source)
    assert out.read_bytes()[9 : 9 + len(source)] == source
    assert parse_metadata(source).iv == b"iv_12_bytes_"


def test_legacy_has_no_header(tmp_path):
    out = tmp_path / "backup.bin"
    archive.write_archive([b""], out, LEGACY_KEY, layout="legacy", iv=b"\x00" * 16)
    assert out.read_bytes()[:16] == b"\x00" * 16
    header = archive.read_header(out)
    assert header.layout == "legacy"
    assert header.iv_offset == 0


def test_random_iv_differs(tmp_path):
    first = archive.write_archive([b"x"], tmp_path / "a.bin", LEGACY_KEY, layout="legacy")
    second = archive.write_archive([b"x"], tmp_path / "b.bin", LEGACY_KEY, layout="legacy")
    assert (tmp_path / "a.bin").read_bytes()[:16] != (tmp_path / "b.bin").read_bytes()[:16]
    assert first.mac != second.mac


# --- Atomic output --------------------------------------------------------------------------------


def test_writer_error_leaves_nothing(tmp_path):
    out = tmp_path / "backup.bin"
    with pytest.raises(RuntimeError):
        with archive.ArchiveWriter(out, MODERN_KEY) as writer:
            writer.write(b"partial frames")
            raise RuntimeError("producer failed")
    assert leftover_files(tmp_path) == []


def test_writer_temp_file_until_close(tmp_path):
    out = tmp_path / "backup.bin"
    writer = archive.ArchiveWriter(out, MODERN_KEY)
    writer.write(b"frames")
    assert not out.exists()
    assert len(leftover_files(tmp_path)) == 1
    writer.close()
    assert leftover_files(tmp_path) == ["backup.bin"]


def test_writer_keeps_existing_file(tmp_path):
    out = tmp_path / "backup.bin"
    out.write_bytes(b"precious")
    with pytest.raises(UsageError, match="already exists"):
        archive.write_archive([b"frames"], out, MODERN_KEY, overwrite=False)
    assert out.read_bytes() == b"precious"
    assert leftover_files(tmp_path) == ["backup.bin"]


def test_writer_overwrites_by_default(tmp_path):
    out = tmp_path / "backup.bin"
    out.write_bytes(b"old")
    archive.write_archive([b"new frames"], out, MODERN_KEY)
    assert archive.read_archive(out, MODERN_KEY) == b"new frames"


def test_writer_missing_directory(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        archive.ArchiveWriter(tmp_path / "missing" / "backup.bin", MODERN_KEY)


# --- Memory stays flat ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def large_archive(tmp_path_factory):
    """A ~50 MB archive of incompressible data (random bytes stored, 64 chunks of 800 KB)."""
    out = tmp_path_factory.mktemp("large") / "large.bin"
    digest = hashlib.sha256()

    def chunks():
        for index in range(64):
            chunk = os.urandom(800_000)
            digest.update(chunk)
            yield chunk

    archive.write_archive(chunks(), out, MODERN_KEY, compress_level=1)
    return out, digest.digest()


def test_large_archive_memory_flat(large_archive):
    path, expected = large_archive
    assert path.stat().st_size > 50_000_000
    gc.collect()
    tracemalloc.start()
    try:
        digest = hashlib.sha256()
        with archive.open_archive(path, MODERN_KEY) as chunks:
            for chunk in chunks:
                digest.update(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert digest.digest() == expected
    assert peak < 20 * 2**20, f"peak {peak / 2**20:.1f} MiB"


def test_large_archive_stream_written_flat(tmp_path):
    # The writer must not hold the stream either: 30 MB through it, traced.
    gc.collect()
    tracemalloc.start()
    try:
        with archive.ArchiveWriter(tmp_path / "out.bin", MODERN_KEY, compress_level=1) as writer:
            for _ in range(30):
                writer.write(os.urandom(1_000_000))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20, f"peak {peak / 2**20:.1f} MiB"


# --- CLI: encrypt -----------------------------------------------------------------------------------


@pytest.fixture
def key_env(monkeypatch):
    monkeypatch.setenv("BACKUP_HARNESS_RECOVERY_KEY", RECOVERY_KEY)


def test_cli_encrypt_modern_prints_token(key_env, tmp_path, capsys):
    out = tmp_path / "backup.bin"
    assert main(["encrypt", str(CANONICAL), "--aci", ACI_TEXT, "-o", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["forward_secrecy_token_generated"] is True
    token = bytes.fromhex(result["forward_secrecy_token"])
    key = MessageBackupKey.from_recovery_key(RECOVERY_KEY, ACI, token)
    assert archive.read_archive(out, key) == CANONICAL.read_bytes()
    assert archive.read_header(out).layout == "modern"


def test_cli_encrypt_text_output(key_env, tmp_path, capsys):
    out = tmp_path / "backup.bin"
    assert main(["encrypt", str(CANONICAL), "--aci", ACI_TEXT, "-o", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"wrote {out}: modern archive")
    token_hex = lines[1].rsplit(" ", 1)[1]
    key = MessageBackupKey.from_recovery_key(RECOVERY_KEY, ACI, bytes.fromhex(token_hex))
    assert archive.read_archive(out, key) == CANONICAL.read_bytes()


def test_cli_encrypt_given_token(key_env, tmp_path, capsys):
    out = tmp_path / "backup.bin"
    argv = ["encrypt", str(CANONICAL), "--aci", ACI_TEXT, "--forward-secrecy-token", TOKEN.hex(), "-o", str(out)]
    assert main(argv) == 0
    assert "forward-secrecy token" not in capsys.readouterr().out
    assert archive.read_archive(out, MODERN_KEY) == CANONICAL.read_bytes()


def test_cli_encrypt_legacy(key_env, tmp_path):
    out = tmp_path / "backup.bin"
    assert main(["encrypt", str(CANONICAL), "--aci", ACI_TEXT, "--legacy", "-o", str(out)]) == 0
    assert archive.read_header(out).layout == "legacy"
    assert archive.read_archive(out, LEGACY_KEY) == CANONICAL.read_bytes()


def test_cli_encrypt_force(key_env, tmp_path, capsys):
    out = tmp_path / "backup.bin"
    out.write_bytes(b"old")
    assert main(["encrypt", str(CANONICAL), "--aci", ACI_TEXT, "--legacy", "-o", str(out)]) == 2
    assert "already exists; pass --force" in capsys.readouterr().err
    assert out.read_bytes() == b"old"
    assert main(["encrypt", str(CANONICAL), "--aci", ACI_TEXT, "--legacy", "-o", str(out), "--force"]) == 0
    assert archive.read_archive(out, LEGACY_KEY) == CANONICAL.read_bytes()


def test_cli_encrypt_corpus_file(key_env, tmp_path):
    source = CORPUS / "signal-message-backup-tests" / "chat_item_view_once_00.binproto"
    out = tmp_path / "backup.bin"
    argv = ["encrypt", str(source), "--aci", ACI_TEXT, "--forward-secrecy-token", TOKEN.hex(), "-o", str(out)]
    assert main(argv) == 0
    assert archive.read_archive(out, MODERN_KEY) == source.read_bytes()
