"""Export the message store as a frame stream: a full snapshot, with the remote-backup rules.

The stream is BackupInfo, then AccountData, recipients, chats, chat items (in the store's
global order) and the remaining frames (sticker packs, ad-hoc calls, notification profiles,
chat folders). Each frame starts from the serialized frame kept in the store and gets the
modelled columns written over it, so content restored from another client comes out
unchanged. Exclusion rules are in ``exclusion.py``.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from harness import schema
from harness.frames import encode_message
from reference_app.defects import Defects
from reference_app.exclusion import Decision, decide

log = logging.getLogger(__name__)

APP_VERSION = "ReferenceApp 1.0.0"
FREE_TIER_DEFECT_WINDOW_MS = 30 * 86_400_000
PAID_BACKUP_TIER = 201
MEDIA_TIER_CDN = 3


@dataclass(frozen=True)
class ExportOptions:
    backup_time_ms: int
    media_root_key: bytes = field(repr=False)
    policy: str = "android"
    tier: str = "free"
    defects: Defects = field(default_factory=Defects)
    apply_rules: bool = True  # False: a plain dump (not used for remote backups)


@dataclass
class ExportedAttachment:
    """An attachment whose pointer is in the archive (the paid tier copies these)."""

    attachment_id: int
    chat_item_id: int


@dataclass
class ExportStats:
    frames: int = 0
    chat_items: int = 0
    excluded: dict[str, int] = field(default_factory=dict)
    tombstoned: int = 0
    attachments: list[ExportedAttachment] = field(default_factory=list)
    item_keys: list[tuple[int, int, int]] = field(default_factory=list)

    def exclude(self, reason: str) -> None:
        self.excluded[reason] = self.excluded.get(reason, 0) + 1


def set_optional(message: Any, name: str, value: Any) -> None:
    """Set an explicit-presence field, or clear it when ``value`` is None."""
    if value is None:
        message.ClearField(name)
    else:
        setattr(message, name, value)


def write_locator(locator: Any, row: sqlite3.Row | dict[str, Any]) -> None:
    """Write the modelled LocatorInfo fields of an attachment row over ``locator``."""
    locator.key = row["key"] or b""
    locator.size = row["size"] or 0
    set_optional(locator, "transit_cdn_key", row["transit_cdn_key"])
    set_optional(locator, "transit_cdn_number", row["transit_cdn_number"])
    set_optional(locator, "transit_tier_upload_timestamp", row["transit_upload_ms"])
    set_optional(locator, "media_tier_cdn_number", row["media_tier_cdn_number"])
    if row["plaintext_hash"] is not None:
        locator.plaintext_hash = row["plaintext_hash"]
    elif row["encrypted_digest"] is not None:
        locator.encrypted_digest = row["encrypted_digest"]
    else:
        locator.ClearField("integrity_check")


def write_reactions(reactions: Any, rows: list[sqlite3.Row]) -> None:
    del reactions[:]
    for row in rows:
        reaction = reactions.add()
        reaction.emoji = row["emoji"]
        reaction.author_id = row["author_id"]
        reaction.sent_timestamp = row["sent_ms"]
        reaction.sort_order = row["sort_order"]


class Exporter:
    """One export run over an open store connection (the caller holds the store lock)."""

    def __init__(self, db: sqlite3.Connection, options: ExportOptions, previous_items: list[bytes] | None = None):
        self._db = db
        self._options = options
        self._previous_items = previous_items
        self.stats = ExportStats()
        self.exported_items: list[bytes] = []

    def chunks(self) -> Iterator[bytes]:
        """Yield the frame stream as encoded entries (varint length + message)."""
        for message in self.messages():
            yield encode_message(message)

    def messages(self) -> Iterator[bytes]:
        yield self._backup_info()
        yield self._frame("account", self._account())
        for row in self._db.execute("SELECT raw FROM recipients ORDER BY seq, id"):
            yield self._frame("recipient", schema.Recipient.FromString(row["raw"]))
        for row in self._db.execute("SELECT * FROM chats ORDER BY seq, id"):
            yield self._frame("chat", self._chat(row))
        if self._previous_items:
            yield from self._previous_chat_items()
        yield from self._chat_items()
        for row in self._db.execute("SELECT raw FROM other_frames ORDER BY id"):
            self.stats.frames += 1
            yield bytes(row["raw"])

    # --- frames ---------------------------------------------------------------------------

    def _frame(self, kind: str, message: Any) -> bytes:
        frame = schema.Frame()
        getattr(frame, kind).CopyFrom(message)
        self.stats.frames += 1
        return frame.SerializeToString()

    def _backup_info(self) -> bytes:
        stored = self._meta("backup_info")
        info = schema.BackupInfo.FromString(stored) if stored else schema.BackupInfo(version=1, first_app_version=APP_VERSION)
        info.backup_time_ms = self._options.backup_time_ms
        info.media_root_backup_key = self._options.media_root_key
        info.current_app_version = APP_VERSION
        return info.SerializeToString()

    def _account(self) -> Any:
        stored = self._meta("account")
        if stored is None:
            raise ValueError("the message store has no account data; register an account first")
        account = schema.AccountData.FromString(stored)
        if self._options.tier == "paid":
            # Android records the tier (201 = PAID), and a restore then reads media from the media tier.
            # NOTE: a free export keeps a stored value, so a store restored from a paid archive
            # keeps 201 after a switch to free, and its restore falls back to the transit tier.
            account.account_settings.backup_tier = PAID_BACKUP_TIER
        return account

    def _chat(self, row: sqlite3.Row) -> Any:
        chat = schema.Chat.FromString(row["raw"])
        chat.id = row["id"]
        chat.recipient_id = row["recipient_id"]
        set_optional(chat, "expiration_timer_ms", row["expiration_timer_ms"])
        chat.expire_timer_version = row["expire_timer_version"]
        return chat

    def _meta(self, key: str) -> bytes | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else bytes(row["value"])

    # --- chat items -------------------------------------------------------------------------

    def _group_chat_ids(self) -> set[int]:
        rows = self._db.execute(
            "SELECT chats.id FROM chats JOIN recipients ON recipients.id = chats.recipient_id WHERE recipients.kind = 'group'"
        )
        return {row["id"] for row in rows}

    def _chat_timers(self) -> dict[int, int]:
        rows = self._db.execute("SELECT id, expiration_timer_ms FROM chats WHERE expiration_timer_ms > 0")
        return {row["id"]: row["expiration_timer_ms"] for row in rows}

    def _chat_items(self) -> Iterator[bytes]:
        group_chats = self._group_chat_ids()
        options = self._options
        chat_timers = self._chat_timers() if options.defects.active("chat-timer-on-untimed") else {}
        for row in self._db.execute("SELECT * FROM chat_items ORDER BY id"):
            if not row["expires_in_ms"] and row["kind"] != "update" and row["chat_id"] in chat_timers:
                row = {**dict(row), "expires_in_ms": chat_timers[row["chat_id"]]}
            if options.apply_rules:
                decision = decide(row, options.backup_time_ms, options.policy, options.defects, in_group=row["chat_id"] in group_chats)
            else:
                decision = Decision(True, None, row["expires_in_ms"], row["expire_start_ms"])
            if not decision.keep:
                self.stats.exclude(decision.reason or "excluded")
                continue
            item = self._build_item(row, decision)
            self.stats.chat_items += 1
            self.stats.item_keys.append((row["chat_id"], row["author_id"], row["date_sent"]))
            frame = schema.Frame()
            frame.chat_item.CopyFrom(item)
            data = frame.SerializeToString()
            if self._previous_items is not None:
                self.exported_items.append(data)
            self.stats.frames += 1
            yield data

    def _previous_chat_items(self) -> Iterator[bytes]:
        """Yield chat items of the previous archive that the current store no longer has."""
        current = {
            (row["chat_id"], row["author_id"], row["date_sent"])
            for row in self._db.execute("SELECT chat_id, author_id, date_sent FROM chat_items WHERE deleted_local = 0")
        }
        for data in self._previous_items or ():
            item = schema.Frame.FromString(data).chat_item
            if (item.chat_id, item.author_id, item.date_sent) in current:
                continue
            self.exported_items.append(data)
            self.stats.frames += 1
            yield data

    def _build_item(self, row: sqlite3.Row, decision: Decision) -> Any:
        item = schema.ChatItem.FromString(row["raw"])
        item.chat_id = row["chat_id"]
        item.author_id = row["author_id"]
        item.date_sent = row["date_sent"]
        set_optional(item, "expires_in_ms", decision.expires_in_ms)
        set_optional(item, "expire_start_date", decision.expire_start_ms)
        if row["direction"] == "incoming":
            item.incoming.read = bool(row["read"])
        kind = row["kind"]
        if kind == "standard":
            self._write_standard(item.standard_message, row)
            if self._options.defects.active("view-once-quote-keeps-attachment"):
                self._quote_view_once_as_normal(item)
        elif kind == "view_once":
            self._write_view_once(item.view_once_message, row, decision)
        return item

    def _write_standard(self, message: Any, row: sqlite3.Row) -> None:
        if row["text"] is not None:
            message.text.body = row["text"]
        attachments = self._attachments(row["id"], "attachment")
        for attachment in attachments:
            position = attachment["position"]
            if position < len(message.attachments):
                self._write_pointer(message.attachments[position].pointer.locator_info, attachment)
        write_reactions(message.reactions, self._reactions(row["id"]))

    def _quote_view_once_as_normal(self, item: Any) -> None:
        """Defect: turn a VIEW_ONCE quote into a NORMAL one that lists the quoted attachment."""
        quote = item.standard_message.quote
        if not item.standard_message.HasField("quote") or quote.type != quote.VIEW_ONCE:
            return
        quote.type = quote.NORMAL
        rows = self._db.execute(
            "SELECT attachments.content_type FROM attachments JOIN chat_items ON chat_items.id = attachments.chat_item_id "
            "WHERE chat_items.chat_id = ? AND chat_items.date_sent = ?",
            (item.chat_id, quote.target_sent_timestamp),
        )
        for attachment in rows:
            quote.attachments.add().content_type = attachment["content_type"] or "application/octet-stream"

    def _write_view_once(self, message: Any, row: sqlite3.Row, decision: Decision) -> None:
        if decision.tombstone:
            message.ClearField("attachment")
            self.stats.tombstoned += 1
        else:
            for attachment in self._attachments(row["id"], "view_once"):
                if message.HasField("attachment"):
                    self._write_pointer(message.attachment.pointer.locator_info, attachment)
        write_reactions(message.reactions, self._reactions(row["id"]))

    def _write_pointer(self, locator: Any, attachment: sqlite3.Row) -> None:
        options = self._options
        upload_ms = attachment["transit_upload_ms"]
        too_old = upload_ms is not None and upload_ms < options.backup_time_ms - FREE_TIER_DEFECT_WINDOW_MS
        if options.tier == "free" and too_old and options.defects.active("media-window-30-days"):
            locator.Clear()  # an empty LocatorInfo: "attachment not available"
            return
        write_locator(locator, attachment)
        if options.defects.active("locator-without-cdn-number"):
            locator.ClearField("transit_cdn_number")
        if options.tier == "free" and options.defects.active("free-tier-media-locator"):
            locator.media_tier_cdn_number = MEDIA_TIER_CDN
        if attachment["key"]:
            self.stats.attachments.append(ExportedAttachment(attachment["id"], attachment["chat_item_id"]))

    def _attachments(self, chat_item_id: int, role: str) -> list[sqlite3.Row]:
        return self._db.execute(
            "SELECT * FROM attachments WHERE chat_item_id = ? AND role = ? ORDER BY position", (chat_item_id, role)
        ).fetchall()

    def _reactions(self, chat_item_id: int) -> list[sqlite3.Row]:
        return self._db.execute(
            "SELECT * FROM reactions WHERE chat_item_id = ? ORDER BY position", (chat_item_id,)
        ).fetchall()
