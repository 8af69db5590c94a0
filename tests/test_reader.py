"""Decoding frames into records: kinds, attachments, presence, unknown fields, bad frames."""

from __future__ import annotations

import pytest

from harness import schema
from harness.errors import MalformedFrameError, NotABackupError
from harness.reader import scan
import backup_builders as b


class Collector:
    def __init__(self):
        self.info = None
        self.accounts = []
        self.recipients = []
        self.chats = []
        self.items = []
        self.others = []
        self.unknown = []
        self.ended = False

    def backup_info(self, record):
        self.info = record

    def account(self, record):
        self.accounts.append(record)

    def recipient(self, record):
        self.recipients.append(record)

    def chat(self, record):
        self.chats.append(record)

    def chat_item(self, record):
        self.items.append(record)

    def other_frame(self, frame_index, kind):
        self.others.append((frame_index, kind))

    def unknown_field(self, frame_index, path, tag):
        self.unknown.append((frame_index, path, tag))

    def end(self):
        self.ended = True


def collect(messages) -> Collector:
    collector = Collector()
    scan(b.to_bytes(messages) if not isinstance(messages[0], bytes) else messages, [collector])
    return collector


def test_minimal_backup_records():
    seen = collect(b.minimal_backup())
    assert seen.info.backup_time_ms == b.BACKUP_TIME_MS
    assert len(seen.info.media_root_key) == 32
    assert seen.accounts[0].profile_key == b"\x61" * 32
    assert seen.accounts[0].has_account_settings
    assert [(r.recipient_id, r.kind) for r in seen.recipients] == [(1, "self"), (2, "contact")]
    assert seen.recipients[1].aci == b.CONTACT_ACI
    assert seen.recipients[1].name == "Alice"
    assert seen.recipients[1].registered is True
    assert [(c.chat_id, c.recipient_id, c.frame_index) for c in seen.chats] == [(3, 2, 4)]
    assert seen.ended


def test_item_numbers_count_per_chat():
    other_chat = b.chat_frame(chat_id=4, recipient_id=b.SELF_ID)
    messages = b.minimal_backup() + [
        other_chat,
        b.incoming_text("a"),
        b.incoming_text("b", chat_id=4),
        b.incoming_text("c"),
    ]
    seen = collect(messages)
    assert [(i.chat_id, i.item_number, i.frame_index) for i in seen.items] == [
        (3, 1, 6),
        (4, 1, 7),
        (3, 2, 8),
    ]


def test_incoming_item_fields():
    seen = collect(b.minimal_backup() + [b.incoming_text("hello", read=True)])
    item = seen.items[0]
    assert item.direction == "incoming"
    assert item.kind == "standard"
    assert item.text == "hello"
    assert item.has_text
    assert item.read
    assert item.date_received == item.date_sent + 1000
    assert item.expire_start_ms is None
    assert item.expires_in_ms is None
    assert not item.disappearing


def test_expiry_presence_with_zero_values():
    frame = b.incoming_text()
    frame.chat_item.expires_in_ms = 0
    frame.chat_item.expire_start_date = 0
    item = collect(b.minimal_backup() + [frame]).items[0]
    assert item.expires_in_ms == 0
    assert item.expire_start_ms == 0
    assert item.disappearing


def test_outgoing_send_statuses():
    frame = b.outgoing_text(statuses=("sent", "pending", None))
    item = collect(b.minimal_backup() + [frame]).items[0]
    assert item.direction == "outgoing"
    assert item.send_statuses == ("sent", "pending", "missing")
    assert item.send_status_recipient_ids == (b.CONTACT_ID,) * 3


def test_attachment_roles_and_tiers():
    frame = b.incoming_text("see", author_id=b.CONTACT_ID)
    message = frame.chat_item.standard_message
    b.file_pointer(message.attachments.add().pointer, transit=True)
    b.file_pointer(message.long_text, transit=False, media=True)
    b.file_pointer(message.link_preview.add(url="https://example.invalid").image)
    quote = message.quote
    quote.target_sent_timestamp = 5
    quote.author_id = b.CONTACT_ID
    quote.type = quote.NORMAL
    b.file_pointer(quote.attachments.add(content_type="image/jpeg").thumbnail.pointer)
    item = collect(b.minimal_backup() + [frame]).items[0]
    roles = [a.role for a in item.attachments]
    assert roles == ["quote_thumbnail", "attachment", "long_text", "link_preview"]
    attachment = item.attachments[1]
    assert attachment.on_transit_tier
    assert attachment.transit_cdn_number == 3
    assert attachment.encrypted_digest == b"\x33" * 32
    assert attachment.plaintext_hash is None
    assert item.attachments[2].plaintext_hash == b"\x22" * 32
    assert item.attachments[2].media_tier_cdn_number == 3
    assert item.quote_type == "normal"
    assert item.quote_target_sent == 5
    assert item.quoted_attachment_count == 1


def test_view_once_with_and_without_attachment():
    viewed = b.incoming_text()
    viewed.chat_item.view_once_message.SetInParent()
    pending = b.incoming_text()
    b.file_pointer(pending.chat_item.view_once_message.attachment.pointer)
    items = collect(b.minimal_backup() + [viewed, pending]).items
    assert [i.kind for i in items] == ["view_once", "view_once"]
    assert not items[0].view_once_has_attachment
    assert items[0].attachments == ()
    assert items[1].view_once_has_attachment
    assert [a.role for a in items[1].attachments] == ["view_once"]


def test_sticker_contact_and_update_kinds():
    sticker = b.incoming_text()
    b.file_pointer(sticker.chat_item.sticker_message.sticker.data)
    contact = b.incoming_text()
    b.file_pointer(contact.chat_item.contact_message.contact.avatar)
    update = b.incoming_text()
    update.chat_item.directionless.SetInParent()
    update.chat_item.update_message.expiration_timer_change.expires_in_ms = 0
    items = collect(b.minimal_backup() + [sticker, contact, update]).items
    assert [i.kind for i in items] == ["sticker", "contact", "update"]
    assert [a.role for a in items[0].attachments] == ["sticker"]
    assert [a.role for a in items[1].attachments] == ["contact_avatar"]
    assert items[2].direction == "directionless"
    assert items[2].update_kind == "expiration_timer_change"


def test_attachment_without_pointer():
    frame = b.incoming_text()
    frame.chat_item.view_once_message.attachment.was_downloaded = True
    item = collect(b.minimal_backup() + [frame]).items[0]
    assert item.view_once_has_attachment
    assert item.attachments[0].has_pointer is False


def test_revisions_become_records():
    frame = b.incoming_text("new")
    revision = frame.chat_item.revisions.add()
    revision.CopyFrom(b.incoming_text("old").chat_item)
    item = collect(b.minimal_backup() + [frame]).items[0]
    assert item.revision_count == 1
    assert item.revisions[0].text == "old"
    assert item.revisions[0].item_number == item.item_number


def test_empty_oneofs_reported_as_none():
    empty_frame = schema.Frame()
    empty_item = schema.Frame()
    empty_item.chat_item.chat_id = b.CHAT_ID
    seen = collect(b.minimal_backup() + [empty_frame, empty_item])
    assert seen.others == [(5, "empty")]
    assert seen.items[0].direction is None
    assert seen.items[0].kind is None


def test_other_frame_kinds():
    pack = schema.Frame()
    pack.sticker_pack.pack_id = b"\x01" * 16
    folder = schema.Frame()
    folder.chat_folder.folder_type = folder.chat_folder.ALL
    seen = collect(b.minimal_backup() + [pack, folder])
    assert seen.others == [(5, "sticker_pack"), (6, "chat_folder")]


def test_unknown_fields_reported_with_path():
    frame = b.incoming_text()
    # Field 99 (varint) inside ChatItem.standardMessage.text, and field 50 in the Frame.
    text = frame.chat_item.standard_message.text.SerializeToString() + b"\x98\x06\x01"
    frame.chat_item.standard_message.text.Clear()
    frame.chat_item.standard_message.text.MergeFromString(text)
    data = frame.SerializeToString() + b"\x92\x03\x00"
    info = b.backup_info().SerializeToString() + b"\x98\x06\x07"
    messages = [info] + b.to_bytes(b.minimal_backup()[1:]) + [data]
    seen = collect(messages)
    assert seen.unknown == [
        (0, "", 99),
        (5, "", 50),
        (5, "chat_item.standard_message.text", 99),
    ]
    assert seen.items[0].unknown_field_count == 2
    assert seen.items[0].text == "hello"


def test_non_canonical_encoding_is_not_unknown():
    # A default value written out explicitly changes the re-encoded size but is no unknown field.
    data = b.incoming_text().SerializeToString() + b"\x22\x02\x38\x00"
    seen = collect(b.to_bytes(b.minimal_backup()) + [data])
    assert seen.unknown == []


def test_empty_stream_rejected():
    with pytest.raises(NotABackupError, match="empty"):
        scan([], [Collector()])


def test_invalid_protobuf_frame_named():
    messages = b.to_bytes(b.minimal_backup()) + [b"\x22\x05\x08"]
    with pytest.raises(MalformedFrameError, match="frame 5: invalid protobuf"):
        scan(messages, [Collector()])


def test_invalid_backup_info_named():
    with pytest.raises(MalformedFrameError, match=r"frame 0 \(BackupInfo\)"):
        scan([b"\x0a\x05ab"], [Collector()])


def test_visitor_without_callbacks_is_skipped():
    class OnlyItems:
        def __init__(self):
            self.count = 0

        def chat_item(self, record):
            self.count += 1

    visitor = OnlyItems()
    scan(b.to_bytes(b.minimal_backup() + [b.incoming_text()]), [visitor])
    assert visitor.count == 1
