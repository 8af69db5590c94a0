"""Changes to the message store that a user or an incoming message makes.

Each new chat item is built as the ChatItem protobuf it would be in an archive and stored
through the same column extraction the importer uses, so the exporter treats restored and
locally created content alike.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import sqlite3
import uuid
from dataclasses import dataclass, field
from typing import Any

from harness import schema
from reference_app.defects import Defects
from reference_app.importer import Importer, chat_item_columns, recipient_title
from reference_app.store import next_id, next_seq

log = logging.getLogger(__name__)

PROFILE_KEY_LENGTH = 32
STATUS_FIELDS = ("pending", "sent", "delivered", "read", "viewed", "skipped", "failed")

# Field numbers inside GroupChangeChatUpdate (field 1: repeated Update) that this app writes;
# taken from frames in Signal's backup test corpus.
GROUP_NAME_UPDATE = 3  # GroupNameUpdate {updaterAci = 1, newGroupName = 2}
GROUP_MEMBER_LEFT_UPDATE = 10  # GroupMemberLeftUpdate {aci = 1}
GROUP_MEMBER_ADDED_UPDATE = 18  # GroupMemberAddedUpdate {updaterAci = 1, newMemberAci = 2}
GROUP_EXPIRATION_TIMER_UPDATE = 34  # GroupExpirationTimerUpdate {expiresInMs = 1, updaterAci = 2}


class ConversationError(ValueError):
    """A user action names something that does not exist or is not possible."""

    def __init__(self, message: str, code: str = "not-found"):
        super().__init__(message)
        self.code = code


# --- tiny protobuf writer for the opaque group-change updates --------------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _bytes_field(number: int, value: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def _int_field(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def group_change(update_number: int, body: bytes) -> bytes:
    """Return a GroupChangeChatUpdate holding one Update with field ``update_number``."""
    return _bytes_field(1, _bytes_field(update_number, body))


# --- attachments -------------------------------------------------------------------------------


@dataclass
class NewAttachment:
    """An attachment whose plaintext is on the device (``local_file``)."""

    content_type: str
    size: int
    key: bytes = field(repr=False)
    plaintext_hash: bytes
    local_file: str
    file_name: str | None = None
    caption: str | None = None
    uploaded_ms: int | None = None
    thumbnail_file: str | None = None

    def message_attachment(self) -> Any:
        attachment = schema.MessageAttachment()
        pointer = attachment.pointer
        pointer.content_type = self.content_type
        if self.file_name is not None:
            pointer.file_name = self.file_name
        if self.caption is not None:
            pointer.caption = self.caption
        locator = pointer.locator_info
        locator.key = self.key
        locator.size = self.size
        locator.plaintext_hash = self.plaintext_hash
        attachment.was_downloaded = True
        attachment.client_uuid = uuid.uuid4().bytes
        return attachment


def new_attachment(files: Any, data: bytes, content_type: str, thumbnail: bytes | None = None, **details: Any) -> NewAttachment:
    """Write the plaintext (and the thumbnail, if any) to files and return the new attachment."""
    from reference_app.media import new_attachment_key

    return NewAttachment(
        content_type=content_type,
        size=len(data),
        key=new_attachment_key(),
        plaintext_hash=hashlib.sha256(data).digest(),
        local_file=files.write(data),
        thumbnail_file=files.write(thumbnail) if thumbnail is not None else None,
        **details,
    )


# --- the message to create -----------------------------------------------------------------------


@dataclass
class NewMessage:
    chat_id: int
    author_id: int
    direction: str  # incoming, outgoing, update
    sent_ms: int
    kind: str = "text"  # text, media, view_once, sticker, update
    text: str | None = None
    received_ms: int | None = None
    read: bool = False
    status: str = "sent"
    expires_in_ms: int | None = None
    expire_start_ms: int | None = None
    attachments: list[NewAttachment] = field(default_factory=list)
    reactions: list[tuple[str, int, int]] = field(default_factory=list)  # emoji, author id, sent ms
    quote_item_id: int | None = None
    deleted: bool = False
    edits: list[tuple[str, int]] = field(default_factory=list)  # earlier texts, oldest first
    update: dict[str, Any] | None = None
    sticker: dict[str, Any] | None = None
    scenario_id: str | None = None


class Conversations:
    """Store mutations; every method takes an open connection inside a transaction."""

    def __init__(self, defects: Defects):
        self._defects = defects

    # --- account and recipients ----------------------------------------------------------

    def ensure_account(self, db: sqlite3.Connection, given_name: str) -> int:
        """Create AccountData and the Self recipient unless they exist; return the Self id."""
        row = db.execute("SELECT value FROM meta WHERE key = 'account'").fetchone()
        if row is None:
            account = schema.AccountData()
            account.profile_key = secrets.token_bytes(PROFILE_KEY_LENGTH)
            account.given_name = given_name
            settings = account.account_settings
            settings.read_receipts = True
            settings.link_previews = True
            settings.phone_number_sharing_mode = settings.NOBODY
            settings.default_sent_media_quality = settings.STANDARD
            settings.app_theme = settings.SYSTEM
            settings.calls_use_less_data_setting = settings.NEVER
            db.execute("INSERT INTO meta (key, value) VALUES ('account', ?)", (account.SerializeToString(),))
        else:
            account = schema.AccountData.FromString(row["value"])
            if given_name and account.given_name != given_name:
                account.given_name = given_name
                db.execute("UPDATE meta SET value = ? WHERE key = 'account'", (account.SerializeToString(),))
        self_row = db.execute("SELECT id FROM recipients WHERE kind = 'self'").fetchone()
        if self_row is not None:
            return int(self_row["id"])
        recipient = schema.Recipient()
        recipient.id = next_id(db, "recipients")
        recipient.self.SetInParent()
        self._insert_recipient(db, recipient, "self", "self")
        return recipient.id

    def self_id(self, db: sqlite3.Connection) -> int:
        row = db.execute("SELECT id FROM recipients WHERE kind = 'self'").fetchone()
        if row is None:
            raise ConversationError("the app has no account yet; register an account first", "not-registered")
        return int(row["id"])

    def add_contact(self, db: sqlite3.Connection, name: str, aci: str, e164: str | None, scenario_id: str | None = None) -> int:
        existing = db.execute("SELECT id FROM recipients WHERE aci = ?", (uuid.UUID(aci).bytes,)).fetchone()
        if existing is not None:
            return int(existing["id"])
        recipient = schema.Recipient()
        recipient.id = next_id(db, "recipients")
        contact = recipient.contact
        contact.aci = uuid.UUID(aci).bytes
        if e164:
            contact.e164 = int(e164.lstrip("+"))
        contact.registered.SetInParent()
        contact.profile_sharing = True
        contact.profile_given_name = name
        self._insert_recipient(db, recipient, "contact", scenario_id)
        return recipient.id

    def add_group(self, db: sqlite3.Connection, title: str, member_ids: list[int], scenario_id: str | None = None) -> int:
        recipient = schema.Recipient()
        recipient.id = next_id(db, "recipients")
        group = recipient.group
        group.master_key = secrets.token_bytes(32)
        group.whitelisted = True
        group.snapshot.title.title = title
        group.snapshot.version = 1
        self._insert_recipient(db, recipient, "group", scenario_id)
        for member in member_ids:
            db.execute("INSERT OR IGNORE INTO group_members (group_id, member_id) VALUES (?, ?)", (recipient.id, member))
        return recipient.id

    def _insert_recipient(self, db: sqlite3.Connection, recipient: Any, kind: str, scenario_id: str | None) -> None:
        contact = recipient.contact if kind == "contact" else None
        db.execute(
            "INSERT INTO recipients (id, seq, kind, name, aci, e164, scenario_id, raw) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                recipient.id,
                next_seq(db, "recipients"),
                kind,
                recipient_title(recipient),
                bytes(contact.aci) if contact is not None else None,
                contact.e164 if contact is not None and contact.HasField("e164") else None,
                scenario_id,
                recipient.SerializeToString(),
            ),
        )

    def add_chat(self, db: sqlite3.Connection, recipient_id: int, expires_in_ms: int | None, scenario_id: str | None = None) -> int:
        existing = db.execute("SELECT id FROM chats WHERE recipient_id = ?", (recipient_id,)).fetchone()
        if existing is not None:
            return int(existing["id"])
        chat = schema.Chat()
        chat.id = next_id(db, "chats")
        chat.recipient_id = recipient_id
        if expires_in_ms:
            chat.expiration_timer_ms = expires_in_ms
            chat.expire_timer_version = 1
        db.execute(
            "INSERT INTO chats (id, seq, recipient_id, expiration_timer_ms, expire_timer_version, scenario_id, raw) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                chat.id,
                next_seq(db, "chats"),
                recipient_id,
                chat.expiration_timer_ms if chat.HasField("expiration_timer_ms") else None,
                chat.expire_timer_version,
                scenario_id,
                chat.SerializeToString(),
            ),
        )
        return chat.id

    def set_chat_timer(self, db: sqlite3.Connection, chat_id: int, expires_in_ms: int | None) -> None:
        db.execute(
            "UPDATE chats SET expiration_timer_ms = ?, expire_timer_version = expire_timer_version + 1 WHERE id = ?",
            (expires_in_ms or None, chat_id),
        )

    # --- messages ------------------------------------------------------------------------------

    def add_message(self, db: sqlite3.Connection, message: NewMessage) -> int:
        """Store one new chat item and return its row id."""
        item = self._build_item(db, message)
        if message.deleted:
            item = self._deleted_for_everyone(item)
        row_id = Importer(db).import_chat_item(item, 0, message.scenario_id)
        if self._defects.active("logs-message-text"):
            log.info("message added chat=%d text=%s", message.chat_id, message.text)
        for attachment in message.attachments:
            db.execute(
                "UPDATE attachments SET local_file = ?, pending_upload_ms = ?, thumbnail_file = ? WHERE chat_item_id = ? AND key = ?",
                (attachment.local_file, attachment.uploaded_ms, attachment.thumbnail_file, row_id, attachment.key),
            )
        if message.deleted and self._defects.active("keeps-deleted"):
            db.execute("UPDATE chat_items SET remote_deleted = 1 WHERE id = ?", (row_id,))
        return row_id

    def _build_item(self, db: sqlite3.Connection, message: NewMessage) -> Any:
        item = schema.ChatItem()
        item.chat_id = message.chat_id
        item.author_id = message.author_id
        item.date_sent = message.sent_ms
        if message.expires_in_ms:
            item.expires_in_ms = message.expires_in_ms
            if message.expire_start_ms is not None:
                item.expire_start_date = message.expire_start_ms
        self._write_direction(db, item, message)
        self._write_body(db, item, message)
        for text, sent_ms in message.edits:
            revision = schema.ChatItem()
            revision.CopyFrom(item)
            revision.ClearField("revisions")
            revision.date_sent = sent_ms
            revision.standard_message.text.body = text
            del revision.standard_message.reactions[:]
            item.revisions.append(revision)
        return item

    def _write_direction(self, db: sqlite3.Connection, item: Any, message: NewMessage) -> None:
        received = message.received_ms if message.received_ms is not None else message.sent_ms
        if message.direction == "incoming":
            item.incoming.date_received = received
            item.incoming.date_server_sent = message.sent_ms
            item.incoming.read = message.read
            item.incoming.sealed_sender = True
        elif message.direction == "outgoing":
            item.outgoing.date_received = received
            for recipient_id in self._send_targets(db, message.chat_id):
                status = item.outgoing.send_status.add()
                status.recipient_id = recipient_id
                status.timestamp = received
                name = message.status if message.status in STATUS_FIELDS else "sent"
                getattr(status, name).SetInParent()
                if name == "failed":
                    status.failed.reason = status.failed.NETWORK
        else:
            item.directionless.SetInParent()

    def _send_targets(self, db: sqlite3.Connection, chat_id: int) -> list[int]:
        row = db.execute(
            "SELECT recipients.id, recipients.kind FROM chats JOIN recipients ON recipients.id = chats.recipient_id WHERE chats.id = ?",
            (chat_id,),
        ).fetchone()
        if row is None or row["kind"] == "self":
            return []
        if row["kind"] == "group":
            members = db.execute("SELECT member_id FROM group_members WHERE group_id = ? ORDER BY member_id", (row["id"],))
            return [int(member["member_id"]) for member in members]
        return [int(row["id"])]

    def _write_body(self, db: sqlite3.Connection, item: Any, message: NewMessage) -> None:
        kind = message.kind
        if kind == "update":
            self._write_update(db, item, message)
        elif kind == "view_once":
            body = item.view_once_message
            if message.attachments:
                body.attachment.CopyFrom(message.attachments[0].message_attachment())
            self._add_reactions(body.reactions, message)
        elif kind == "sticker":
            sticker = item.sticker_message.sticker
            pack = (message.sticker or {}).get("pack") or "default"
            sticker.pack_id = hashlib.sha256(b"pack-id:" + pack.encode()).digest()[:16]
            sticker.pack_key = hashlib.sha256(b"pack-key:" + pack.encode()).digest()
            sticker.sticker_id = 0
            sticker.emoji = (message.sticker or {}).get("emoji") or "🙂"
            sticker.data.content_type = "image/webp"
            sticker.data.locator_info.SetInParent()
        else:
            body = item.standard_message
            if message.text is not None or not message.attachments:
                body.text.body = message.text or ""
            for attachment in message.attachments:
                body.attachments.append(attachment.message_attachment())
            if message.quote_item_id is not None:
                self._write_quote(db, body.quote, message.quote_item_id)
            self._add_reactions(body.reactions, message)

    @staticmethod
    def _add_reactions(reactions: Any, message: NewMessage) -> None:
        for order, (emoji, author_id, sent_ms) in enumerate(message.reactions, start=1):
            reaction = reactions.add()
            reaction.emoji = emoji
            reaction.author_id = author_id
            reaction.sent_timestamp = sent_ms
            reaction.sort_order = order

    def _write_quote(self, db: sqlite3.Connection, quote: Any, target_id: int) -> None:
        target = db.execute("SELECT * FROM chat_items WHERE id = ?", (target_id,)).fetchone()
        if target is None:
            raise ConversationError(f"quoted message {target_id} not found")
        quote.target_sent_timestamp = target["date_sent"]
        quote.author_id = target["author_id"]
        if target["kind"] == "view_once":
            quote.type = quote.VIEW_ONCE  # no text, no quoted attachments
            return
        quote.type = quote.NORMAL
        if target["text"]:
            quote.text.body = target["text"]
        for attachment in db.execute(
            "SELECT content_type, file_name FROM attachments WHERE chat_item_id = ? ORDER BY position", (target_id,)
        ):
            quoted = quote.attachments.add()
            if attachment["content_type"]:
                quoted.content_type = attachment["content_type"]
            if attachment["file_name"]:
                quoted.file_name = attachment["file_name"]

    def _write_update(self, db: sqlite3.Connection, item: Any, message: NewMessage) -> None:
        update = message.update or {"type": "timer_change", "timer_ms": None}
        kind = update["type"]
        in_group = self._chat_kind(db, message.chat_id) == "group"
        updater = self._aci_of(db, message.author_id)
        if kind == "timer_change" and not in_group:
            item.update_message.expiration_timer_change.expires_in_ms = update.get("timer_ms") or 0
            self.set_chat_timer(db, message.chat_id, update.get("timer_ms"))
            return
        if kind == "timer_change":
            body = _int_field(1, update.get("timer_ms") or 0) + (_bytes_field(2, updater) if updater else b"")
            item.update_message.group_change = group_change(GROUP_EXPIRATION_TIMER_UPDATE, body)
            self.set_chat_timer(db, message.chat_id, update.get("timer_ms"))
        elif kind == "title_change":
            title = update.get("title", "")
            body = (_bytes_field(1, updater) if updater else b"") + _bytes_field(2, title.encode())
            item.update_message.group_change = group_change(GROUP_NAME_UPDATE, body)
            self._rename_group(db, message.chat_id, title)
        elif kind in ("member_added", "member_left"):
            member = self._aci_of(db, self._recipient_by_scenario(db, update.get("member")))
            if kind == "member_added":
                body = (_bytes_field(1, updater) if updater else b"") + (_bytes_field(2, member) if member else b"")
                item.update_message.group_change = group_change(GROUP_MEMBER_ADDED_UPDATE, body)
            else:
                body = _bytes_field(1, member) if member else b""
                item.update_message.group_change = group_change(GROUP_MEMBER_LEFT_UPDATE, body)
        else:
            item.update_message.simple_update.type = item.update_message.simple_update.JOINED_SIGNAL

    def _chat_kind(self, db: sqlite3.Connection, chat_id: int) -> str | None:
        row = db.execute(
            "SELECT recipients.kind FROM chats JOIN recipients ON recipients.id = chats.recipient_id WHERE chats.id = ?",
            (chat_id,),
        ).fetchone()
        return None if row is None else row["kind"]

    def _aci_of(self, db: sqlite3.Connection, recipient_id: int | None) -> bytes | None:
        if recipient_id is None:
            return None
        row = db.execute("SELECT kind, aci FROM recipients WHERE id = ?", (recipient_id,)).fetchone()
        if row is None:
            return None
        if row["kind"] == "self":
            account_aci = db.execute("SELECT value FROM meta WHERE key = 'aci'").fetchone()
            return uuid.UUID(account_aci["value"]).bytes if account_aci else None
        return bytes(row["aci"]) if row["aci"] else None

    def _recipient_by_scenario(self, db: sqlite3.Connection, scenario_id: str | None) -> int | None:
        if scenario_id is None:
            return None
        row = db.execute("SELECT id FROM recipients WHERE scenario_id = ?", (scenario_id,)).fetchone()
        return None if row is None else int(row["id"])

    def _rename_group(self, db: sqlite3.Connection, chat_id: int, title: str) -> None:
        row = db.execute(
            "SELECT recipients.id, recipients.raw FROM chats JOIN recipients ON recipients.id = chats.recipient_id WHERE chats.id = ?",
            (chat_id,),
        ).fetchone()
        recipient = schema.Recipient.FromString(row["raw"])
        recipient.group.snapshot.title.title = title
        db.execute("UPDATE recipients SET name = ?, raw = ? WHERE id = ?", (title, recipient.SerializeToString(), row["id"]))

    def _deleted_for_everyone(self, item: Any) -> Any:
        """Return the remote-deleted form of ``item``: no content, no revisions."""
        if self._defects.active("keeps-deleted"):
            return item
        tombstone = schema.ChatItem()
        tombstone.CopyFrom(item)
        tombstone.ClearField("revisions")
        tombstone.remote_deleted_message.SetInParent()
        return tombstone

    # --- actions on existing messages --------------------------------------------------------

    def find_item(self, db: sqlite3.Connection, chat_id: int, sent_ms: int) -> sqlite3.Row:
        row = db.execute(
            "SELECT * FROM chat_items WHERE chat_id = ? AND date_sent = ? AND deleted_local = 0 ORDER BY id DESC LIMIT 1",
            (chat_id, sent_ms),
        ).fetchone()
        if row is None:
            raise ConversationError(f"no message sent at {sent_ms} in this chat")
        return row

    def find_by_scenario_id(self, db: sqlite3.Connection, scenario_id: str) -> sqlite3.Row:
        row = db.execute("SELECT * FROM chat_items WHERE scenario_id = ? AND deleted_local = 0", (scenario_id,)).fetchone()
        if row is None:
            raise ConversationError(f"no message with scenario id {scenario_id!r}")
        return row

    def mark_read(self, db: sqlite3.Connection, chat_id: int, now_ms: int) -> int:
        """Mark every unread incoming message of a chat read; their timers start now."""
        rows = db.execute(
            "SELECT id, expires_in_ms, expire_start_ms FROM chat_items WHERE chat_id = ? AND direction = 'incoming' AND read = 0",
            (chat_id,),
        ).fetchall()
        for row in rows:
            start = row["expire_start_ms"]
            if row["expires_in_ms"] and start is None:
                start = now_ms
            db.execute("UPDATE chat_items SET read = 1, expire_start_ms = ? WHERE id = ?", (start, row["id"]))
        return len(rows)

    def react(self, db: sqlite3.Connection, item: sqlite3.Row, emoji: str, author_id: int, now_ms: int) -> None:
        if item["kind"] not in ("standard", "view_once"):
            raise ConversationError(f"a {item['kind']} message cannot take reactions here", "conflict")
        db.execute("DELETE FROM reactions WHERE chat_item_id = ? AND author_id = ?", (item["id"], author_id))
        rows = db.execute("SELECT position FROM reactions WHERE chat_item_id = ? ORDER BY position", (item["id"],)).fetchall()
        position = (rows[-1]["position"] + 1) if rows else 0
        db.execute(
            "INSERT INTO reactions (chat_item_id, position, emoji, author_id, sent_ms, sort_order) VALUES (?, ?, ?, ?, ?, ?)",
            (item["id"], position, emoji, author_id, now_ms, position + 1),
        )

    def edit(self, db: sqlite3.Connection, item: sqlite3.Row, text: str, now_ms: int) -> None:
        """Replace the text of an own text message; the old version becomes a revision."""
        if item["kind"] != "standard" or item["direction"] != "outgoing":
            raise ConversationError("only your own text messages can be edited", "conflict")
        current = schema.ChatItem.FromString(item["raw"])
        revision = schema.ChatItem()
        revision.CopyFrom(current)
        revision.ClearField("revisions")
        del revision.standard_message.reactions[:]
        if item["text"] is not None:
            revision.standard_message.text.body = item["text"]
        current.revisions.append(revision)
        current.standard_message.text.body = text
        current.standard_message.text.ClearField("body_ranges")
        db.execute(
            "UPDATE chat_items SET text = ?, date_sent = ?, raw = ? WHERE id = ?",
            (text, now_ms, current.SerializeToString(), item["id"]),
        )

    def delete(self, db: sqlite3.Connection, files: Any, item: sqlite3.Row, for_everyone: bool) -> None:
        keep = self._defects.active("keeps-deleted")
        if for_everyone:
            if keep:
                db.execute("UPDATE chat_items SET remote_deleted = 1 WHERE id = ?", (item["id"],))
                return
            tombstone = self._deleted_for_everyone(schema.ChatItem.FromString(item["raw"]))
            self._remove_content(db, files, item["id"])
            columns = chat_item_columns(tombstone)
            db.execute(
                "UPDATE chat_items SET kind = ?, text = NULL, quote_text = NULL, remote_deleted = 1, raw = ? WHERE id = ?",
                (columns["kind"], tombstone.SerializeToString(), item["id"]),
            )
            return
        if keep:
            db.execute("UPDATE chat_items SET deleted_local = 1 WHERE id = ?", (item["id"],))
            return
        self._remove_content(db, files, item["id"])
        db.execute("DELETE FROM chat_items WHERE id = ?", (item["id"],))

    def view_once_opened(self, db: sqlite3.Connection, files: Any, item: sqlite3.Row) -> None:
        """Record that a view-once message was viewed; its media is deleted from the device."""
        if item["kind"] != "view_once":
            raise ConversationError("this message is not a view-once message", "conflict")
        current = schema.ChatItem.FromString(item["raw"])
        current.view_once_message.ClearField("attachment")
        _delete_attachment_files(db, files, item["id"])
        db.execute("DELETE FROM attachments WHERE chat_item_id = ?", (item["id"],))
        db.execute("UPDATE chat_items SET viewed = 1, raw = ? WHERE id = ?", (current.SerializeToString(), item["id"]))

    def _remove_content(self, db: sqlite3.Connection, files: Any, item_id: int) -> None:
        _delete_attachment_files(db, files, item_id)
        db.execute("DELETE FROM attachments WHERE chat_item_id = ?", (item_id,))
        db.execute("DELETE FROM reactions WHERE chat_item_id = ?", (item_id,))

    def purge_expired(self, db: sqlite3.Connection, files: Any, now_ms: int) -> int:
        """Delete messages whose disappearing timer has run out, as the phone does."""
        rows = db.execute(
            "SELECT id FROM chat_items WHERE expires_in_ms > 0 AND expire_start_ms IS NOT NULL "
            "AND expire_start_ms + expires_in_ms <= ? AND deleted_local = 0",
            (now_ms,),
        ).fetchall()
        for row in rows:
            self._remove_content(db, files, row["id"])
            db.execute("DELETE FROM chat_items WHERE id = ?", (row["id"],))
        return len(rows)


def _delete_attachment_files(db: sqlite3.Connection, files: Any, item_id: int) -> None:
    """Delete the plaintext and thumbnail files of a chat item's attachments."""
    for row in db.execute("SELECT local_file, thumbnail_file FROM attachments WHERE chat_item_id = ?", (item_id,)).fetchall():
        files.delete(row["local_file"])
        files.delete(row["thumbnail_file"])
