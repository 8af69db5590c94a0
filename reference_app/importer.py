"""Import a frame stream (BackupInfo, then Frames) into the message store.

Every frame kind of Signal's backup format is accepted. What the app models goes into columns
(see ``store.py``); the whole frame is kept in ``raw`` so that an export writes back what this
app does not model. A Frame with no known ``item`` (a kind newer than this schema) is skipped
with a warning, as the format asks importers to do.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field

from google.protobuf.message import DecodeError

from harness import schema
from harness.errors import MalformedFrameError

log = logging.getLogger(__name__)

ITEM_KINDS = {
    "standard_message": "standard",
    "contact_message": "contact",
    "sticker_message": "sticker",
    "remote_deleted_message": "remote_deleted",
    "update_message": "update",
    "payment_notification": "payment",
    "gift_badge": "gift_badge",
    "view_once_message": "view_once",
    "direct_story_reply_message": "direct_story_reply",
    "poll": "poll",
    "admin_deleted_message": "admin_deleted",
}
UNSETTLED_STATUSES = ("pending", "failed")
OTHER_FRAME_KINDS = ("sticker_pack", "ad_hoc_call", "notification_profile", "chat_folder")


@dataclass
class ImportResult:
    """What an import wrote: the media root key from BackupInfo and per-kind counts."""

    media_root_key: bytes = field(default=b"", repr=False)
    backup_time_ms: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    skipped: int = 0

    def count(self, kind: str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1


def recipient_title(recipient: schema.Recipient) -> str | None:
    """Return the name a chat list shows for a recipient, or None when it has none."""
    kind = recipient.WhichOneof("destination")
    if kind == "contact":
        contact = recipient.contact
        for given, family in (
            (contact.nickname.given, contact.nickname.family),
            (contact.system_given_name, contact.system_family_name),
            (contact.profile_given_name, contact.profile_family_name),
        ):
            name = " ".join(part for part in (given, family) if part)
            if name:
                return name
        if contact.HasField("e164"):
            return f"+{contact.e164}"
        return contact.username if contact.HasField("username") else None
    if kind == "group":
        return recipient.group.snapshot.title.title or None
    if kind == "self":
        return "Note to Self"
    if kind == "release_notes":
        return "Signal"
    if kind == "distribution_list":
        item = recipient.distribution_list
        return item.distribution_list.name if item.HasField("distribution_list") else None
    if kind == "call_link":
        return recipient.call_link.name or None
    return None


def _parse(message_class, data: bytes, what: str):
    try:
        return message_class.FromString(data)
    except DecodeError as error:
        raise MalformedFrameError(f"{what} is not valid protobuf: {error}") from None


class Importer:
    """Write frames into an open store connection (the caller owns the transaction)."""

    def __init__(self, db: sqlite3.Connection):
        self._db = db
        self._seq = 0
        self.result = ImportResult()

    def import_messages(self, messages: Iterable[bytes]) -> ImportResult:
        """Import a whole stream: message 0 is the BackupInfo, the rest are Frames."""
        iterator = iter(messages)
        first = next(iterator, None)
        if first is None:
            raise MalformedFrameError("the frame stream is empty: no BackupInfo")
        self.import_backup_info(first)
        for index, data in enumerate(iterator, start=1):
            self.import_frame(data, index)
        if self.result.counts.get("account", 0) != 1:
            raise MalformedFrameError(
                f"the frame stream has {self.result.counts.get('account', 0)} AccountData frames; expected 1"
            )
        return self.result

    def import_backup_info(self, data: bytes) -> None:
        info = _parse(schema.BackupInfo, data, "BackupInfo (message 0)")
        if len(info.media_root_backup_key) != 32:
            raise MalformedFrameError(
                f"BackupInfo: media root key has {len(info.media_root_backup_key)} bytes; expected 32"
            )
        self.result.media_root_key = bytes(info.media_root_backup_key)
        self.result.backup_time_ms = info.backup_time_ms
        kept = schema.BackupInfo()
        kept.CopyFrom(info)
        # The media root key belongs in the key store, not in the message store.
        kept.media_root_backup_key = b""
        self._set_meta("backup_info", kept.SerializeToString())

    def import_frame(self, data: bytes, index: int) -> None:
        frame = _parse(schema.Frame, data, f"frame {index}")
        kind = frame.WhichOneof("item")
        self._seq += 1
        if kind is None:
            log.warning("frame %d has no known item (a newer frame kind?); skipped", index)
            self.result.skipped += 1
            return
        if kind == "account":
            if self.result.counts.get("account"):
                raise MalformedFrameError(f"frame {index}: a second AccountData frame")
            self._set_meta("account", frame.account.SerializeToString())
        elif kind == "recipient":
            self._import_recipient(frame.recipient, index)
        elif kind == "chat":
            self._import_chat(frame.chat, index)
        elif kind == "chat_item":
            self.import_chat_item(frame.chat_item, index)
        else:
            self._db.execute("INSERT INTO other_frames (kind, raw) VALUES (?, ?)", (kind, data))
        self.result.count(kind)

    # --- frames ---------------------------------------------------------------------------

    def _set_meta(self, key: str, value: bytes) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def _import_recipient(self, recipient: schema.Recipient, index: int) -> None:
        if recipient.id == 0:
            raise MalformedFrameError(f"frame {index}: 0 is not a valid recipient id")
        kind = recipient.WhichOneof("destination")
        if kind is None:
            raise MalformedFrameError(f"frame {index}: recipient {recipient.id} has no destination")
        contact = recipient.contact if kind == "contact" else None
        try:
            self._db.execute(
                "INSERT INTO recipients (id, seq, kind, name, aci, e164, raw) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    recipient.id,
                    self._seq,
                    kind,
                    recipient_title(recipient),
                    bytes(contact.aci) if contact is not None and contact.HasField("aci") else None,
                    contact.e164 if contact is not None and contact.HasField("e164") else None,
                    recipient.SerializeToString(),
                ),
            )
        except sqlite3.IntegrityError:
            raise MalformedFrameError(f"frame {index}: recipient id {recipient.id} appears twice") from None

    def _import_chat(self, chat: schema.Chat, index: int) -> None:
        if chat.id == 0:
            raise MalformedFrameError(f"frame {index}: 0 is not a valid chat id")
        try:
            self._db.execute(
                "INSERT INTO chats (id, seq, recipient_id, expiration_timer_ms, expire_timer_version, raw) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    chat.id,
                    self._seq,
                    chat.recipient_id,
                    chat.expiration_timer_ms if chat.HasField("expiration_timer_ms") else None,
                    chat.expire_timer_version,
                    chat.SerializeToString(),
                ),
            )
        except sqlite3.IntegrityError:
            raise MalformedFrameError(f"frame {index}: chat id {chat.id} appears twice") from None

    def import_chat_item(self, item: schema.ChatItem, index: int, scenario_id: str | None = None) -> int:
        """Insert one chat item with its attachments and reactions; return its row id."""
        columns = chat_item_columns(item)
        columns["raw"] = item.SerializeToString()
        columns["scenario_id"] = scenario_id
        names = ", ".join(columns)
        marks = ", ".join("?" for _ in columns)
        cursor = self._db.execute(f"INSERT INTO chat_items ({names}) VALUES ({marks})", tuple(columns.values()))  # noqa: S608
        row_id = int(cursor.lastrowid)
        insert_attachment_rows(self._db, row_id, item)
        insert_reaction_rows(self._db, row_id, item)
        return row_id


# --- column extraction (shared with the app's own message creation) ----------------------------


def chat_item_columns(item: schema.ChatItem) -> dict[str, object]:
    """Return the modelled columns of a chat item (everything but ``raw``)."""
    direction = item.WhichOneof("directional_details") or "directionless"
    kind_field = item.WhichOneof("item")
    kind = ITEM_KINDS.get(kind_field or "", "unknown")
    columns: dict[str, object] = {
        "chat_id": item.chat_id,
        "author_id": item.author_id,
        "date_sent": item.date_sent,
        "direction": direction,
        "date_received": None,
        "read": 0,
        "send_unsettled": 0,
        "kind": kind,
        "update_kind": None,
        "text": None,
        "quote_text": None,
        "expires_in_ms": item.expires_in_ms if item.HasField("expires_in_ms") else None,
        "expire_start_ms": item.expire_start_date if item.HasField("expire_start_date") else None,
        "viewed": 0,
        "remote_deleted": 1 if kind == "remote_deleted" else 0,
    }
    if direction == "incoming":
        columns["date_received"] = item.incoming.date_received
        columns["read"] = int(item.incoming.read)
    elif direction == "outgoing":
        columns["date_received"] = item.outgoing.date_received
        columns["send_unsettled"] = int(
            any(status.WhichOneof("delivery_status") in UNSETTLED_STATUSES for status in item.outgoing.send_status)
        )
    if kind == "standard":
        message = item.standard_message
        if message.HasField("text"):
            columns["text"] = message.text.body
        if message.HasField("quote") and message.quote.HasField("text"):
            columns["quote_text"] = message.quote.text.body
    elif kind == "update":
        columns["update_kind"] = item.update_message.WhichOneof("update")
    elif kind == "view_once":
        columns["viewed"] = int(not item.view_once_message.HasField("attachment"))
    return columns


def attachment_columns(attachment: schema.MessageAttachment) -> dict[str, object]:
    """Return the modelled columns of one MessageAttachment's FilePointer."""
    pointer = attachment.pointer
    locator = pointer.locator_info
    check = locator.WhichOneof("integrity_check")
    return {
        "content_type": pointer.content_type if pointer.HasField("content_type") else None,
        "file_name": pointer.file_name if pointer.HasField("file_name") else None,
        "caption": pointer.caption if pointer.HasField("caption") else None,
        "size": locator.size,
        "key": bytes(locator.key),
        "plaintext_hash": bytes(locator.plaintext_hash) if check == "plaintext_hash" else None,
        "encrypted_digest": bytes(locator.encrypted_digest) if check == "encrypted_digest" else None,
        "transit_cdn_key": locator.transit_cdn_key if locator.HasField("transit_cdn_key") else None,
        "transit_cdn_number": locator.transit_cdn_number if locator.HasField("transit_cdn_number") else None,
        "transit_upload_ms": (
            locator.transit_tier_upload_timestamp if locator.HasField("transit_tier_upload_timestamp") else None
        ),
        "media_tier_cdn_number": locator.media_tier_cdn_number if locator.HasField("media_tier_cdn_number") else None,
    }


def modelled_attachments(item: schema.ChatItem) -> list[tuple[str, int, schema.MessageAttachment]]:
    """Return (role, position, attachment) for the attachments the app models."""
    kind = item.WhichOneof("item")
    if kind == "standard_message":
        return [("attachment", i, a) for i, a in enumerate(item.standard_message.attachments)]
    if kind == "view_once_message" and item.view_once_message.HasField("attachment"):
        return [("view_once", 0, item.view_once_message.attachment)]
    return []


def modelled_reactions(item: schema.ChatItem):
    """Return the reaction list of the item kinds whose reactions the app models, else None."""
    kind = item.WhichOneof("item")
    if kind == "standard_message":
        return item.standard_message.reactions
    if kind == "view_once_message":
        return item.view_once_message.reactions
    return None


def insert_attachment_rows(db: sqlite3.Connection, row_id: int, item: schema.ChatItem) -> None:
    for role, position, attachment in modelled_attachments(item):
        columns = attachment_columns(attachment)
        columns.update(chat_item_id=row_id, position=position, role=role)
        names = ", ".join(columns)
        marks = ", ".join("?" for _ in columns)
        db.execute(f"INSERT INTO attachments ({names}) VALUES ({marks})", tuple(columns.values()))  # noqa: S608


def insert_reaction_rows(db: sqlite3.Connection, row_id: int, item: schema.ChatItem) -> None:
    reactions = modelled_reactions(item)
    for position, reaction in enumerate(reactions or ()):
        db.execute(
            "INSERT INTO reactions (chat_item_id, position, emoji, author_id, sent_ms, sort_order) VALUES (?, ?, ?, ?, ?, ?)",
            (row_id, position, reaction.emoji, reaction.author_id, reaction.sent_timestamp, reaction.sort_order),
        )
