"""Archives that must be rejected: wrong keys, flipped bits, truncation, non-archives, gzip bombs.

Every case checks the error class of harness.errors; the CLI cases check one line on stderr,
exit status 2 and no traceback. Archives here are built with the project's writer, or by hand
(AES-CBC and HMAC directly) when the content must be broken under a valid MAC.
"""

from __future__ import annotations

import hmac
import os
import zlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from harness import archive
from harness.archive_metadata import MODERN_MAGIC, BackupMetadata, MetadataPair, encode_varint
from harness.cli import main
from harness.errors import (
    ArchiveError,
    ArchiveTooLargeError,
    MacMismatchError,
    NotABackupError,
    TruncatedArchiveError,
    UnsupportedVersionError,
)
from harness.keys import MessageBackupKey, parse_aci
from shared_corpus import LIBSIGNAL_FILES

RECOVERY_KEY = "m" * 64
ACI_TEXT = "11111111-1111-1111-1111-111111111111"
ACI = parse_aci(ACI_TEXT)
TOKEN = b"\xab" * 32
MODERN_KEY = MessageBackupKey.from_recovery_key(RECOVERY_KEY, ACI, TOKEN)
LEGACY_KEY = MessageBackupKey.from_recovery_key(RECOVERY_KEY, ACI)
LIBSIGNAL = LIBSIGNAL_FILES
MODERN_FILE = LIBSIGNAL / "new-account.binproto.encrypted"
LEGACY_FILE = LIBSIGNAL / "legacy-account.binproto.encrypted"
PLAIN_FILE = LIBSIGNAL / "canonical-backup.binproto"
MAC_MISMATCH_TEXT = (
    "MAC mismatch: wrong recovery key, ACI or forward-secrecy token, or the archive was modified"
)
# Region boundaries of the libsignal modern file: magic 0-7, varint 8, metadata 9-108,
# IV 109-124, ciphertext 125-668, MAC 669-700.
MODERN_REGIONS = {"magic": 0, "varint": 8, "metadata": 9, "iv": 109, "ciphertext": 125, "mac": 669, "end": 701}
LEGACY_REGIONS = {"iv": 0, "ciphertext": 16, "mac": 560, "end": 592}


def read_all(path: Path, key: MessageBackupKey, **options) -> bytes:
    return archive.read_archive(path, key, **options)


def write_file(tmp_path: Path, data: bytes, name: str = "archive.bin") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def raw_archive(key: MessageBackupKey, blocks: bytes, header: bytes = b"", iv: bytes = b"\x07" * 16) -> bytes:
    """Encrypt ``blocks`` (a multiple of 16, padding included) and append a valid MAC."""
    assert len(blocks) % 16 == 0
    encryptor = Cipher(algorithms.AES(key.aes_key), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(blocks) + encryptor.finalize()
    mac = hmac.new(key.hmac_key, iv + ciphertext, "sha256").digest()
    return header + iv + ciphertext + mac


def pkcs7(data: bytes) -> bytes:
    pad = 16 - len(data) % 16
    return data + bytes([pad]) * pad


def gzip_member(data: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    return compressor.compress(data) + compressor.flush()


def gzip_of_zeros(mebibytes: int) -> bytes:
    """A gzip member of ``mebibytes`` MiB of zeros, built from one repeated DEFLATE block (fast)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(bytes(1 << 20)) + compressor.flush(zlib.Z_FULL_FLUSH)
    final = compressor.flush()
    crc = 0
    zero_mebibyte = bytes(1 << 20)
    for _ in range(mebibytes):
        crc = zlib.crc32(zero_mebibyte, crc)
    size = (mebibytes << 20) & 0xFFFFFFFF
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03"
    return header + block * mebibytes + final + crc.to_bytes(4, "little") + size.to_bytes(4, "little")


def cli_check(path: Path, *extra: str) -> list[str]:
    return ["check", str(path), "--recovery-key", RECOVERY_KEY, "--aci", ACI_TEXT, *extra]


def assert_one_line_error(capsys, expected: str) -> None:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert expected in lines[0]
    assert "Traceback" not in captured.err
    assert RECOVERY_KEY not in captured.err


# --- Wrong keys --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, key",
    [
        (MODERN_FILE, LEGACY_KEY),
        (MODERN_FILE, MessageBackupKey.from_recovery_key(RECOVERY_KEY, ACI, b"\xac" * 32)),
        (MODERN_FILE, MessageBackupKey.from_recovery_key(RECOVERY_KEY, parse_aci("22222222-2222-2222-2222-222222222222"), TOKEN)),
        (MODERN_FILE, MessageBackupKey.from_recovery_key("n" * 64, ACI, TOKEN)),
        (LEGACY_FILE, MODERN_KEY),
    ],
    ids=["legacy-key-on-modern", "wrong-token", "wrong-aci", "wrong-recovery-key", "token-key-on-legacy"],
)
def test_wrong_key_mac_mismatch(path, key):
    with pytest.raises(MacMismatchError) as caught:
        read_all(path, key)
    if path == MODERN_FILE and not key.has_forward_secrecy:
        # A modern archive opened without a token: the message names the missing token.
        assert str(caught.value).startswith(f"{path}: MAC mismatch: the archive has a forward-secrecy header")
        assert "--forward-secrecy-token" in str(caught.value)
    else:
        assert str(caught.value) == f"{path}: {MAC_MISMATCH_TEXT}"


def test_wrong_key_yields_nothing():
    entered = False
    with pytest.raises(MacMismatchError):
        with archive.open_archive(MODERN_FILE, LEGACY_KEY):
            entered = True
    assert not entered


def test_cli_wrong_key(capsys):
    assert main(cli_check(LEGACY_FILE, "--recovery-key", "n" * 64)) == 2
    assert_one_line_error(capsys, MAC_MISMATCH_TEXT)


def test_cli_modern_without_token_named(capsys):
    assert main(cli_check(MODERN_FILE)) == 2
    assert_one_line_error(capsys, "pass --forward-secrecy-token HEX")


# --- One flipped bit per region ----------------------------------------------------------------------


def flip(data: bytes, offset: int, bit: int = 0) -> bytes:
    changed = bytearray(data)
    changed[offset] ^= 1 << bit
    return bytes(changed)


@pytest.mark.parametrize(
    "region, offset, bit, error",
    [
        # Without the magic the file reads as legacy, whose 653-byte body is not whole blocks.
        ("magic-first-byte", 0, 0, TruncatedArchiveError),
        ("magic-version-byte", 7, 1, UnsupportedVersionError),
        ("metadata-length-high-bit", 8, 7, TruncatedArchiveError),
        ("metadata-length-shorter", 8, 6, NotABackupError),
        ("metadata-pair-tag", 9, 0, NotABackupError),
        ("metadata-iv-length", 96, 0, NotABackupError),
        ("iv", 110, 0, MacMismatchError),
        ("ciphertext-first", 125, 0, MacMismatchError),
        ("ciphertext-middle", 400, 3, MacMismatchError),
        ("ciphertext-last", 668, 7, MacMismatchError),
        ("mac-first", 669, 0, MacMismatchError),
        ("mac-last", 700, 7, MacMismatchError),
    ],
)
def test_flipped_bit_modern(region, offset, bit, error, tmp_path):
    path = write_file(tmp_path, flip(MODERN_FILE.read_bytes(), offset, bit))
    with pytest.raises(error):
        read_all(path, MODERN_KEY)


def test_flipped_bit_metadata_length_grows(tmp_path):
    # 0x64 -> 0x65: one more metadata byte, so the pair and iv fields are misread.
    data = MODERN_FILE.read_bytes()
    path = write_file(tmp_path, data[:8] + b"\x65" + data[9:])
    with pytest.raises(NotABackupError, match="invalid archive header"):
        read_all(path, MODERN_KEY)


def test_flipped_bit_in_encrypted_token_ignored(tmp_path):
    # The MAC does not cover the header, and libsignal checks only its shape, so a changed
    # ct byte still reads. A restorer notices when it decrypts the token.
    data = flip(MODERN_FILE.read_bytes(), 20)
    path = write_file(tmp_path, data)
    assert read_all(path, MODERN_KEY) == read_all(MODERN_FILE, MODERN_KEY)


@pytest.mark.parametrize("offset", [0, 15, 16, 300, 559, 560, 591])
def test_flipped_bit_legacy(offset, tmp_path):
    path = write_file(tmp_path, flip(LEGACY_FILE.read_bytes(), offset, bit=5))
    with pytest.raises(MacMismatchError):
        read_all(path, LEGACY_KEY)


@pytest.mark.parametrize("offset", [110, 400, 690])
def test_cli_flipped_bit(offset, tmp_path, capsys):
    path = write_file(tmp_path, flip(MODERN_FILE.read_bytes(), offset))
    assert main(cli_check(path, "--forward-secrecy-token", TOKEN.hex())) == 2
    assert_one_line_error(capsys, MAC_MISMATCH_TEXT)


# --- Truncation ---------------------------------------------------------------------------------


def truncation_cases(regions: dict[str, int]) -> list[int]:
    boundaries = sorted(set(regions.values()) - {regions["end"]})
    middles = [(start + end) // 2 for start, end in zip(boundaries, boundaries[1:] + [regions["end"]])]
    return sorted(set(boundaries + middles + [regions["end"] - 1, 1]))


def expected_truncation_error(length: int, regions: dict[str, int], modern: bool) -> type[ArchiveError]:
    if length == 0:
        return NotABackupError
    body = length - regions["ciphertext"] - 32
    if modern and length < regions["ciphertext"] + 16 + 32:
        return TruncatedArchiveError
    if not modern and length < 64:
        return TruncatedArchiveError
    # A cut on a 16-byte boundary leaves a well-formed shorter file, so only the MAC detects it.
    return MacMismatchError if body % 16 == 0 else TruncatedArchiveError


@pytest.mark.parametrize("length", truncation_cases(MODERN_REGIONS))
def test_truncated_modern(length, tmp_path):
    path = write_file(tmp_path, MODERN_FILE.read_bytes()[:length])
    with pytest.raises(expected_truncation_error(length, MODERN_REGIONS, modern=True)):
        read_all(path, MODERN_KEY)


@pytest.mark.parametrize("length", truncation_cases(LEGACY_REGIONS))
def test_truncated_legacy(length, tmp_path):
    path = write_file(tmp_path, LEGACY_FILE.read_bytes()[:length])
    with pytest.raises(expected_truncation_error(length, LEGACY_REGIONS, modern=False)):
        read_all(path, LEGACY_KEY)


def test_truncated_mac_names_block_count(tmp_path):
    path = write_file(tmp_path, MODERN_FILE.read_bytes()[:690])
    with pytest.raises(TruncatedArchiveError, match="not a whole number of 16-byte AES blocks"):
        read_all(path, MODERN_KEY)


@pytest.mark.parametrize("length", [4, 60, 300, 690])
def test_cli_truncated(length, tmp_path, capsys):
    path = write_file(tmp_path, MODERN_FILE.read_bytes()[:length])
    assert main(cli_check(path, "--forward-secrecy-token", TOKEN.hex())) == 2
    assert_one_line_error(capsys, "truncated archive")


def test_extra_bytes_appended(tmp_path):
    path = write_file(tmp_path, MODERN_FILE.read_bytes() + b"\x00")
    with pytest.raises(TruncatedArchiveError, match="extra bytes"):
        read_all(path, MODERN_KEY)


# --- Not an archive -------------------------------------------------------------------------------


def test_empty_file(tmp_path):
    path = write_file(tmp_path, b"")
    with pytest.raises(NotABackupError, match="the file is empty"):
        read_all(path, MODERN_KEY)


def test_plain_frame_stream_given_key(tmp_path):
    with pytest.raises(NotABackupError, match="plain frame stream"):
        read_all(PLAIN_FILE, MODERN_KEY)


@pytest.mark.parametrize(
    "content, kind",
    [
        (gzip_member(b"hello" * 100), "a gzip file"),
        (b"%PDF-1.7\n" + os.urandom(500), "a PDF file"),
        (b"recovery key notes\n" * 20, "a text file"),
        (b"SQLite format 3\x00" + os.urandom(500), "an SQLite database"),
    ],
    ids=["gzip", "pdf", "text", "sqlite"],
)
def test_other_file_kinds(content, kind, tmp_path):
    path = write_file(tmp_path, content)
    with pytest.raises(NotABackupError, match=kind):
        read_all(path, MODERN_KEY)


@pytest.mark.parametrize("size", [5, 40, 63])
def test_short_random_file(size, tmp_path):
    # Random bytes cannot be told apart from a legacy archive, so the error is a truncation.
    path = write_file(tmp_path, b"\x9f" + os.urandom(size - 1))
    with pytest.raises(TruncatedArchiveError, match="not an archive"):
        read_all(path, MODERN_KEY)


@pytest.mark.parametrize("size", [1000, 4096])
def test_random_bytes(size, tmp_path):
    # Random bytes look like a legacy archive under another key: MAC mismatch when the length
    # is whole AES blocks (4096 = 16 + 4048 + 32), else a truncation/not-an-archive error.
    path = write_file(tmp_path, b"\x9f" + os.urandom(size - 1))
    expected = MacMismatchError if (size - 48) % 16 == 0 else TruncatedArchiveError
    with pytest.raises(expected):
        read_all(path, MODERN_KEY)


def test_missing_file(tmp_path):
    with pytest.raises(NotABackupError, match="file not found"):
        read_all(tmp_path / "nope.bin", MODERN_KEY)


def test_directory_given(tmp_path):
    with pytest.raises(NotABackupError, match="is a directory"):
        read_all(tmp_path, MODERN_KEY)


def test_cli_empty_file(tmp_path, capsys):
    path = write_file(tmp_path, b"")
    assert main(cli_check(path)) == 2
    assert_one_line_error(capsys, "empty")


def test_cli_plain_frame_stream_with_key(capsys):
    assert main(cli_check(PLAIN_FILE)) == 2
    assert_one_line_error(capsys, "plain frame stream")


def test_cli_random_bytes(tmp_path, capsys):
    path = write_file(tmp_path, b"\x9f" + os.urandom(999))
    assert main(cli_check(path)) == 2
    assert_one_line_error(capsys, "not a whole number of 16-byte AES blocks")


# --- Header shape ------------------------------------------------------------------------------------


def modern_file_with_metadata(metadata: bytes) -> bytes:
    body = MODERN_FILE.read_bytes()[109:]
    return MODERN_MAGIC + encode_varint(len(metadata)) + metadata + body


GOOD_PAIR = MetadataPair(b"\xcc" * 48, b"\x50" * 32)


@pytest.mark.parametrize(
    "pairs, iv, error, message",
    [
        ((), b"i" * 12, NotABackupError, "missing field 'pair' in unencrypted metadata"),
        ((GOOD_PAIR,) * 3, b"i" * 12, UnsupportedVersionError, "unencrypted metadata contains 3 forward secrecy pairs"),
        ((MetadataPair(b"\xcc" * 47, b"\x50" * 32),), b"i" * 12, NotABackupError, "field 'pair.ct' was 47 bytes long (expected 48)"),
        ((MetadataPair(b"", b"\x50" * 32),), b"i" * 12, NotABackupError, "missing field 'pair.ct'"),
        ((MetadataPair(b"\xcc" * 48, b"\x50" * 31),), b"i" * 12, NotABackupError, "field 'pair.pw_salt' was 31 bytes long (expected 32)"),
        ((MetadataPair(b"\xcc" * 48, b""),), b"i" * 12, NotABackupError, "missing field 'pair.pw_salt'"),
        ((GOOD_PAIR,), b"i" * 11, NotABackupError, "field 'iv' was 11 bytes long (expected 12)"),
        ((GOOD_PAIR,), b"", NotABackupError, "field 'iv' was 0 bytes long (expected 12)"),
    ],
)
def test_metadata_shape(pairs, iv, error, message, tmp_path):
    metadata = BackupMetadata(pairs=pairs, iv=iv).encode()
    path = write_file(tmp_path, modern_file_with_metadata(metadata))
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        archive.read_header(path)


def test_metadata_two_pairs_accepted(tmp_path):
    metadata = BackupMetadata(pairs=(GOOD_PAIR, GOOD_PAIR), iv=b"i" * 12).encode()
    path = write_file(tmp_path, modern_file_with_metadata(metadata))
    assert len(archive.read_header(path).metadata.pairs) == 2
    assert read_all(path, MODERN_KEY) == read_all(MODERN_FILE, MODERN_KEY)


def test_metadata_unknown_field_kept(tmp_path):
    metadata = BackupMetadata(pairs=(GOOD_PAIR,), iv=b"i" * 12).encode() + b"\x18\x01"
    path = write_file(tmp_path, modern_file_with_metadata(metadata))
    assert archive.read_header(path).metadata.unknown_field_numbers == (3,)


def test_metadata_not_protobuf(tmp_path):
    path = write_file(tmp_path, modern_file_with_metadata(b"\x0a\xff\xff\xff\xff\x0f"))
    with pytest.raises(NotABackupError, match="invalid protobuf"):
        archive.read_header(path)


def test_metadata_length_too_large(tmp_path):
    path = write_file(tmp_path, MODERN_MAGIC + encode_varint(1 << 33) + os.urandom(100))
    with pytest.raises(NotABackupError, match="does not fit 32 bits"):
        archive.read_header(path)


def test_cli_metadata_shape(tmp_path, capsys):
    metadata = BackupMetadata(pairs=(GOOD_PAIR,), iv=b"i" * 11).encode()
    path = write_file(tmp_path, modern_file_with_metadata(metadata))
    assert main(cli_check(path)) == 2
    assert_one_line_error(capsys, "unencrypted metadata field 'iv' was 11 bytes long (expected 12)")


# --- Valid MAC, broken content -------------------------------------------------------------------------


def test_not_gzip_under_valid_mac(tmp_path):
    path = write_file(tmp_path, raw_archive(LEGACY_KEY, pkcs7(b"plain frames, not gzip")))
    with pytest.raises(NotABackupError, match="not a valid gzip stream"):
        read_all(path, LEGACY_KEY)


def test_truncated_gzip_under_valid_mac(tmp_path):
    member = gzip_member(b"frames " * 200)
    path = write_file(tmp_path, raw_archive(LEGACY_KEY, pkcs7(member[:-12])))
    with pytest.raises(TruncatedArchiveError, match="gzip member is truncated"):
        read_all(path, LEGACY_KEY)


def test_gzip_crc_error_under_valid_mac(tmp_path):
    member = bytearray(gzip_member(b"frames " * 200))
    member[-6] ^= 0xFF  # inside the CRC32 of the trailer
    path = write_file(tmp_path, raw_archive(LEGACY_KEY, pkcs7(bytes(member))))
    with pytest.raises(NotABackupError, match="not a valid gzip stream"):
        read_all(path, LEGACY_KEY)


def test_trailing_garbage_after_member_accepted(tmp_path):
    # libsignal reads the first gzip member only and ignores what follows it.
    data = gzip_member(b"first") + gzip_member(b"second") + b"\x55" * 30
    path = write_file(tmp_path, raw_archive(LEGACY_KEY, pkcs7(data)))
    with archive.open_archive(path, LEGACY_KEY) as chunks:
        assert b"".join(chunks) == b"first"
    assert not chunks.padding_is_zero


def test_bad_pkcs7_after_zero_padding_tolerated(tmp_path):
    member = gzip_member(b"frames")
    blocks = member + bytes(-len(member) % 16 + 32)  # zero padding, last block ends in 0x00
    path = write_file(tmp_path, raw_archive(LEGACY_KEY, blocks))
    with archive.open_archive(path, LEGACY_KEY) as chunks:
        assert b"".join(chunks) == b"frames"
    assert chunks.pkcs7_valid is False


def test_bad_pkcs7_needed_by_gzip(tmp_path):
    member = gzip_member(b"frames")
    blocks = member + b"\x00" * (-len(member) % 16)
    if len(blocks) == len(member):
        blocks += b"\x00" * 16
    blocks = blocks[:-1] + b"\x11"  # pad byte 17: invalid
    # The member ends in the last block, so the reader must reject the padding.
    assert len(blocks) - len(member) < 16
    path = write_file(tmp_path, raw_archive(LEGACY_KEY, blocks))
    with pytest.raises(NotABackupError, match="invalid PKCS#7 padding"):
        read_all(path, LEGACY_KEY)


def test_zero_block_under_valid_mac(tmp_path):
    path = write_file(tmp_path, raw_archive(LEGACY_KEY, b"\x00" * 16))
    with pytest.raises(NotABackupError):
        read_all(path, LEGACY_KEY)


def test_file_changed_after_mac_check(tmp_path):
    path = write_file(tmp_path, MODERN_FILE.read_bytes())
    with pytest.raises(MacMismatchError, match="changed while it was read"):
        with archive.open_archive(path, MODERN_KEY) as chunks:
            with open(path, "r+b") as file:
                file.seek(600)  # padding region: the plaintext is unaffected, the MAC is not
                byte = file.read(1)
                file.seek(600)
                file.write(bytes([byte[0] ^ 1]))
            b"".join(chunks)


# --- Gzip bomb ---------------------------------------------------------------------------------------


def test_bomb_explicit_limit(tmp_path):
    path = tmp_path / "bomb.bin"
    archive.write_archive([gzip_of_zeros(8)], path, MODERN_KEY, precompressed=True)
    with pytest.raises(ArchiveTooLargeError, match="exceeds the limit of 4194304 bytes"):
        read_all(path, MODERN_KEY, max_inflated_bytes=4 << 20)
    assert len(read_all(path, MODERN_KEY)) == 8 << 20


def test_bomb_stops_early(tmp_path):
    path = tmp_path / "bomb.bin"
    archive.write_archive([gzip_of_zeros(64)], path, MODERN_KEY, precompressed=True)
    produced = 0
    with pytest.raises(ArchiveTooLargeError):
        with archive.open_archive(path, MODERN_KEY, max_inflated_bytes=2 << 20) as chunks:
            for chunk in chunks:
                produced += len(chunk)
    assert produced <= 3 << 20


def frame_stream_bomb(mebibytes: int) -> bytes:
    """A gzip member of a valid-looking frame stream of about ``mebibytes`` MiB, built fast.

    A BackupInfo, then Frames that carry only an unknown field 200 of 100000 zero bytes, so a
    frame reader parses them quickly and the gzip bomb guard is what stops the read.
    """
    info = bytes.fromhex("08011081dfc299d2311a20" + "ab" * 32)
    frame = b"\xc2\x0c" + encode_varint(100_000) + bytes(100_000)
    entry = encode_varint(len(frame)) + frame
    unit = entry * ((1 << 20) // len(entry))
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = compressor.compress(encode_varint(len(info)) + info) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(unit) + compressor.flush(zlib.Z_FULL_FLUSH)
    # After a full flush the compressor starts over, so every unit compresses to these bytes.
    assert compressor.compress(unit) + compressor.flush(zlib.Z_FULL_FLUSH) == block
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03"
    # The trailer is never reached, so its CRC and size are left zero.
    return header + first + block * mebibytes + compressor.flush() + bytes(8)


@pytest.fixture(scope="module")
def default_limit_bomb(tmp_path_factory):
    path = tmp_path_factory.mktemp("bomb") / "bomb.bin"
    mebibytes = (archive.INFLATE_LIMIT_FLOOR >> 20) + 64
    archive.write_archive([frame_stream_bomb(mebibytes)], path, MODERN_KEY, precompressed=True)
    return path


def test_bomb_default_limit(default_limit_bomb):
    size = default_limit_bomb.stat().st_size
    assert archive.default_max_inflated_bytes(size) == archive.INFLATE_LIMIT_FLOOR
    produced = 0
    with pytest.raises(ArchiveTooLargeError):
        with archive.open_archive(default_limit_bomb, MODERN_KEY) as chunks:
            for chunk in chunks:
                produced += len(chunk)
    assert archive.INFLATE_LIMIT_FLOOR - (1 << 20) <= produced <= archive.INFLATE_LIMIT_FLOOR


def test_cli_bomb(default_limit_bomb, capsys):
    assert main(cli_check(default_limit_bomb, "--forward-secrecy-token", TOKEN.hex())) == 2
    assert_one_line_error(capsys, "gzip bomb guard")


def test_inflate_limit_described():
    text = archive.describe_inflate_limit()
    assert "1 GiB" in text
    assert str(archive.MAX_EXPANSION_RATIO) in text


# --- CLI: encrypt ------------------------------------------------------------------------------------


@pytest.fixture
def key_env(monkeypatch):
    monkeypatch.setenv("BACKUP_HARNESS_RECOVERY_KEY", RECOVERY_KEY)


@pytest.mark.parametrize(
    "source, expected",
    [
        (MODERN_FILE, "already an encrypted archive"),
        (LEGACY_FILE, "not a plain frame stream"),
        ("gzip", "looks like a gzip file"),
        ("empty", "the file is empty"),
        ("missing", "file not found"),
    ],
)
def test_cli_encrypt_rejects_input(source, expected, key_env, tmp_path, capsys):
    if source == "gzip":
        source = write_file(tmp_path, gzip_member(PLAIN_FILE.read_bytes()), "plain.gz")
    elif source == "empty":
        source = write_file(tmp_path, b"", "empty.binproto")
    elif source == "missing":
        source = tmp_path / "missing.binproto"
    out = tmp_path / "out.bin"
    assert main(["encrypt", str(source), "--aci", ACI_TEXT, "-o", str(out)]) == 2
    assert_one_line_error(capsys, expected)
    assert not out.exists()


@pytest.mark.parametrize(
    "extra, expected",
    [
        (["--legacy", "--forward-secrecy-token", TOKEN.hex()], "--legacy archives use no forward-secrecy token"),
        (["--forward-secrecy-token", "ab" * 31], "expected 64 hex digits, got 62"),
        (["--aci", "nope"], "invalid ACI 'nope'"),
    ],
)
def test_cli_encrypt_rejects_options(extra, expected, key_env, tmp_path, capsys):
    out = tmp_path / "out.bin"
    argv = ["encrypt", str(PLAIN_FILE), "--aci", ACI_TEXT, "-o", str(out), *extra]
    assert main(argv) == 2
    assert_one_line_error(capsys, expected)
    assert sorted(path.name for path in tmp_path.iterdir()) == []


def test_cli_encrypt_bad_key(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("BACKUP_HARNESS_RECOVERY_KEY", "m" * 63)
    out = tmp_path / "out.bin"
    assert main(["encrypt", str(PLAIN_FILE), "--aci", ACI_TEXT, "-o", str(out)]) == 2
    assert_one_line_error(capsys, "expected 64 characters, got 63")
    assert not out.exists()


def test_cli_encrypt_output_is_input(key_env, tmp_path, capsys):
    source = write_file(tmp_path, PLAIN_FILE.read_bytes(), "plain.binproto")
    argv = ["encrypt", str(source), "--aci", ACI_TEXT, "-o", str(source), "--force"]
    assert main(argv) == 2
    assert_one_line_error(capsys, "must not be the input file")
    assert source.read_bytes() == PLAIN_FILE.read_bytes()
