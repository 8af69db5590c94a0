"""Shared base of the archive rules: a visitor that collects located findings."""

from __future__ import annotations

from harness.model import (
    AttachmentRecord,
    BackupInfoRecord,
    ChatItemRecord,
    ChatRecord,
    Finding,
    RecipientRecord,
)


class Rule:
    """An archive visitor that emits findings; subclasses override the callbacks they need."""

    def __init__(self) -> None:
        self.findings: list[Finding] = []

    # ArchiveVisitor callbacks; the defaults ignore the record.
    def backup_info(self, record: BackupInfoRecord) -> None:
        pass

    def recipient(self, record: RecipientRecord) -> None:
        pass

    def chat(self, record: ChatRecord) -> None:
        pass

    def chat_item(self, record: ChatItemRecord) -> None:
        pass

    def other_frame(self, frame_index: int, kind: str) -> None:
        pass

    def unknown_field(self, frame_index: int, path: str, tag: int) -> None:
        pass

    def end(self) -> None:
        pass

    def report_item(
        self, record: ChatItemRecord, rule: str, text: str, severity: str = "error"
    ) -> None:
        """Add a finding on a chat item: "chat 3, item 57: <text>"."""
        message = f"chat {record.chat_id}, item {record.item_number}: {text}"
        self.findings.append(Finding(rule, message, record.location(), severity))

    def report(self, rule: str, message: str, location: str = "", severity: str = "error") -> None:
        self.findings.append(Finding(rule, message, location, severity))


def describe_attachment(attachment: AttachmentRecord) -> str:
    """Name an attachment for a finding without showing its bytes: role, then file name or type."""
    label = attachment.file_name or attachment.content_type or "unnamed"
    return f"{attachment.role.replace('_', ' ')} '{label}'"
