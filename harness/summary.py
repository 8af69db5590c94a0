"""``BackupSummary``: a visitor that counts what an archive contains, for ``inspect`` and reports."""

from __future__ import annotations

import collections
from typing import Any

from harness.model import (
    AccountRecord,
    AttachmentRecord,
    BackupInfoRecord,
    ChatItemRecord,
    ChatRecord,
    Finding,
    RecipientRecord,
)

TIERS = ("media", "transit", "none")


def attachment_tier(attachment: AttachmentRecord) -> str:
    """Classify an attachment: "media" when it has a plaintext hash (eligible for the media tier,
    whether or not a transit copy exists too), else "transit" with a transit CDN key, else "none"."""
    if attachment.plaintext_hash:
        return "media"
    if attachment.transit_cdn_key is not None:
        return "transit"
    return "none"


class BackupSummary:
    """Counts frames, recipients, chats, chat items by kind, view-once and disappearing items,
    attachments by tier and unknown fields. ``findings`` is filled by the caller (for example
    with a ``ValidityChecker``'s findings) and included in ``to_json``."""

    def __init__(self) -> None:
        self.version = 0
        self.backup_time_ms = 0
        self.current_app_version = ""
        self.first_app_version = ""
        self.frames = 0
        self.accounts = 0
        self.recipients: collections.Counter[str] = collections.Counter()
        self.chats = 0
        self.chat_items = 0
        self.chat_items_by_kind: collections.Counter[str] = collections.Counter()
        self.view_once = 0
        self.view_once_with_attachment = 0
        self.disappearing = 0
        self.attachments: collections.Counter[str] = collections.Counter()
        self.other_frames: collections.Counter[str] = collections.Counter()
        self.unknown_fields = 0
        self.findings: list[Finding] = []

    def backup_info(self, record: BackupInfoRecord) -> None:
        self.version = record.version
        self.backup_time_ms = record.backup_time_ms
        self.current_app_version = record.current_app_version
        self.first_app_version = record.first_app_version

    def account(self, record: AccountRecord) -> None:
        self.frames += 1
        self.accounts += 1

    def recipient(self, record: RecipientRecord) -> None:
        self.frames += 1
        self.recipients[record.kind or "empty"] += 1

    def chat(self, record: ChatRecord) -> None:
        self.frames += 1
        self.chats += 1

    def chat_item(self, record: ChatItemRecord) -> None:
        self.frames += 1
        self.chat_items += 1
        kind = record.kind or "empty"
        self.chat_items_by_kind[kind] += 1
        if kind == "view_once":
            self.view_once += 1
            if record.view_once_has_attachment:
                self.view_once_with_attachment += 1
        if record.expires_in_ms is not None:
            self.disappearing += 1
        for attachment in record.attachments:
            self.attachments[attachment_tier(attachment)] += 1

    def add_chat_items(self, kind: str, count: int) -> None:
        """Count ``count`` chat items of ``kind`` with no view-once body, no timer and no
        attachments, without a record each (the fast path of ``harness.inspection``)."""
        self.frames += count
        self.chat_items += count
        self.chat_items_by_kind[kind] += count

    def other_frame(self, frame_index: int, kind: str) -> None:
        self.frames += 1
        self.other_frames[kind] += 1

    def unknown_field(self, frame_index: int, path: str, tag: int) -> None:
        self.unknown_fields += 1

    def end(self) -> None:
        pass

    def to_json(self) -> dict[str, Any]:
        """Return the summary as a JSON-ready dict (counts, app versions and findings)."""
        attachments = {tier: self.attachments.get(tier, 0) for tier in TIERS}
        return {
            "version": self.version,
            "backup_time_ms": self.backup_time_ms,
            "current_app_version": self.current_app_version,
            "first_app_version": self.first_app_version,
            "frames": self.frames,
            "accounts": self.accounts,
            "recipients": sum(self.recipients.values()),
            "recipients_by_kind": dict(sorted(self.recipients.items())),
            "chats": self.chats,
            "chat_items": self.chat_items,
            "chat_items_by_kind": dict(sorted(self.chat_items_by_kind.items())),
            "view_once": self.view_once,
            "view_once_with_attachment": self.view_once_with_attachment,
            "disappearing": self.disappearing,
            "attachments": {"total": sum(attachments.values()), **attachments},
            "other_frames": dict(sorted(self.other_frames.items())),
            "unknown_fields": self.unknown_fields,
            "findings": [finding.to_json() for finding in self.findings],
        }
