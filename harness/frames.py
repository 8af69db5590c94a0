"""The frame stream: varint-length-delimited protobuf messages, read from chunks of bytes.

After decryption and decompression a backup is a sequence of messages, each preceded by its
length as an unsigned protobuf varint (at most 10 bytes, value below 2**32). Message 0 is the
BackupInfo, every later message a Frame. There is no count and no terminator.

``iter_messages`` reads any iterable of byte chunks (a file read in blocks, the decompressed
output of ``harness.archive.open_archive``) and yields each message as ``bytes``. A message may
span any number of chunks. ``open_frames`` opens a plain ``.binproto`` frame stream or an
encrypted archive and returns the same kind of iterator.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from harness.errors import MalformedFrameError, NotABackupError, TruncatedArchiveError, UsageError

log = logging.getLogger(__name__)

MAX_VARINT_BYTES = 10
MAX_MESSAGE_LENGTH = 2**32 - 1
READ_CHUNK_BYTES = 1 << 20
PROBE_BYTES = 1 << 16


def encode_varint(value: int) -> bytes:
    """Encode a non-negative integer as a protobuf base-128 varint."""
    if value < 0:
        raise ValueError(f"varint value must not be negative: {value}")
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_message(message_bytes: bytes) -> bytes:
    """Return one frame-stream entry: the varint length followed by the message bytes."""
    if len(message_bytes) > MAX_MESSAGE_LENGTH:
        raise ValueError(f"message of {len(message_bytes)} bytes is longer than 2**32 - 1")
    return encode_varint(len(message_bytes)) + message_bytes


def encode_messages(messages: Iterable[bytes]) -> Iterator[bytes]:
    """Encode each message as a frame-stream entry (lazy, for streaming writers)."""
    for message in messages:
        yield encode_message(message)


def decode_length(buffer: bytes | bytearray, position: int, frame_index: int, stream_offset: int) -> tuple[int, int] | None:
    """Decode the varint at ``position``; return (length, end) or None if the buffer ends first."""
    value = 0
    shift = 0
    end = len(buffer)
    cursor = position
    while True:
        if cursor >= end:
            if cursor - position >= MAX_VARINT_BYTES:
                break
            return None
        byte = buffer[cursor]
        cursor += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
        shift += 7
        if cursor - position >= MAX_VARINT_BYTES:
            raise MalformedFrameError(
                f"frame {frame_index} at byte offset {stream_offset}: length varint is longer than "
                f"{MAX_VARINT_BYTES} bytes; the frame stream is corrupt"
            )
    if value > MAX_MESSAGE_LENGTH:
        raise MalformedFrameError(
            f"frame {frame_index} at byte offset {stream_offset}: length {value} does not fit in "
            "32 bits; the frame stream is corrupt"
        )
    return value, cursor


def iter_messages(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Yield each varint-delimited message of a frame stream given as chunks of bytes.

    Raises MalformedFrameError for an over-long varint or a length of 2**32 or more, and
    TruncatedArchiveError when the stream ends inside a length or a message; both name the
    frame index (0 is the BackupInfo) and the byte offset of the frame's length prefix.
    """
    buffer = b""
    position = 0  # start of the next entry within buffer
    consumed = 0  # stream offset of buffer[0]
    frame_index = 0
    for chunk in chunks:
        if not chunk:
            continue
        if position < len(buffer):
            buffer = buffer[position:] + chunk
        else:
            buffer = bytes(chunk)
        consumed += position
        position = 0
        end = len(buffer)
        while position < end:
            # Fast path for the common one-byte length.
            length = buffer[position]
            if length < 0x80:
                start = position + 1
            else:
                decoded = decode_length(buffer, position, frame_index, consumed + position)
                if decoded is None:
                    break
                length, start = decoded
            stop = start + length
            if stop > end:
                break
            yield buffer[start:stop]
            frame_index += 1
            position = stop
    if position < len(buffer):
        offset = consumed + position
        decoded = decode_length(buffer, position, frame_index, offset)
        if decoded is None:
            raise TruncatedArchiveError(
                f"frame {frame_index} at byte offset {offset}: the stream ends inside the length "
                "prefix; the archive or frame stream is truncated"
            )
        length, start = decoded
        missing = start + length - len(buffer)
        raise TruncatedArchiveError(
            f"frame {frame_index} at byte offset {offset}: length {length} runs {missing} bytes "
            "past the end of the stream; the archive or frame stream is truncated"
        )


def read_file_chunks(path: str | os.PathLike[str], chunk_size: int = READ_CHUNK_BYTES) -> Iterator[bytes]:
    """Yield the bytes of a file in chunks."""
    with open(path, "rb") as stream:
        while chunk := stream.read(chunk_size):
            yield chunk


class ChunkStream:
    """The bytes of an opened frame stream, in chunks: an iterator that is also a context manager.

    Leaving the ``with`` block (or calling ``close``) releases the file and, for an archive,
    the decryption state, also when iteration stopped early.
    """

    def __init__(self, chunks: Iterable[bytes], resources: contextlib.ExitStack):
        self._chunks = iter(chunks)
        self._resources = resources

    def __iter__(self) -> ChunkStream:
        return self

    def __next__(self) -> bytes:
        return next(self._chunks)

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()
        self._resources.close()

    def __enter__(self) -> ChunkStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class FrameStream:
    """The messages of an opened frame stream: an iterator that is also a context manager."""

    def __init__(self, chunks: ChunkStream):
        self._chunks = chunks
        self._messages = iter_messages(chunks)

    def __iter__(self) -> FrameStream:
        return self

    def __next__(self) -> bytes:
        return next(self._messages)

    def close(self) -> None:
        self._messages.close()
        self._chunks.close()

    def __enter__(self) -> FrameStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_chunks(
    path: str | os.PathLike[str],
    recovery_key: str | None = None,
    aci: bytes | str | None = None,
    forward_secrecy_token: bytes | None = None,
    *,
    max_inflated_bytes: int | None = None,
) -> ChunkStream:
    """Open a frame stream and return its bytes in chunks; arguments as for ``open_frames``."""
    file_path = Path(path)
    if file_path.is_dir():
        raise UsageError(
            f"{file_path}: is a directory; pass the path of one backup archive or frame stream"
        )
    if not file_path.is_file():
        raise UsageError(
            f"{file_path}: file not found; pass the path of a backup archive or frame stream"
        )
    resources = contextlib.ExitStack()
    if recovery_key is None:
        if aci is not None or forward_secrecy_token is not None:
            raise UsageError("an ACI or forward-secrecy token is only used with a recovery key")
        _check_plain_stream(file_path)
        return ChunkStream(read_file_chunks(file_path), resources)
    if aci is None:
        raise UsageError("a recovery key needs the account's ACI as well; pass --aci UUID")
    # Imported here so that reading plain frame streams does not load the archive code.
    from harness import archive, keys

    aci_bytes = keys.parse_aci(aci) if isinstance(aci, str) else aci
    key = keys.MessageBackupKey.from_recovery_key(
        recovery_key, aci_bytes, forward_secrecy_token=forward_secrecy_token
    )
    options = {} if max_inflated_bytes is None else {"max_inflated_bytes": max_inflated_bytes}
    with resources:
        chunks = resources.enter_context(archive.open_archive(file_path, key, **options))
        return ChunkStream(chunks, resources.pop_all())


def open_frames(
    path: str | os.PathLike[str],
    recovery_key: str | None = None,
    aci: bytes | str | None = None,
    forward_secrecy_token: bytes | None = None,
    *,
    max_inflated_bytes: int | None = None,
) -> FrameStream:
    """Open a frame stream and return an iterator of its messages (BackupInfo first).

    Without a recovery key the file is read as a plain frame stream (the ``.binproto`` form).
    With one, it is an encrypted archive: ``harness.archive.open_archive`` verifies the MAC over
    the whole file before this returns, then decrypts and inflates as the messages are read.
    ``aci`` is the account's ACI (16 bytes or its UUID text) and is required with a recovery key.
    """
    return FrameStream(
        open_chunks(
            path, recovery_key, aci, forward_secrecy_token, max_inflated_bytes=max_inflated_bytes
        )
    )


def _check_plain_stream(path: Path) -> None:
    """Reject a file that is clearly not a plain frame stream before parsing it as frames."""
    from harness.archive import describe_other_content, looks_like_frame_stream

    with open(path, "rb") as stream:
        head = stream.read(PROBE_BYTES)
    if not head:
        raise NotABackupError(f"{path}: the file is empty, so it holds no frame stream")
    if head.startswith(b"SBACKUP"):
        raise UsageError(
            f"{path}: this is an encrypted backup archive; pass --recovery-key and --aci to decrypt it"
        )
    if looks_like_frame_stream(head) or _starts_with_backup_info(head):
        return
    other = describe_other_content(head)
    if other is not None:
        raise NotABackupError(f"{path}: not a frame stream: the file is {other}")
    raise NotABackupError(
        f"{path}: does not start with a BackupInfo message; if it is an encrypted archive "
        "(legacy layout), pass --recovery-key and --aci"
    )


def _starts_with_backup_info(head: bytes) -> bool:
    """Tell whether the first message parses as a BackupInfo with a 32-byte media root key."""
    from google.protobuf.message import DecodeError

    from harness.schema import BackupInfo

    try:
        first = next(iter_messages([head]))
        return len(BackupInfo.FromString(first).media_root_backup_key) == 32
    except (StopIteration, MalformedFrameError, TruncatedArchiveError, DecodeError):
        return False
