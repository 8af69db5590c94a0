"""Builders of small, valid backup frame streams for the reader, validity and CLI tests.

``minimal_backup()`` returns the messages of a stream libsignal accepts (purpose RemoteBackup):
BackupInfo, AccountData, Self (id 1), a contact (id 2) and its chat (id 3). Tests append chat
items built with ``incoming_text`` / ``outgoing_text`` and plant one defect at a time.
"""

from __future__ import annotations

from pathlib import Path

from harness import schema
from harness.frames import encode_message

BACKUP_TIME_MS = 1_715_636_551_000
DAY_MS = 86_400_000
SELF_ID = 1
CONTACT_ID = 2
CHAT_ID = 3
CONTACT_ACI = bytes.fromhex("000a11ce000040008000000000000001")


def backup_info(backup_time_ms: int = BACKUP_TIME_MS, media_root_key: bytes = b"\xab" * 32):
    return schema.BackupInfo(
        version=1,
        backup_time_ms=backup_time_ms,
        media_root_backup_key=media_root_key,
        current_app_version="Harness 1.0",
        first_app_version="Harness 1.0",
    )


def account_frame():
    frame = schema.Frame()
    account = frame.account
    account.profile_key = b"\x61" * 32
    account.given_name = "Test"
    settings = account.account_settings
    settings.phone_number_sharing_mode = settings.NOBODY
    settings.default_sent_media_quality = settings.STANDARD
    settings.app_theme = settings.SYSTEM
    settings.calls_use_less_data_setting = settings.MOBILE_DATA_ONLY
    return frame


def self_frame(recipient_id: int = SELF_ID):
    frame = schema.Frame()
    frame.recipient.id = recipient_id
    frame.recipient.self.SetInParent()
    return frame


def contact_frame(recipient_id: int = CONTACT_ID, aci: bytes = CONTACT_ACI):
    frame = schema.Frame()
    frame.recipient.id = recipient_id
    contact = frame.recipient.contact
    contact.aci = aci
    contact.profile_given_name = "Alice"
    contact.registered.SetInParent()
    return frame


def chat_frame(chat_id: int = CHAT_ID, recipient_id: int = CONTACT_ID):
    frame = schema.Frame()
    frame.chat.id = chat_id
    frame.chat.recipient_id = recipient_id
    return frame


def incoming_text(body: str = "hello", date_sent: int = BACKUP_TIME_MS - DAY_MS, **fields):
    frame = schema.Frame()
    item = frame.chat_item
    item.chat_id = fields.pop("chat_id", CHAT_ID)
    item.author_id = fields.pop("author_id", CONTACT_ID)
    item.date_sent = date_sent
    item.incoming.date_received = date_sent + 1000
    item.incoming.read = fields.pop("read", False)
    item.standard_message.text.body = body
    for name, value in fields.items():
        setattr(item, name, value)
    return frame


def outgoing_text(body: str = "hi", date_sent: int = BACKUP_TIME_MS - DAY_MS, statuses=("sent",)):
    frame = schema.Frame()
    item = frame.chat_item
    item.chat_id = CHAT_ID
    item.author_id = SELF_ID
    item.date_sent = date_sent
    item.outgoing.date_received = date_sent
    for status in statuses:
        send_status = item.outgoing.send_status.add(recipient_id=CONTACT_ID, timestamp=date_sent)
        if status is not None:
            getattr(send_status, status).SetInParent()
    item.standard_message.text.body = body
    return frame


def file_pointer(target, *, transit: bool = True, media: bool = False) -> None:
    """Fill a FilePointer message as an uploaded image attachment."""
    target.content_type = "image/jpeg"
    target.file_name = "photo.jpg"
    locator = target.locator_info
    locator.key = b"\x11" * 64
    locator.size = 1234
    if transit:
        locator.transit_cdn_key = "abcdefghijklmnop"
        locator.transit_cdn_number = 3
        locator.transit_tier_upload_timestamp = BACKUP_TIME_MS - DAY_MS
    if media:
        locator.plaintext_hash = b"\x22" * 32
        locator.media_tier_cdn_number = 3
    else:
        locator.encrypted_digest = b"\x33" * 32


def minimal_backup() -> list:
    """Return the messages (BackupInfo first) of the smallest stream used by these tests."""
    return [backup_info(), account_frame(), self_frame(), contact_frame(), chat_frame()]


def to_bytes(messages) -> list[bytes]:
    return [message.SerializeToString() for message in messages]


def write_stream(path: Path, messages) -> Path:
    """Write messages (protobuf objects or bytes) as a plain frame stream file."""
    with open(path, "wb") as stream:
        for message in messages:
            data = message if isinstance(message, bytes) else message.SerializeToString()
            stream.write(encode_message(data))
    return path
