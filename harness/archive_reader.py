"""The two reading passes over an archive: MAC check, then decrypt and inflate.

``harness.archive.open_archive`` is the entry point, and this module does the streaming work.
Both passes read ~1 MiB at a time into one reused buffer, so memory does not grow with the
archive.
"""

from __future__ import annotations

import hmac
import logging
import time
import zlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, BinaryIO

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from harness.errors import (
    ArchiveTooLargeError,
    MacMismatchError,
    NotABackupError,
    TruncatedArchiveError,
    UnsupportedVersionError,
)
from harness.keys import MessageBackupKey

if TYPE_CHECKING:
    from harness.archive import ArchiveHeader

log = logging.getLogger(__name__)

READ_CHUNK_SIZE = 1 << 20  # a multiple of the AES block size
OUTPUT_CHUNK_SIZE = 1 << 20  # maximum size of one yielded chunk of decompressed bytes
INFLATE_INPUT_SLICE = 1 << 16
GZIP_WBITS = 16 + zlib.MAX_WBITS  # gzip header and trailer, one member
AES_BLOCK = 16
IV_LENGTH = 16

MAC_MISMATCH = (
    "MAC mismatch: wrong recovery key, ACI or forward-secrecy token, or the archive was modified"
)


def _read_region(file: BinaryIO, start: int, length: int, path: object) -> Iterator[memoryview]:
    """Yield ``length`` bytes from ``start`` as views into one reused buffer of READ_CHUNK_SIZE."""
    file.seek(start)
    buffer = bytearray(min(READ_CHUNK_SIZE, max(length, 1)))
    view = memoryview(buffer)
    remaining = length
    while remaining:
        requested = min(len(buffer), remaining)
        received = file.readinto(view[:requested])
        if received != requested:
            # readinto on a regular file returns less only at the end of the file.
            raise TruncatedArchiveError(f"{path}: the file became shorter while it was read")
        remaining -= requested
        yield view[:requested]


def verify_mac(file: BinaryIO, header: ArchiveHeader, key: MessageBackupKey) -> bytes:
    """Check HMAC-SHA256(hmac_key, IV || ciphertext) against the file's last 32 bytes.

    Returns the MAC on success. On a mismatch, raises UnsupportedVersionError when the file
    starts with ``SBACKUP`` and an unknown version byte, TruncatedArchiveError when the
    ciphertext is not a whole number of AES blocks (so the file was cut or extended), and
    MacMismatchError otherwise.
    """
    started = time.perf_counter()
    mac = hmac.new(key.hmac_key, digestmod="sha256")
    length = header.mac_offset - header.iv_offset
    for chunk in _read_region(file, header.iv_offset, length, header.path):
        mac.update(chunk)
    file.seek(header.mac_offset)
    expected = file.read(header.file_size - header.mac_offset)
    log.info(
        "%s: MAC pass over %d bytes took %.3f s", header.path, length, time.perf_counter() - started
    )
    if hmac.compare_digest(mac.digest(), expected):
        return expected
    if header.container_version is not None:
        raise UnsupportedVersionError(
            f"{header.path}: unsupported archive container version {header.container_version}: "
            "the file starts with SBACKUP, but only version 1 is known"
        )
    if header.ciphertext_length % AES_BLOCK:
        raise TruncatedArchiveError(
            f"{header.path}: truncated archive, extra bytes, or not an archive: the encrypted "
            f"body is {header.ciphertext_length} bytes, not a whole number of 16-byte AES blocks, "
            "and the MAC does not match"
        )
    if header.layout == "modern" and not key.has_forward_secrecy:
        raise MacMismatchError(
            f"{header.path}: MAC mismatch: the archive has a forward-secrecy header, so its key "
            "needs the forward-secrecy token; pass --forward-secrecy-token HEX (or check the "
            "recovery key and ACI)"
        )
    raise MacMismatchError(f"{header.path}: {MAC_MISMATCH}")


class ArchivePlaintext:
    """Iterator over the decompressed frame-stream bytes of an archive whose MAC was verified.

    Yields ``bytes`` chunks of at most OUTPUT_CHUNK_SIZE. The counters describe what has been
    read so far; after the last chunk, ``complete`` is True and they describe the whole file.
    """

    def __init__(
        self,
        file: BinaryIO,
        header: ArchiveHeader,
        key: MessageBackupKey,
        expected_mac: bytes,
        max_inflated_bytes: int,
    ) -> None:
        self.header = header
        self.max_inflated_bytes = max_inflated_bytes
        self.plaintext_length = 0
        # Length of the gzip member; None until its end is reached.
        self.compressed_length: int | None = None
        # Bytes between the end of the gzip member and the PKCS#7 padding, and whether all are 0.
        self.padding_length = 0
        self.padding_is_zero = True
        # None until the last block is decrypted. False is tolerated, as libsignal does, when
        # the gzip member ended before the last block.
        self.pkcs7_valid: bool | None = None
        self.complete = False
        self._file = file
        self._key = key
        self._expected_mac = expected_mac
        self._fed_bytes = 0
        self._chunks = self._generate()

    def __iter__(self) -> ArchivePlaintext:
        return self

    def __next__(self) -> bytes:
        return next(self._chunks)

    def _generate(self) -> Iterator[bytes]:
        header = self.header
        self._file.seek(header.iv_offset)
        iv = self._file.read(IV_LENGTH)
        mac = hmac.new(self._key.hmac_key, iv, "sha256")
        decryptor = Cipher(algorithms.AES(self._key.aes_key), modes.CBC(iv)).decryptor()
        inflater = zlib.decompressobj(wbits=GZIP_WBITS)
        total = header.ciphertext_length
        partial_tail = total % AES_BLOCK
        aligned = total - partial_tail
        done = 0
        for chunk in _read_region(self._file, header.ciphertext_offset, aligned, header.path):
            mac.update(chunk)
            done += len(chunk)
            plaintext = decryptor.update(chunk)
            if done == aligned and not partial_tail:
                plaintext = self._remove_pkcs7(plaintext)
            yield from self._inflate(inflater, plaintext)
        for chunk in _read_region(self._file, header.ciphertext_offset + aligned, partial_tail, header.path):
            mac.update(chunk)
        self._finish(mac.digest(), inflater, bool(partial_tail))

    def _remove_pkcs7(self, plaintext: bytes) -> bytes:
        pad = plaintext[-1] if plaintext else 0
        valid = 1 <= pad <= AES_BLOCK and plaintext[-pad:] == bytes([pad]) * pad
        self.pkcs7_valid = valid
        # With invalid padding the whole last block is withheld: libsignal fails only if the
        # gzip member needs it, which _finish reports.
        return plaintext[:-pad] if valid else plaintext[:-AES_BLOCK]

    def _inflate(self, inflater: zlib._Decompress, data: bytes) -> Iterator[bytes]:
        # zlib copies the unconsumed input on every bounded call, so small input slices keep
        # that copying small when the data expands a lot.
        view = memoryview(data)
        for start in range(0, len(data), INFLATE_INPUT_SLICE):
            yield from self._inflate_slice(inflater, view[start : start + INFLATE_INPUT_SLICE])

    def _inflate_slice(self, inflater: zlib._Decompress, data: memoryview) -> Iterator[bytes]:
        if inflater.eof:
            self._count_padding(bytes(data))
            return
        self._fed_bytes += len(data)
        pending: bytes | memoryview = data
        while True:
            try:
                out = inflater.decompress(pending, OUTPUT_CHUNK_SIZE)
            except zlib.error as error:
                raise NotABackupError(
                    f"{self.header.path}: the MAC matches but the decrypted data is not a valid "
                    f"gzip stream ({error}); the archive was written incorrectly"
                ) from None
            if out:
                self.plaintext_length += len(out)
                self._check_limit()
                yield out
            if inflater.eof:
                self.compressed_length = self._fed_bytes - len(inflater.unused_data)
                self._count_padding(inflater.unused_data)
                return
            pending = inflater.unconsumed_tail
            # A full output chunk may leave output pending inside zlib even with no input left.
            if not pending and len(out) < OUTPUT_CHUNK_SIZE:
                return

    def _count_padding(self, data: bytes) -> None:
        self.padding_length += len(data)
        if self.padding_is_zero and data.count(0) != len(data):
            self.padding_is_zero = False

    def _check_limit(self) -> None:
        if self.plaintext_length > self.max_inflated_bytes:
            raise ArchiveTooLargeError(
                f"{self.header.path}: the decompressed frame stream exceeds the limit of "
                f"{self.max_inflated_bytes} bytes (a gzip bomb guard); if the archive is "
                "trusted, raise max_inflated_bytes"
            )

    def _finish(self, second_mac: bytes, inflater: zlib._Decompress, partial_tail: bool) -> None:
        path = self.header.path
        if not hmac.compare_digest(second_mac, self._expected_mac):
            raise MacMismatchError(
                f"{path}: MAC mismatch on the second pass: the file changed while it was read"
            )
        if not inflater.eof:
            if self.pkcs7_valid is False:
                raise NotABackupError(
                    f"{path}: the MAC matches but the last AES block has invalid PKCS#7 padding "
                    "and the gzip member needs it; the archive was written incorrectly"
                )
            if partial_tail:
                raise TruncatedArchiveError(
                    f"{path}: the encrypted body is not a whole number of AES blocks and the "
                    "gzip member ends inside the partial block"
                )
            raise TruncatedArchiveError(
                f"{path}: the MAC matches but the gzip member is truncated: the compressed "
                "frame stream ends before its end marker"
            )
        if self.pkcs7_valid is False:
            log.warning("%s: invalid PKCS#7 padding after the gzip member (libsignal ignores it)", path)
        if not self.padding_is_zero:
            log.info("%s: %d bytes after the gzip member are not all zero", path, self.padding_length)
        self.complete = True
