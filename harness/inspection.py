"""Read one backup file through ``BackupSummary`` and ``ValidityChecker`` (the core of ``inspect``).

``inspect_file`` gives the same summary and findings as ``reader.scan`` with those two visitors,
but handles the most common chat item, an incoming standard message with only text, in batches:

* Consecutive chat-item frames are joined into one byte string and parsed twice in C, as
  ``KeyBatch`` (per item: chat, author, direction, text present) and as ``ColumnBatch`` (all
  items merged, so each field becomes a column). Empty columns prove that no item of the batch
  has anything else (timers, attachments, revisions, quotes, unknown fields ...), the column
  maxima check the timestamps, and each distinct (chat, author, direction) is checked once
  against the recipients and chats seen so far.
* Any batch that is not entirely of that shape is halved until the odd frames are found; those
  frames, and every other frame, go through ``reader.FrameDecoder`` one by one.

Decryption and decompression run in a second thread (``cryptography`` and ``zlib`` release the
GIL), so they overlap with parsing.
"""

from __future__ import annotations

import collections
import logging
import os
import queue
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from google.protobuf.message import DecodeError
from google.protobuf.unknown_fields import UnknownFieldSet

from harness.errors import NotABackupError, TruncatedArchiveError
from harness.frames import decode_length, open_chunks
from harness.model import ChatItemRecord
from harness.reader import PROGRESS_EVERY_FRAMES, FrameDecoder
from harness.schema.views import ColumnBatch, KeyBatch
from harness.summary import BackupSummary
from harness.validity import MAX_TIMESTAMP_MS, Purpose, ValidityChecker

log = logging.getLogger(__name__)

CHAT_ITEM_TAG = 0x22  # Frame field 4 (chatItem), wire type 2
# Below this many frames a batch that is not all plain text is decoded frame by frame.
MIN_SPLIT_FRAMES = 8
PREFETCH_CHUNKS = 4

# Columns that must be empty for a batch to take the fast path.
_ITEM_COLUMNS_ABSENT = (
    "expire_start_date", "expires_in_ms", "revisions", "outgoing", "directionless",
    "contact_message", "sticker_message", "remote_deleted_message", "update_message",
    "payment_notification", "gift_badge", "view_once_message", "direct_story_reply_message",
    "poll", "pin_details", "admin_deleted_message",
)  # fmt: skip
_STANDARD_COLUMNS_ABSENT = ("quote", "attachments", "link_preview", "long_text", "reactions")


def inspect_file(
    path: str | os.PathLike[str],
    *,
    recovery_key: str | None = None,
    aci: bytes | None = None,
    forward_secrecy_token: bytes | None = None,
    purpose: Purpose = Purpose.REMOTE_BACKUP,
    max_inflated_bytes: int | None = None,
) -> BackupSummary:
    """Return the summary of a backup file with the validity findings attached.

    Raises the ArchiveError subclasses of harness.errors when the file cannot be read.
    """
    summary = BackupSummary()
    checker = ValidityChecker(purpose)
    with open_chunks(
        path, recovery_key, aci, forward_secrecy_token, max_inflated_bytes=max_inflated_bytes
    ) as chunks:
        with Prefetcher(chunks) as prefetched:
            BatchInspector(summary, checker).run(prefetched)
    summary.findings = checker.findings
    return summary


class Prefetcher:
    """Iterates a chunk iterator in a background thread, a few chunks ahead of the consumer.

    Errors raised by the source are re-raised by the consumer at the same position. Leaving
    the ``with`` block stops the thread before the source is closed.
    """

    _DONE = object()

    def __init__(self, chunks: Iterable[bytes], depth: int = PREFETCH_CHUNKS):
        self._source = iter(chunks)
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name="archive-prefetch", daemon=True)

    def __enter__(self) -> Iterator[bytes]:
        self._thread.start()
        return self._consume()

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get(timeout=0.05)
            except queue.Empty:
                pass
        self._thread.join()

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        try:
            for chunk in self._source:
                if not self._put(chunk):
                    return
        except BaseException as error:  # handed to the consumer thread, which re-raises it
            self._put(error)
            return
        self._put(self._DONE)

    def _consume(self) -> Iterator[bytes]:
        while True:
            item = self._queue.get()
            if item is self._DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]


class BatchInspector:
    """Splits a frame stream into frames and feeds them to the summary and the checker."""

    def __init__(self, summary: BackupSummary, checker: ValidityChecker):
        self.summary = summary
        self.checker = checker
        self.decoder = FrameDecoder([summary, checker])
        # (chat id, author id, direction) -> whether a plain text item with them is valid.
        self._valid_keys: dict[tuple[int, int, str | None], bool] = {}
        self._fast_items = 0

    # ---- splitting -------------------------------------------------------------------------

    def run(self, chunks: Iterable[bytes]) -> None:
        """Read every frame of the stream; raise the frame errors of ``harness.frames``."""
        buffer = b""
        position = 0
        consumed = 0
        frame_index = -1  # index of the last frame read; 0 is the BackupInfo
        for chunk in chunks:
            if not chunk:
                continue
            buffer = buffer[position:] + chunk if position < len(buffer) else chunk
            consumed += position
            position, frame_index = self._split(buffer, consumed, frame_index)
        if position < len(buffer):
            self._raise_truncated(buffer, position, consumed, frame_index + 1)
        if frame_index < 0:
            raise NotABackupError("the frame stream is empty: no BackupInfo found")
        log.info("read %d frames (%d plain text items in batches)", frame_index, self._fast_items)
        self.decoder.end()

    def _split(self, buffer: bytes, consumed: int, frame_index: int) -> tuple[int, int]:
        """Handle every whole frame in ``buffer``; return where the rest starts and the last index."""
        end = len(buffer)
        position = 0
        while position < end:
            run_start = position
            position, frames = _chat_item_run(buffer, position, end)
            if frames:
                self._batch(frames, frame_index + 1)
                frame_index += len(frames)
                continue
            length = buffer[position]
            if length < 0x80:
                start = position + 1
            else:
                decoded = decode_length(buffer, position, frame_index + 1, consumed + position)
                if decoded is None:
                    break
                length, start = decoded
            stop = start + length
            if stop > end:
                position = run_start
                break
            frame_index += 1
            position = stop
            self._single(buffer[start:stop], frame_index)
        return position, frame_index

    @staticmethod
    def _raise_truncated(buffer: bytes, position: int, consumed: int, frame_index: int) -> None:
        offset = consumed + position
        decoded = decode_length(buffer, position, frame_index, offset)
        if decoded is None:
            raise TruncatedArchiveError(
                f"frame {frame_index} at byte offset {offset}: the stream ends inside the "
                "length prefix; the archive or frame stream is truncated"
            )
        length, start = decoded
        raise TruncatedArchiveError(
            f"frame {frame_index} at byte offset {offset}: length {length} runs "
            f"{start + length - len(buffer)} bytes past the end of the stream; the archive or "
            "frame stream is truncated"
        )

    # ---- one frame at a time ----------------------------------------------------------------

    def _single(self, data: bytes, frame_index: int) -> None:
        if frame_index == 0:
            self.decoder.backup_info(data)
            return
        kind = self.decoder.frame(data, frame_index)
        if kind != "chat_item":
            # A recipient or chat may change what a (chat, author) pair means.
            self._valid_keys.clear()
        if frame_index % PROGRESS_EVERY_FRAMES == 0:
            log.info("read %d frames", frame_index)

    # ---- batches of chat items --------------------------------------------------------------

    def _batch(self, frames: list[bytes], first_index: int) -> None:
        if first_index == 0:
            # Frame 0 is the BackupInfo, whichever byte it starts with.
            self._single(frames[0], 0)
            frames, first_index = frames[1:], 1
            if not frames:
                return
        columns = _plain_text_columns(frames)
        if columns is None:
            if len(frames) < MIN_SPLIT_FRAMES:
                for offset, data in enumerate(frames):
                    self._single(data, first_index + offset)
                return
            half = len(frames) // 2
            self._batch(frames[:half], first_index)
            self._batch(frames[half:], first_index + half)
            return
        chat_ids, author_ids = columns
        validity = {
            pair: self._key_is_valid((pair[0], pair[1], "incoming"))
            for pair in set(zip(chat_ids, author_ids))
        }
        if all(validity.values()):
            self._count_plain_items(chat_ids)
            return
        for offset, pair in enumerate(zip(chat_ids, author_ids)):
            if validity[pair]:
                self._count_plain_items([pair[0]])
            else:
                self._single(frames[offset], first_index + offset)

    def _key_is_valid(self, key: tuple[int, int, str | None]) -> bool:
        valid = self._valid_keys.get(key)
        if valid is None:
            chat_id, author_id, direction = key
            probe = ChatItemRecord(
                frame_index=0, item_number=0, chat_id=chat_id, author_id=author_id,
                date_sent=0, direction=direction, kind="standard", text="", has_text=True,
            )  # fmt: skip
            valid = self._valid_keys[key] = not self.checker.item_findings(probe)
        return valid

    def _count_plain_items(self, chat_ids: Sequence[int]) -> None:
        counts = self.decoder.item_counts
        for chat_id, number in collections.Counter(chat_ids).items():
            counts[chat_id] = counts.get(chat_id, 0) + number
        self.summary.add_chat_items("standard", len(chat_ids))
        before = self._fast_items
        self._fast_items += len(chat_ids)
        if before // PROGRESS_EVERY_FRAMES != self._fast_items // PROGRESS_EVERY_FRAMES:
            log.info("read %d plain text items", self._fast_items)


def _chat_item_run(buffer: bytes, position: int, end: int) -> tuple[int, list[bytes]]:
    """Collect the consecutive whole chat-item frames from ``position`` on (lengths below 2**14).

    Returns the position after the run and the frames without their length prefixes.
    """
    frames: list[bytes] = []
    append = frames.append
    last = end - 2
    while position < last:
        length = buffer[position]
        if length < 0x80:
            start = position + 1
        else:
            high = buffer[position + 1]
            if high >= 0x80:
                break
            length = (length & 0x7F) | (high << 7)
            start = position + 2
        stop = start + length
        # An empty frame read here as a chat item only fails the batch check, which then
        # decodes it alone; its boundary is still right.
        if stop > end or buffer[start] != CHAT_ITEM_TAG:
            break
        append(buffer[start:stop])
        position = stop
    return position, frames


def _plain_text_columns(frames: list[bytes]) -> tuple[Sequence[int], Sequence[int]] | None:
    """Return the chat id and author id of each frame if all are incoming plain text items.

    Plain text means: an incoming standard message whose only content is a Text without body
    ranges, no timer, no revisions, no pin, no unknown fields, timestamps in libsignal's range.
    """
    blob = b"".join(frames)
    count = len(frames)
    try:
        keys = KeyBatch.FromString(blob)
        columns = ColumnBatch.FromString(blob)
    except DecodeError:
        return None  # the frame-by-frame path names the invalid frame
    # One chat item per frame and no identifying field repeated inside an item: a column with
    # one entry per frame then has exactly one entry from each item, in frame order. So every
    # item has a chat, an author, incoming details with a receive date and a non-empty body.
    if len(keys.chat_item) != count or keys.ByteSize() != len(blob):
        return None
    item = columns.chat_item
    for column in (item.chat_id, item.author_id, item.incoming.date_received, item.standard_message.text.body):
        if len(column) != count:
            return None
    if not _columns_are_plain_text(columns):
        return None
    return item.chat_id, item.author_id


def _columns_are_plain_text(columns: Any) -> bool:
    """Tell whether the merged columns hold nothing but plain text with sane timestamps."""
    item = columns.chat_item
    incoming = item.incoming
    standard = item.standard_message
    text = standard.text
    for message in (columns, item, incoming, standard, text):
        if len(UnknownFieldSet(message)):
            return False
    for name in _ITEM_COLUMNS_ABSENT:
        if len(getattr(item, name)):
            return False
    for name in _STANDARD_COLUMNS_ABSENT:
        if len(getattr(standard, name)):
            return False
    if len(text.body_ranges):
        return False
    for column in (item.date_sent, incoming.date_received, incoming.date_server_sent):
        if column and max(column) > MAX_TIMESTAMP_MS:
            return False
    return True
