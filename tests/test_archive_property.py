"""Property: any frame stream, split into any chunks, survives write then read in both layouts."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import archive
from harness.archive_metadata import encode_varint
from harness.errors import MacMismatchError, NotABackupError
from harness.keys import MessageBackupKey

MODERN_KEY = MessageBackupKey.from_recovery_key("m" * 64, b"\x11" * 16, b"\xab" * 32)
LEGACY_KEY = MessageBackupKey.from_recovery_key("m" * 64, b"\x11" * 16)

messages = st.lists(st.binary(max_size=3000), max_size=40)
layouts = st.sampled_from([("modern", MODERN_KEY), ("legacy", LEGACY_KEY)])
paddings = st.one_of(st.sampled_from(["bucket", "none"]), st.integers(min_value=0, max_value=5000))


def frame_stream(parts: list[bytes]) -> bytes:
    return b"".join(encode_varint(len(part)) + part for part in parts)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(data) + 1) for cut in cuts} | {0, len(data)})
    return [data[start:end] for start, end in zip(points, points[1:])]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    parts=messages,
    cuts=st.lists(st.integers(min_value=0), max_size=10),
    layout=layouts,
    padding=paddings,
    level=st.integers(min_value=0, max_value=9),
)
def test_round_trip_any_stream(parts, cuts, layout, padding, level):
    name, key = layout
    plaintext = frame_stream(parts)
    with tempfile.TemporaryDirectory() as directory:
        out = Path(directory) / "archive.bin"
        result = archive.write_archive(
            split(plaintext, cuts), out, key, layout=name, padding=padding, compress_level=level
        )
        with archive.open_archive(out, key) as chunks:
            decrypted = b"".join(chunks)
        header = archive.read_header(out)
    assert decrypted == plaintext
    assert chunks.complete
    assert chunks.compressed_length == result.compressed_length
    assert chunks.padding_is_zero
    assert header.layout == name
    assert header.ciphertext_length % 16 == 0
    assert header.ciphertext_length == result.padded_length + 16 - result.padded_length % 16


@settings(max_examples=60, deadline=None)
@given(parts=messages, flip_at=st.integers(min_value=0))
def test_any_flipped_bit_rejected(parts, flip_at):
    plaintext = frame_stream(parts)
    with tempfile.TemporaryDirectory() as directory:
        out = Path(directory) / "archive.bin"
        archive.write_archive([plaintext], out, LEGACY_KEY, layout="legacy")
        data = bytearray(out.read_bytes())
        data[flip_at % len(data)] ^= 0x01
        out.write_bytes(bytes(data))
        # NotABackupError too: a random IV may start like another format (gzip: 1 in 65536).
        with pytest.raises((MacMismatchError, NotABackupError)):
            archive.read_archive(out, LEGACY_KEY)
