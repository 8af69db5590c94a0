"""View-once messages in a remote backup: tombstones only.

A view-once message is kept as a ``ViewOnceMessage`` with no attachment, and a quote of one
has quote type VIEW_ONCE and no quoted attachments (Android ChatItemArchiveExporter
``toRemoteQuote``; per the product blog, view-once media is not part of a restore).
"""

from __future__ import annotations

from harness.model import ChatItemRecord
from harness.rules.base import Rule, describe_attachment


class ViewOnceRule(Rule):
    """Find view-once content that a remote backup must not contain."""

    def __init__(self) -> None:
        super().__init__()
        # (chat id, date sent) of every view-once message seen, to recognise quotes of them.
        # Memory grows with the number of view-once messages only, not with the archive.
        self._view_once_sent: set[tuple[int, int]] = set()

    def chat_item(self, record: ChatItemRecord) -> None:
        if record.kind == "view_once":
            self._view_once_sent.add((record.chat_id, record.date_sent))
            self._check_tombstone(record)
        if record.quote_type is not None:
            self._check_quote(record)

    def _check_tombstone(self, record: ChatItemRecord) -> None:
        if record.view_once_has_attachment:
            self.report_item(
                record, "view-once.attachment", "view-once attachment present (expected a tombstone)"
            )
        for attachment in record.attachments:
            if attachment.role == "view_once" and not record.view_once_has_attachment:
                self.report_item(
                    record,
                    "view-once.attachment",
                    f"view-once {describe_attachment(attachment)} present (expected a tombstone)",
                )

    def _check_quote(self, record: ChatItemRecord) -> None:
        quotes_view_once = record.quote_type == "view_once"
        target = (record.chat_id, record.quote_target_sent)
        if not quotes_view_once and record.quote_target_sent is not None:
            if target in self._view_once_sent:
                self.report_item(
                    record,
                    "view-once.quote-type",
                    f"quote of the view-once message sent {record.quote_target_sent} has type "
                    f"{record.quote_type}, expected view_once",
                )
                quotes_view_once = True
        if not quotes_view_once:
            return
        if record.quoted_attachment_count:
            self.report_item(
                record,
                "view-once.quote-attachment",
                f"quote of a view-once message carries {record.quoted_attachment_count} quoted "
                "attachment(s), expected none",
            )
        thumbnails = [a for a in record.attachments if a.role == "quote_thumbnail"]
        for thumbnail in thumbnails:
            self.report_item(
                record,
                "view-once.quote-thumbnail",
                f"quote of a view-once message carries {describe_attachment(thumbnail)}",
            )
