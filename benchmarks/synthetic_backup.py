"""Synthetic backups for benchmarks: one chat with N incoming text messages of ten random words.

The stream is valid for libsignal (purpose RemoteBackup): BackupInfo, AccountData, Self, one
contact, its chat, then the chat items. Words come from a seeded generator, so two runs with the
same arguments write the same frame stream (archives differ by their random IV).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

from harness import schema
from harness.archive import ArchiveWriter
from harness.frames import encode_message
from harness.keys import MessageBackupKey, parse_aci

RECOVERY_KEY = "benchmarkrecoverykey0000000000000000000000000000000000000000000a"
ACI = "11111111-2222-4333-8444-555555555555"
BACKUP_TIME_MS = 1_750_000_000_000
WORDS_PER_MESSAGE = 10
VOCABULARY_SIZE = 5000
BATCH_BYTES = 1 << 20


def _vocabulary(rng: random.Random) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choices(letters, k=rng.randint(3, 11))) for _ in range(VOCABULARY_SIZE)]


def header_messages() -> list[bytes]:
    """Return BackupInfo, AccountData, Self (id 1), contact (id 2) and chat (id 1)."""
    info = schema.BackupInfo(
        version=1,
        backup_time_ms=BACKUP_TIME_MS,
        media_root_backup_key=bytes(range(32)),
        current_app_version="Benchmark 1.0",
        first_app_version="Benchmark 1.0",
    )
    account = schema.Frame()
    account.account.profile_key = b"\x61" * 32
    settings = account.account.account_settings
    settings.phone_number_sharing_mode = settings.NOBODY
    settings.default_sent_media_quality = settings.STANDARD
    settings.app_theme = settings.SYSTEM
    settings.calls_use_less_data_setting = settings.MOBILE_DATA_ONLY
    self_frame = schema.Frame()
    self_frame.recipient.id = 1
    self_frame.recipient.self.SetInParent()
    contact = schema.Frame()
    contact.recipient.id = 2
    contact.recipient.contact.aci = bytes.fromhex("000a11ce000040008000000000000001")
    contact.recipient.contact.registered.SetInParent()
    chat = schema.Frame()
    chat.chat.id = 1
    chat.chat.recipient_id = 2
    return [m.SerializeToString() for m in (info, account, self_frame, contact, chat)]


def chat_item_messages(count: int, seed: int = 1) -> Iterator[bytes]:
    """Yield ``count`` incoming text chat items (ten random words each) in chat 1."""
    rng = random.Random(seed)
    words = _vocabulary(rng)
    frame = schema.Frame()
    item = frame.chat_item
    item.chat_id = 1
    item.author_id = 2
    item.incoming.read = True
    item.incoming.sealed_sender = True
    text = item.standard_message.text
    start = BACKUP_TIME_MS - count * 1000
    for number in range(count):
        item.date_sent = start + number * 1000
        item.incoming.date_received = item.date_sent + 500
        item.incoming.date_server_sent = item.date_sent + 200
        text.body = " ".join(rng.choices(words, k=WORDS_PER_MESSAGE))
        yield frame.SerializeToString()


def frame_stream_chunks(items: int, seed: int = 1) -> Iterator[bytes]:
    """Yield the whole frame stream in chunks of about BATCH_BYTES."""
    batch: list[bytes] = []
    size = 0
    for message in [*header_messages(), *chat_item_messages(items, seed)]:
        entry = encode_message(message)
        batch.append(entry)
        size += len(entry)
        if size >= BATCH_BYTES:
            yield b"".join(batch)
            batch, size = [], 0
    if batch:
        yield b"".join(batch)


def write_plain(path: Path, items: int, seed: int = 1) -> int:
    """Write a plain frame stream; return its size in bytes."""
    total = 0
    with open(path, "wb") as out:
        for chunk in frame_stream_chunks(items, seed):
            out.write(chunk)
            total += len(chunk)
    return total


def write_encrypted(path: Path, items: int, seed: int = 1) -> int:
    """Write a legacy-layout archive under RECOVERY_KEY and ACI; return the plaintext size."""
    key = MessageBackupKey.from_recovery_key(RECOVERY_KEY, parse_aci(ACI))
    total = 0
    with ArchiveWriter(path, key, layout="legacy") as writer:
        for chunk in frame_stream_chunks(items, seed):
            writer.write(chunk)
            total += len(chunk)
    return total
