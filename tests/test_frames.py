"""The varint-delimited frame stream: splitting, encoding, corrupt and truncated input."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from harness.archive import write_archive
from harness.errors import (
    MacMismatchError,
    MalformedFrameError,
    NotABackupError,
    TruncatedArchiveError,
    UsageError,
)
from harness.keys import MessageBackupKey, parse_aci
from harness.frames import encode_message, encode_varint, iter_messages, open_frames
from shared_corpus import LIBSIGNAL_FILES

MESSAGES = [b"\x08\x01", b"", b"x" * 127, b"y" * 128, b"z" * 70_000]
STREAM = b"".join(encode_message(message) for message in MESSAGES)


def split_every(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def test_varint_encoding_known_values():
    assert encode_varint(0) == b"\x00"
    assert encode_varint(127) == b"\x7f"
    assert encode_varint(128) == b"\x80\x01"
    assert encode_varint(300) == b"\xac\x02"
    assert encode_varint(2**64 - 1) == b"\xff" * 9 + b"\x01"


def test_encode_message_prefixes_length():
    assert encode_message(b"abc") == b"\x03abc"
    assert encode_message(b"q" * 200)[:2] == b"\xc8\x01"


def test_single_chunk_yields_every_message():
    assert list(iter_messages([STREAM])) == MESSAGES


@pytest.mark.parametrize("size", [1, 2, 3, 7, 127, 128, 129, 4096])
def test_messages_split_across_chunks(size):
    assert list(iter_messages(split_every(STREAM, size))) == MESSAGES


def test_empty_chunks_are_skipped():
    chunks = [b"", STREAM[:5], b"", STREAM[5:], b""]
    assert list(iter_messages(chunks)) == MESSAGES


def test_empty_stream_yields_nothing():
    assert list(iter_messages([])) == []


def test_varint_longer_than_ten_bytes_rejected():
    stream = encode_message(b"ok") + b"\x80" * 10 + b"\x01"
    with pytest.raises(MalformedFrameError, match=r"frame 1 at byte offset 3: .*longer than 10"):
        list(iter_messages([stream]))


def test_varint_split_over_chunks_longer_than_ten_bytes_rejected():
    stream = b"\x80" * 11 + b"\x01"
    with pytest.raises(MalformedFrameError, match="frame 0 at byte offset 0"):
        list(iter_messages(split_every(stream, 1)))


def test_length_above_32_bits_rejected():
    stream = encode_varint(2**32) + b"x"
    with pytest.raises(MalformedFrameError, match=r"length 4294967296 does not fit in 32 bits"):
        list(iter_messages([stream]))


def test_length_past_end_reports_truncation():
    stream = encode_message(b"first") + encode_varint(50) + b"short"
    with pytest.raises(TruncatedArchiveError, match=r"frame 1 at byte offset 6: length 50 runs 45"):
        list(iter_messages(split_every(stream, 4)))


def test_stream_ending_inside_varint_reports_truncation():
    stream = encode_message(b"first") + b"\x80"
    with pytest.raises(TruncatedArchiveError, match=r"frame 1 at byte offset 6: .*inside the length"):
        list(iter_messages([stream]))


def test_messages_before_truncation_are_yielded():
    stream = encode_message(b"first") + encode_varint(9)
    messages = iter_messages([stream])
    assert next(messages) == b"first"
    with pytest.raises(TruncatedArchiveError):
        next(messages)


def test_open_frames_reads_plain_stream(tmp_path):
    path = tmp_path / "frames.binproto"
    path.write_bytes(STREAM)
    with open_frames(path) as messages:
        assert list(messages) == MESSAGES


def test_open_frames_missing_file(tmp_path):
    with pytest.raises(UsageError, match="file not found"):
        open_frames(tmp_path / "absent.binproto")


def test_open_frames_empty_file(tmp_path):
    path = tmp_path / "empty.binproto"
    path.write_bytes(b"")
    with pytest.raises(NotABackupError, match="empty"):
        open_frames(path)


def test_open_frames_encrypted_file_without_key(tmp_path):
    path = tmp_path / "backup.bin"
    path.write_bytes(b"SBACKUP\x01" + bytes(100))
    with pytest.raises(UsageError, match="--recovery-key"):
        open_frames(path)


def test_open_frames_key_without_aci(tmp_path):
    path = tmp_path / "backup.bin"
    path.write_bytes(bytes(100))
    with pytest.raises(UsageError, match="ACI"):
        open_frames(path, recovery_key="m" * 64)


def test_open_frames_random_bytes_without_key(tmp_path):
    path = tmp_path / "noise.bin"
    path.write_bytes(bytes(range(7, 256)) * 4)
    with pytest.raises(NotABackupError, match="does not start with a BackupInfo"):
        open_frames(path)


LIBSIGNAL_CORPUS = LIBSIGNAL_FILES
ACI = "11111111-1111-1111-1111-111111111111"
# Frame stream both libsignal test archives decrypt to (three frames after the BackupInfo).
EXPECTED_SHA256 = "0d5d21b85e69e13811e4bd01df6bc022413d174e3216f975efbac6d925d79fd8"


@pytest.mark.parametrize(
    ("name", "token"),
    [("legacy-account.binproto.encrypted", None), ("new-account.binproto.encrypted", b"\xab" * 32)],
)
def test_open_frames_decrypts_libsignal_archive(name, token):
    with open_frames(
        LIBSIGNAL_CORPUS / name, recovery_key="m" * 64, aci=ACI, forward_secrecy_token=token
    ) as messages:
        stream = b"".join(encode_message(message) for message in messages)
    assert hashlib.sha256(stream).hexdigest() == EXPECTED_SHA256


def test_open_frames_wrong_key_fails_before_any_frame():
    with pytest.raises(MacMismatchError):
        open_frames(LIBSIGNAL_CORPUS / "legacy-account.binproto.encrypted", "n" * 64, ACI)


def test_open_frames_round_trips_own_archive(tmp_path):
    key = MessageBackupKey.from_recovery_key("m" * 64, parse_aci(ACI))
    path = tmp_path / "backup.bin"
    write_archive(split_every(STREAM, 1000), path, key, layout="legacy")
    with open_frames(path, "m" * 64, ACI) as messages:
        assert list(messages) == MESSAGES
