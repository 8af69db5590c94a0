"""Copy of a transit object into the media tier, with the second encryption layer.

The stored object is IV (16 random bytes) || AES-256-CBC with PKCS#7 padding of the source
bytes || HMAC-SHA256 over IV and ciphertext, keyed with the client's ``encryptionKey`` and
``hmacKey``. Upstream does this inside a storage manager that is not public, so the MAC
coverage is an assumption. The copy streams in 1 MiB chunks.

Quota (upstream's getCopyQuota): items are walked in request order, and the longest prefix
whose destination sizes fit in what is left of ``media_quota_bytes`` is copied. Every later
item is rejected with 413, even one small enough to fit.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from dataclasses import dataclass

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from server_stub.models import CopyMediaRequest
from server_stub.objects import CHUNK, InvalidObjectPath
from server_stub.state import StubState
from server_stub.storage import BackupRecord

log = logging.getLogger(__name__)

IV_LENGTH = 16
MAC_LENGTH = 32
DAY = 86400


def destination_size(source_length: int) -> int:
    """Return the size of the stored object for a source of ``source_length`` bytes."""
    return IV_LENGTH + 16 * ((source_length + 16) // 16) + MAC_LENGTH


@dataclass(frozen=True)
class CopyOutcome:
    status: int
    failure_reason: str | None
    media_id: str

    def to_json(self) -> dict[str, object]:
        return {
            "status": self.status,
            "failureReason": self.failure_reason,
            "cdn": 3 if self.status == 200 else None,
            "mediaId": self.media_id,
        }


def transit_object_alive(state: StubState, key: str) -> bool:
    """False when a transit object is missing or older than the free-tier media window."""
    try:
        if not state.objects.exists(f"attachments/{key}"):
            return False
    except InvalidObjectPath:
        return False
    created_at = state.db.transit_created_at(key)
    if created_at is None:
        # A file with no row (a crash between rename and insert) counts as new from now.
        state.db.add_transit_object(key, int(state.clock.now()))
        return True
    return created_at >= state.clock.now() - state.config.free_tier_media_days * DAY


def encrypt_copy(state: StubState, source: str, destination: str, hmac_key: bytes, aes_key: bytes) -> int:
    """Write the double-encrypted copy of ``source`` to ``destination``; return its size."""
    iv = os.urandom(IV_LENGTH)
    encryptor = Cipher(algorithms.AES(aes_key), modes.CBC(iv)).encryptor()
    padder = padding.PKCS7(128).padder()
    mac = hmac.new(hmac_key, iv, hashlib.sha256)
    size = IV_LENGTH
    with state.objects.open_read(source) as reader, state.objects.writer(destination) as writer:
        writer.write(iv)
        while chunk := reader.read(CHUNK):
            encrypted = encryptor.update(padder.update(chunk))
            mac.update(encrypted)
            writer.write(encrypted)
            size += len(encrypted)
        encrypted = encryptor.update(padder.finalize()) + encryptor.finalize()
        mac.update(encrypted)
        writer.write(encrypted)
        writer.write(mac.digest())
        size += len(encrypted) + MAC_LENGTH
    return size


def copy_items(state: StubState, record: BackupRecord, items: list[CopyMediaRequest]) -> list[CopyOutcome]:
    """Copy each item in order under the quota rule; one outcome per item."""
    remaining = state.config.media_quota_bytes - record.media_bytes
    outcomes: list[CopyOutcome] = []
    quota_exhausted = False
    for item in items:
        needed = destination_size(item.objectLength)
        if quota_exhausted or needed > remaining:
            quota_exhausted = True
            outcomes.append(CopyOutcome(413, "Media quota exhausted", item.mediaId))
            continue
        outcome = copy_one(state, record, item)
        if outcome.status == 200:
            remaining -= needed
        outcomes.append(outcome)
    return outcomes


def copy_one(state: StubState, record: BackupRecord, item: CopyMediaRequest) -> CopyOutcome:
    source_key = item.sourceAttachment.key
    source = f"attachments/{source_key}"
    if item.sourceAttachment.cdn not in state.config.copy_source_cdns or not transit_object_alive(state, source_key):
        return CopyOutcome(410, "Source not found", item.mediaId)
    if state.objects.size(source) != item.objectLength:
        return CopyOutcome(400, "Invalid source length", item.mediaId)
    destination = f"backups/{record.backup_dir}/{record.media_dir}/{item.mediaId}"
    previous = state.objects.size(destination)
    try:
        size = encrypt_copy(state, source, destination, item.hmacKey, item.encryptionKey)
    except FileNotFoundError:
        return CopyOutcome(410, "Source not found", item.mediaId)
    state.db.add_media_usage(record.hashed_id, size - (previous or 0), 0 if previous is not None else 1)
    log.info("media %s copied from %s (%d bytes)", item.mediaId, source_key, size)
    return CopyOutcome(200, None, item.mediaId)
