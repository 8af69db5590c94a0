"""The encrypted archive container: header parsing, a streaming reader and a streaming writer.

Layout (libsignal 0.103.0, ``rust/message-backup``)::

    modern:  "SBACKUP\\x01" || varint(N) || MetadataPb(N) || IV(16) || ciphertext || MAC(32)
    legacy:                                              IV(16) || ciphertext || MAC(32)

The ciphertext is AES-256-CBC with PKCS#7 over one gzip member followed by zero padding, and
MAC = HMAC-SHA256(hmac_key, IV || ciphertext). The reader verifies the MAC over the whole file
before it releases any plaintext, then decrypts and inflates in ~1 MiB chunks, so memory stays
flat in the archive size. Like libsignal it reads only the first gzip member and ignores the
bytes after it, and it MACs the file a second time while decrypting, so a file that changes
between the two passes fails at the end of iteration.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Literal

from harness.archive_metadata import (
    MODERN_MAGIC,
    BackupMetadata,
    build_metadata,
    decrypt_forward_secrecy_token,
    encode_varint,
    parse_metadata,
    read_varint,
)
from harness.archive_reader import ArchivePlaintext, verify_mac
from harness.archive_writer import ArchiveWriteResult, ArchiveWriter, bucket_padded_length
from harness.errors import ArchiveError, NotABackupError, TruncatedArchiveError
from harness.keys import MessageBackupKey

__all__ = [
    "MODERN_MAGIC",
    "ArchiveHeader",
    "ArchivePlaintext",
    "ArchiveWriteResult",
    "ArchiveWriter",
    "BackupMetadata",
    "build_metadata",
    "bucket_padded_length",
    "decrypt_forward_secrecy_token",
    "default_max_inflated_bytes",
    "describe_inflate_limit",
    "encode_varint",
    "looks_like_frame_stream",
    "open_archive",
    "read_archive",
    "read_header",
    "write_archive",
]

log = logging.getLogger(__name__)

MAGIC_PREFIX = MODERN_MAGIC[:7]
IV_LENGTH = 16
MAC_LENGTH = 32
AES_BLOCK = 16
# The smallest legacy archive: IV, one AES block, MAC.
MIN_LEGACY_SIZE = IV_LENGTH + AES_BLOCK + MAC_LENGTH
# Real headers are about 200 bytes. libsignal only requires the length to fit 32 bits; this cap
# keeps a corrupt length from making the reader allocate gigabytes for the header.
MAX_METADATA_LENGTH = 1 << 20

# Gzip bomb guard. The decompressed frame stream may reach
#   max(INFLATE_LIMIT_FLOOR, MAX_EXPANSION_RATIO x archive size) bytes.
# Frame streams in Signal's backup test corpus compress 1x to 176x (long repeated text), while
# a DEFLATE bomb reaches about 1030x, so 250x leaves room for real data and stops bombs.
MAX_EXPANSION_RATIO = 250
# Lets a small archive inflate to 1 GiB: output is streamed, so this costs seconds, not memory.
INFLATE_LIMIT_FLOOR = 1 << 30

Layout = Literal["modern", "legacy"]


def default_max_inflated_bytes(archive_size: int) -> int:
    """Return the default limit on the decompressed size of an archive of ``archive_size`` bytes."""
    return max(INFLATE_LIMIT_FLOOR, MAX_EXPANSION_RATIO * archive_size)


def describe_inflate_limit() -> str:
    """Return one line for help texts that states the default gzip bomb limit."""
    return (
        f"the decompressed frame stream may be at most max({INFLATE_LIMIT_FLOOR >> 30} GiB, "
        f"{MAX_EXPANSION_RATIO} x the archive size) bytes"
    )


@dataclasses.dataclass(frozen=True)
class ArchiveHeader:
    """Layout of one archive file, with byte offsets from the start of the file.

    ``container_version`` is the byte after ``SBACKUP`` when it is not 1. libsignal then reads
    the file as legacy, and the reader reports an unsupported version if the MAC fails.
    """

    path: Path
    layout: Layout
    metadata: BackupMetadata | None
    file_size: int
    iv_offset: int
    container_version: int | None = None

    @property
    def ciphertext_offset(self) -> int:
        return self.iv_offset + IV_LENGTH

    @property
    def mac_offset(self) -> int:
        return self.file_size - MAC_LENGTH

    @property
    def ciphertext_length(self) -> int:
        return self.mac_offset - self.ciphertext_offset


def read_header(path: str | os.PathLike[str]) -> ArchiveHeader:
    """Parse the container header of an archive file without any key.

    Raises NotABackupError for an empty file or a malformed header, TruncatedArchiveError when
    the file ends before the header, IV, one cipher block and the MAC, and
    UnsupportedVersionError for more than two forward-secrecy pairs.
    """
    archive_path = Path(path)
    try:
        with open(archive_path, "rb") as file:
            return _read_header(archive_path, file)
    except FileNotFoundError:
        raise NotABackupError(f"{archive_path}: file not found") from None
    except IsADirectoryError:
        raise NotABackupError(f"{archive_path}: is a directory, not an archive file") from None
    except PermissionError:
        raise NotABackupError(f"{archive_path}: permission denied") from None


def _read_header(path: Path, file: BinaryIO) -> ArchiveHeader:
    size = os.fstat(file.fileno()).st_size
    head = file.read(MAX_METADATA_LENGTH + 16)
    if size == 0:
        raise NotABackupError(f"{path}: the file is empty, not a backup archive")
    if head.startswith(MODERN_MAGIC):
        return _read_modern_header(path, head, size)
    if MODERN_MAGIC.startswith(head):
        raise TruncatedArchiveError(
            f"{path}: truncated archive: it ends inside the {len(MODERN_MAGIC)}-byte magic"
        )
    container_version = None
    if head.startswith(MAGIC_PREFIX):
        container_version = head[len(MAGIC_PREFIX)]
        log.warning(
            "%s: starts with SBACKUP and container version %d; reading it as a legacy archive",
            path,
            container_version,
        )
    if size < MIN_LEGACY_SIZE:
        _raise_if_other_content(path, head)
        raise TruncatedArchiveError(
            f"{path}: truncated archive or not an archive: {size} bytes, but a backup archive "
            f"has at least {MIN_LEGACY_SIZE} (IV, one AES block, MAC)"
        )
    return ArchiveHeader(path, "legacy", None, size, 0, container_version)


def _read_modern_header(path: Path, head: bytes, size: int) -> ArchiveHeader:
    start = len(MODERN_MAGIC)
    try:
        length, metadata_offset = read_varint(head, start)
    except IndexError:
        raise TruncatedArchiveError(
            f"{path}: truncated archive: it ends inside the metadata length"
        ) from None
    except ValueError:
        raise NotABackupError(f"{path}: invalid archive header: metadata length is not a varint") from None
    if length >= 1 << 32:
        raise NotABackupError(f"{path}: invalid archive header: metadata length {length} does not fit 32 bits")
    if length > MAX_METADATA_LENGTH:
        raise NotABackupError(
            f"{path}: invalid archive header: metadata length {length} exceeds "
            f"{MAX_METADATA_LENGTH} bytes"
        )
    iv_offset = metadata_offset + length
    if size < iv_offset:
        raise TruncatedArchiveError(
            f"{path}: truncated archive: {size} bytes, but the header announces {length} bytes "
            f"of metadata ending at byte {iv_offset}"
        )
    try:
        metadata = parse_metadata(head[metadata_offset:iv_offset])
    except ArchiveError as error:
        raise type(error)(f"{path}: invalid archive header: {error}") from None
    minimum = iv_offset + IV_LENGTH + AES_BLOCK + MAC_LENGTH
    if size < minimum:
        raise TruncatedArchiveError(
            f"{path}: truncated archive: {size} bytes, but its header ends at byte {iv_offset} "
            f"and IV, one AES block and the MAC need {minimum - iv_offset} more"
        )
    return ArchiveHeader(path, "modern", metadata, size, iv_offset)


# --- Telling other files apart ---------------------------------------------------------------

_OTHER_FORMATS = (
    (b"\x1f\x8b", "a gzip file"),
    (b"%PDF", "a PDF file"),
    (b"PK\x03\x04", "a ZIP file"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"SQLite format 3\x00", "an SQLite database"),
)


def looks_like_frame_stream(head: bytes) -> bool:
    """Guess whether ``head`` (the first KiB or more of a file) is a plain frame stream.

    True when ``head`` does not start with the archive magic but with a varint length of 2 to
    64 KiB, and the whole first message fits in ``head``. That message must also be valid
    protobuf wire format with field numbers 1 to 64, as a BackupInfo is. This is a cheap check
    that tells plain ``.binproto`` files from encrypted archives, not a validation.
    """
    if head.startswith(MAGIC_PREFIX):
        return False
    try:
        length, offset = read_varint(head, 0)
    except (IndexError, ValueError):
        return False
    if not 2 <= length <= 1 << 16 or offset + length > len(head):
        return False
    return _is_plausible_message(head[offset : offset + length])


def _is_plausible_message(message: bytes) -> bool:
    offset = 0
    try:
        while offset < len(message):
            tag, offset = read_varint(message, offset)
            number, wire_type = tag >> 3, tag & 7
            if not 1 <= number <= 64:
                return False
            if wire_type == 0:
                _, offset = read_varint(message, offset)
            elif wire_type == 2:
                length, offset = read_varint(message, offset)
                offset += length
            elif wire_type in (1, 5):
                offset += 8 if wire_type == 1 else 4
            else:
                return False
    except (IndexError, ValueError):
        return False
    return offset == len(message)


def describe_other_content(head: bytes) -> str | None:
    """Name the kind of file ``head`` starts with when it is clearly not an archive, else None."""
    if looks_like_frame_stream(head):
        return "a plain frame stream (.binproto), not an encrypted archive; read it without a key"
    for magic, name in _OTHER_FORMATS:
        if head.startswith(magic):
            return name
    # Short samples are skipped: 16 printable bytes can be a (test) IV.
    sample = head[:4096]
    if len(sample) >= MIN_LEGACY_SIZE and all(32 <= byte < 127 or byte in b"\t\r\n" for byte in sample):
        return "a text file"
    return None


def _raise_if_other_content(path: Path, head: bytes) -> None:
    other = describe_other_content(head)
    if other is not None:
        raise NotABackupError(f"{path}: not a backup archive: the file is {other}")


# --- Reading ---------------------------------------------------------------------------------


@contextlib.contextmanager
def open_archive(
    path: str | os.PathLike[str],
    key: MessageBackupKey,
    *,
    max_inflated_bytes: int | None = None,
) -> Iterator[ArchivePlaintext]:
    """Open an archive and yield an iterator over its decompressed frame-stream bytes.

    The MAC over the whole file is verified before this yields, so no unauthenticated
    plaintext is ever produced. ``max_inflated_bytes`` overrides the gzip bomb limit of
    default_max_inflated_bytes(). Raises the ArchiveError subclasses of harness.errors, also
    while iterating (truncated gzip member, bomb limit, file changed since the MAC check).
    """
    header = read_header(path)
    limit = max_inflated_bytes if max_inflated_bytes is not None else (
        default_max_inflated_bytes(header.file_size)
    )
    with open(header.path, "rb", buffering=0) as file:
        try:
            expected_mac = verify_mac(file, header, key)
        except ArchiveError:
            file.seek(0)
            _raise_if_other_content(header.path, file.read(1 << 16))
            raise
        yield ArchivePlaintext(file, header, key, expected_mac, limit)


def read_archive(
    path: str | os.PathLike[str], key: MessageBackupKey, *, max_inflated_bytes: int | None = None
) -> bytes:
    """Return the whole decompressed frame stream of an archive (for small archives and tests)."""
    with open_archive(path, key, max_inflated_bytes=max_inflated_bytes) as chunks:
        return b"".join(chunks)


# --- Writing ---------------------------------------------------------------------------------


def write_archive(chunks, out_path: str | os.PathLike[str], key: MessageBackupKey, **options) -> ArchiveWriteResult:
    """Write the frame-stream bytes of ``chunks`` as an archive; options as for ArchiveWriter."""
    with ArchiveWriter(out_path, key, **options) as writer:
        for chunk in chunks:
            writer.write(chunk)
    return writer.result
