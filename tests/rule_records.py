"""Builders of hand-made archive records for the rule tests."""

from __future__ import annotations

import dataclasses
import hashlib
import os

from harness.model import AttachmentRecord, BackupInfoRecord, ChatItemRecord

BACKUP_TIME = 1_750_000_000_000
HOUR = 3_600_000
DAY = 24 * HOUR


def backup_info(backup_time_ms: int = BACKUP_TIME) -> BackupInfoRecord:
    return BackupInfoRecord(version=1, backup_time_ms=backup_time_ms, media_root_key=bytes(32))


def item(number: int = 1, chat_id: int = 3, **fields) -> ChatItemRecord:
    values = dict(
        frame_index=10 + number,
        item_number=number,
        chat_id=chat_id,
        author_id=2,
        date_sent=BACKUP_TIME - 10 * DAY + number,
        direction="incoming",
        kind="standard",
        text="hello",
    )
    values.update(fields)
    return ChatItemRecord(**values)


def transit_attachment(**fields) -> AttachmentRecord:
    values = dict(
        role="attachment",
        content_type="image/jpeg",
        file_name="photo.jpg",
        size=1234,
        key=os.urandom(64),
        plaintext_hash=hashlib.sha256(b"photo").digest(),
        transit_cdn_key="abcdefghijklmnopqrst",
        transit_cdn_number=3,
        transit_upload_ms=BACKUP_TIME - DAY,
    )
    values.update(fields)
    return AttachmentRecord(**values)


def media_tier_attachment(**fields) -> AttachmentRecord:
    return dataclasses.replace(transit_attachment(**fields), media_tier_cdn_number=3)


def run(rule, *records):
    """Feed records to a rule in stream order and return its findings."""
    for record in records:
        if isinstance(record, BackupInfoRecord):
            rule.backup_info(record)
        else:
            rule.chat_item(record)
    rule.end()
    return rule.findings
