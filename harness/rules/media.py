"""Media pointers by backup tier.

Free tier: every attachment with content points at the transit tier (``transitCdnKey`` and
``transitCdnNumber``) and none carries a media-tier CDN number, because a free client never
copies to the media tier. Paid tier: every attachment with content is media-tier eligible,
which means ``plaintextHash`` is present (the media name is derived from it).

On the free tier, transit objects live for the free-tier media window only; attachments
uploaded before ``backup time - window`` will not restore. They are reported as warnings
and listed in ``beyond_free_window``.
"""

from __future__ import annotations

from harness.model import AttachmentRecord, BackupInfoRecord, ChatItemRecord
from harness.rules.base import Rule, describe_attachment
from harness.rules.constants import DAY_MS, FREE_TIER_MEDIA_DAYS, TIERS


class MediaTierRule(Rule):
    """Check every attachment pointer against the tier the backup was made on."""

    def __init__(
        self,
        tier: str,
        free_window_days: int = FREE_TIER_MEDIA_DAYS,
        backup_time_ms: int | None = None,
    ) -> None:
        super().__init__()
        if tier not in TIERS:
            raise ValueError(f"unknown backup tier {tier!r}; expected one of {TIERS}")
        self.tier = tier
        self.free_window_days = free_window_days
        self.backup_time_ms = backup_time_ms
        # (location, attachment) of free-tier attachments older than the window.
        self.beyond_free_window: list[tuple[str, AttachmentRecord]] = []

    def backup_info(self, record: BackupInfoRecord) -> None:
        if self.backup_time_ms is None and record.backup_time_ms > 0:
            self.backup_time_ms = record.backup_time_ms

    def chat_item(self, record: ChatItemRecord) -> None:
        for attachment in record.attachments:
            # View-once content is the view-once rule's business; an empty key is the
            # "no content" tombstone locator, which every tier may carry.
            if attachment.role == "view_once" or not attachment.has_content:
                continue
            if self.tier == "free":
                self._check_free(record, attachment)
            else:
                self._check_paid(record, attachment)

    def _check_free(self, record: ChatItemRecord, attachment: AttachmentRecord) -> None:
        name = describe_attachment(attachment)
        if attachment.media_tier_cdn_number is not None:
            self.report_item(
                record,
                "media.free-media-tier",
                f"{name} has a media-tier locator (cdn {attachment.media_tier_cdn_number}) "
                "in a free-tier backup",
            )
        if not attachment.on_transit_tier:
            self.report_item(
                record,
                "media.free-no-transit",
                f"{name} has no transit-tier locator, so a free-tier restore cannot fetch it",
            )
            return
        self._check_window(record, attachment, name)

    def _check_window(self, record: ChatItemRecord, attachment: AttachmentRecord, name: str) -> None:
        uploaded = attachment.transit_upload_ms
        if uploaded is None or self.backup_time_ms is None:
            return
        window_start = self.backup_time_ms - self.free_window_days * DAY_MS
        if uploaded < window_start:
            age_days = (self.backup_time_ms - uploaded) // DAY_MS
            self.beyond_free_window.append((record.location(), attachment))
            self.report_item(
                record,
                "media.beyond-free-window",
                f"{name} was uploaded {age_days} days before the backup, outside the "
                f"{self.free_window_days}-day free-tier window; it will not restore",
                severity="warning",
            )

    def _check_paid(self, record: ChatItemRecord, attachment: AttachmentRecord) -> None:
        if not attachment.plaintext_hash:
            self.report_item(
                record,
                "media.paid-not-eligible",
                f"{describe_attachment(attachment)} has no plaintextHash, so it cannot be in "
                "the media tier of a paid backup",
            )
