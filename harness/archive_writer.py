"""Streaming archive writer: gzip, size padding, AES-256-CBC with PKCS#7, HMAC-SHA256.

``harness.archive`` re-exports everything here. The output is written to a temporary file in
the target directory, fsynced and renamed into place, so a reader never sees half an archive
and a failed write leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hmac
import logging
import math
import os
import secrets
import tempfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Literal

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from harness.archive_metadata import (
    MODERN_MAGIC,
    BackupMetadata,
    ForwardSecrecySalts,
    build_metadata,
    encode_varint,
)
from harness.errors import UsageError
from harness.keys import MessageBackupKey

log = logging.getLogger(__name__)

AES_BLOCK = 16
IV_LENGTH = 16
WRITE_BUFFER_SIZE = 1 << 20
ZERO_CHUNK = bytes(1 << 20)
GZIP_WBITS = 16 + zlib.MAX_WBITS

# Bucket padding (libsignal ``export::pad_gzipped_bucketed``): the gzip member is zero-padded
# to the next power of 1.05, computed in double precision, and to at least 541 bytes.
BUCKET_BASE = 1.05
BUCKET_MINIMUM = 541

Padding = Literal["bucket", "none"] | int


def bucket_padded_length(compressed_length: int) -> int:
    """Return the padded length of a gzip member of ``compressed_length`` bytes."""
    if compressed_length <= 0:
        return BUCKET_MINIMUM
    exponent = math.ceil(math.log(compressed_length, BUCKET_BASE))
    padded = math.floor(BUCKET_BASE**exponent)
    # NOTE: libsignal uses the same double arithmetic. The max() guards against a rounding that
    # would give a bucket below the length, which no tested length hits.
    return max(BUCKET_MINIMUM, padded, compressed_length)


@dataclasses.dataclass(frozen=True)
class ArchiveWriteResult:
    """Summary of one written archive. ``forward_secrecy_salts`` is empty unless the writer built the header."""

    path: Path
    layout: str
    file_size: int
    plaintext_length: int
    compressed_length: int
    padded_length: int
    mac: bytes
    metadata: BackupMetadata | None
    forward_secrecy_salts: tuple[ForwardSecrecySalts, ...] = ()


class ArchiveWriter:
    """Write one archive from streamed frame-stream bytes.

    ``layout`` "modern" writes the ``SBACKUP\\x01`` header: ``metadata`` bytes are written as
    given (even malformed, for tests), otherwise a header is built from the key's backup key
    and forward-secrecy token with ``forward_secrecy_salts`` (default: one random pair) and
    ``metadata_iv`` (default random). "legacy" writes no header. ``iv`` is the AES-CBC IV
    (default random). ``padding`` is "bucket" (libsignal's scheme), "none" or a count of zero
    bytes. With ``precompressed`` True, ``write`` takes gzip bytes instead of plaintext.
    With ``overwrite`` False an existing ``out_path`` raises UsageError.

    Use it as a context manager: an exception inside the block discards the temporary file.
    """

    def __init__(
        self,
        out_path: str | os.PathLike[str],
        key: MessageBackupKey,
        *,
        layout: Literal["modern", "legacy"] = "modern",
        metadata: bytes | None = None,
        iv: bytes | None = None,
        padding: Padding = "bucket",
        compress_level: int = 6,
        precompressed: bool = False,
        overwrite: bool = True,
        forward_secrecy_salts: Sequence[ForwardSecrecySalts] | None = None,
        metadata_iv: bytes | None = None,
    ) -> None:
        if layout not in ("modern", "legacy"):
            raise ValueError(f"layout must be 'modern' or 'legacy', got {layout!r}")
        if padding not in ("bucket", "none") and not (isinstance(padding, int) and padding >= 0):
            raise ValueError(f"padding must be 'bucket', 'none' or a non-negative int, got {padding!r}")
        self.path = Path(out_path)
        self.layout = layout
        self._padding = padding
        self._overwrite = overwrite
        self._key = key
        self._compressor = None if precompressed else zlib.compressobj(compress_level, zlib.DEFLATED, GZIP_WBITS)
        self._metadata, self._salts, header = self._build_header(metadata, forward_secrecy_salts, metadata_iv)
        self._iv = secrets.token_bytes(IV_LENGTH) if iv is None else bytes(iv)
        if len(self._iv) != IV_LENGTH:
            raise ValueError(f"iv must be {IV_LENGTH} bytes, got {len(self._iv)}")
        self._encryptor = Cipher(algorithms.AES(key.aes_key), modes.CBC(self._iv)).encryptor()
        self._mac = hmac.new(key.hmac_key, self._iv, "sha256")
        self._plaintext_length = 0
        self._compressed_length = 0
        self._encrypted_input = 0
        self.result: ArchiveWriteResult | None = None
        self._closed = False
        self._temp_path = self._open_temp()
        try:
            self._file.write(header)
            self._file.write(self._iv)
        except BaseException:
            self.discard()
            raise

    # --- public API ----------------------------------------------------------------------------

    def write(self, chunk: bytes) -> None:
        """Add frame-stream bytes (or gzip bytes when ``precompressed``)."""
        if self._closed:
            raise ValueError("write to a closed ArchiveWriter")
        if self._compressor is None:
            self._emit_compressed(chunk)
            return
        self._plaintext_length += len(chunk)
        compressed = self._compressor.compress(chunk)
        if compressed:
            self._emit_compressed(compressed)

    def close(self) -> ArchiveWriteResult:
        """Finish the archive, move it into place and return what was written."""
        if self.result is not None:
            return self.result
        if self._closed:
            raise ValueError("close of a discarded ArchiveWriter")
        try:
            self._finish_stream()
            self._file.flush()
            os.fsync(self._file.fileno())
            file_size = self._file.tell()
            self._file.close()
            self._publish()
        except BaseException:
            self.discard()
            raise
        self._closed = True
        self.result = ArchiveWriteResult(
            path=self.path,
            layout=self.layout,
            file_size=file_size,
            plaintext_length=self._plaintext_length,
            compressed_length=self._compressed_length,
            padded_length=self._encrypted_input,
            mac=self._final_mac,
            metadata=self._metadata,
            forward_secrecy_salts=self._salts,
        )
        log.info("wrote %s archive %s (%d bytes)", self.layout, self.path, file_size)
        return self.result

    def discard(self) -> None:
        """Close and delete the temporary file. Safe to call more than once."""
        self._closed = True
        try:
            self._file.close()
        except OSError:
            pass
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._temp_path)

    def __enter__(self) -> ArchiveWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        elif self.result is None:
            self.discard()

    # --- internals -------------------------------------------------------------------------------

    def _build_header(
        self,
        metadata: bytes | None,
        salts: Sequence[ForwardSecrecySalts] | None,
        metadata_iv: bytes | None,
    ) -> tuple[BackupMetadata | None, tuple[ForwardSecrecySalts, ...], bytes]:
        if self.layout == "legacy":
            if metadata is not None:
                raise ValueError("a legacy archive has no metadata header")
            return None, (), b""
        used_salts: tuple[ForwardSecrecySalts, ...] = ()
        if metadata is None:
            key = self._key
            if key.backup_key is None or key.forward_secrecy_token is None:
                raise ValueError(
                    "a modern archive needs metadata bytes or a key derived with a "
                    "forward-secrecy token"
                )
            parsed, used_salts = build_metadata(key.backup_key, key.forward_secrecy_token, salts, metadata_iv)
            metadata = parsed.raw
        else:
            parsed = None
        return parsed, used_salts, MODERN_MAGIC + encode_varint(len(metadata)) + bytes(metadata)

    def _open_temp(self) -> Path:
        directory = self.path.parent if str(self.path.parent) else Path(".")
        try:
            descriptor, name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".partial", dir=directory)
        except FileNotFoundError:
            raise UsageError(f"{self.path}: output directory {directory} does not exist") from None
        except PermissionError:
            raise UsageError(f"{self.path}: cannot write to directory {directory} (permission denied)") from None
        self._file = os.fdopen(descriptor, "wb", buffering=WRITE_BUFFER_SIZE)
        return Path(name)

    def _emit_compressed(self, data: bytes) -> None:
        self._compressed_length += len(data)
        self._encrypt(data)

    def _encrypt(self, data: bytes) -> None:
        # The CBC encryptor keeps a partial block until more input (or the PKCS#7 tail) arrives.
        self._encrypted_input += len(data)
        ciphertext = self._encryptor.update(data)
        self._mac.update(ciphertext)
        self._file.write(ciphertext)

    def _finish_stream(self) -> None:
        if self._compressor is not None:
            self._emit_compressed(self._compressor.flush())
        for zeros in _zero_chunks(self._padding_length()):
            self._encrypt(zeros)
        padded_length = self._encrypted_input
        pad = AES_BLOCK - padded_length % AES_BLOCK
        ciphertext = self._encryptor.update(bytes([pad]) * pad) + self._encryptor.finalize()
        self._encrypted_input = padded_length
        self._mac.update(ciphertext)
        self._file.write(ciphertext)
        self._final_mac = self._mac.digest()
        self._file.write(self._final_mac)

    def _padding_length(self) -> int:
        if self._padding == "none":
            return 0
        if self._padding == "bucket":
            return bucket_padded_length(self._compressed_length) - self._compressed_length
        return int(self._padding)

    def _publish(self) -> None:
        if self._overwrite:
            os.replace(self._temp_path, self.path)
        else:
            try:
                # link() fails if the target exists, so no other writer's file is replaced.
                os.link(self._temp_path, self.path)
            except FileExistsError:
                raise UsageError(
                    f"{self.path}: already exists; choose another output path or allow overwriting"
                ) from None
            except OSError:
                # The filesystem has no hard links: check, then rename (not race-free).
                if self.path.exists():
                    raise UsageError(
                        f"{self.path}: already exists; choose another output path or allow "
                        "overwriting"
                    ) from None
                os.replace(self._temp_path, self.path)
            else:
                os.unlink(self._temp_path)
        _fsync_directory(self.path.parent)


def _zero_chunks(count: int):
    while count > 0:
        size = min(count, len(ZERO_CHUNK))
        yield ZERO_CHUNK[:size] if size < len(ZERO_CHUNK) else ZERO_CHUNK
        count -= size


def _fsync_directory(directory: Path) -> None:
    try:
        descriptor = os.open(directory if str(directory) else ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass  # some filesystems cannot fsync a directory; the rename itself has happened
    finally:
        os.close(descriptor)
