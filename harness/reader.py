"""Decode frame-stream messages into the records of ``harness.model`` and hand them to visitors.

``scan(messages, visitors)`` parses message 0 as the BackupInfo and every later message as a
Frame (with this project's schema, ``harness.schema``), turns each into one small record and
calls every visitor in stream order. Nothing is kept between frames except the item count per
chat, so memory stays flat however many chat items the archive holds.

Presence is kept where the format gives it meaning: ``expire_start_ms`` and ``expires_in_ms``
are None when the field is absent and 0 when it is present with value 0.

Unknown fields are reported to ``unknown_field(frame_index, path, tag)``. The path is a dotted
list of schema field names from the Frame down, such as ``chat_item.standard_message.text``, and
is empty for a field directly in the BackupInfo or Frame. Sub-messages the schema keeps opaque (group changes, chat
styles, call updates and a few others, see ``harness.schema.definition``) are not looked into.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from google.protobuf.message import DecodeError
from google.protobuf.unknown_fields import UnknownFieldSet

from harness import schema
from harness.errors import MalformedFrameError, NotABackupError
from harness.model import (
    AccountRecord,
    ArchiveVisitor,
    AttachmentRecord,
    BackupInfoRecord,
    ChatItemRecord,
    ChatRecord,
    RecipientRecord,
)

log = logging.getLogger(__name__)

PROGRESS_EVERY_FRAMES = 500_000

# ChatItem `item` oneof member -> record kind (harness.model.ITEM_KINDS).
ITEM_KIND_BY_MEMBER = {
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
QUOTE_TYPES = {0: "unknown", 1: "normal", 2: "gift_badge", 3: "view_once", 4: "poll"}
FRAME_KINDS_WITHOUT_RECORD = ("sticker_pack", "ad_hoc_call", "notification_profile", "chat_folder")

_BackupInfo = schema.BackupInfo
_Frame = schema.Frame


# ---- attachments ------------------------------------------------------------------------------


def attachment_record(
    pointer: Any, role: str, *, has_pointer: bool = True, client_uuid: bytes | None = None
) -> AttachmentRecord:
    """Build the record of one FilePointer (``pointer`` may be None for a missing pointer)."""
    if pointer is None:
        return AttachmentRecord(
            role=role, content_type=None, file_name=None, size=0, key=b"",
            has_pointer=False, has_locator=False, client_uuid=client_uuid,
        )  # fmt: skip
    has = pointer.HasField
    has_locator = has("locator_info")
    locator = pointer.locator_info
    has_in_locator = locator.HasField
    integrity = locator.WhichOneof("integrity_check")
    return AttachmentRecord(
        role=role,
        content_type=pointer.content_type if has("content_type") else None,
        file_name=pointer.file_name if has("file_name") else None,
        size=locator.size,
        key=locator.key,
        plaintext_hash=locator.plaintext_hash if integrity == "plaintext_hash" else None,
        encrypted_digest=locator.encrypted_digest if integrity == "encrypted_digest" else None,
        transit_cdn_key=locator.transit_cdn_key if has_in_locator("transit_cdn_key") else None,
        transit_cdn_number=(
            locator.transit_cdn_number if has_in_locator("transit_cdn_number") else None
        ),
        transit_upload_ms=(
            locator.transit_tier_upload_timestamp
            if has_in_locator("transit_tier_upload_timestamp")
            else None
        ),
        media_tier_cdn_number=(
            locator.media_tier_cdn_number if has_in_locator("media_tier_cdn_number") else None
        ),
        caption=pointer.caption if has("caption") else None,
        has_pointer=has_pointer,
        has_locator=has_locator,
        local_key=locator.local_key if has_in_locator("local_key") else None,
        incremental_mac=pointer.incremental_mac if has("incremental_mac") else None,
        incremental_mac_chunk_size=(
            pointer.incremental_mac_chunk_size if has("incremental_mac_chunk_size") else None
        ),
        client_uuid=client_uuid,
    )


def message_attachment_record(attachment: Any, role: str) -> AttachmentRecord:
    """Build the record of a MessageAttachment (a FilePointer plus flags)."""
    client_uuid = attachment.client_uuid if attachment.HasField("client_uuid") else None
    if not attachment.HasField("pointer"):
        return attachment_record(None, role, has_pointer=False, client_uuid=client_uuid)
    return attachment_record(attachment.pointer, role, client_uuid=client_uuid)


# ---- chat items -------------------------------------------------------------------------------


class _ItemDetails:
    """Fields that the body of one chat item adds to its record, gathered per body kind."""

    __slots__ = (
        "text", "has_text", "body_range_count", "attachments", "timestamps", "recipients",
        "reaction_count", "quote_type", "quote_target_sent", "quoted_attachment_count",
        "view_once_has_attachment", "update_kind",
    )  # fmt: skip

    def __init__(self) -> None:
        self.text: str | None = None
        self.has_text = False
        self.body_range_count = 0
        self.attachments: list[AttachmentRecord] = []
        self.timestamps: list[tuple[str, int]] = []
        self.recipients: list[int] = []
        self.reaction_count = 0
        self.quote_type: str | None = None
        self.quote_target_sent: int | None = None
        self.quoted_attachment_count = 0
        self.view_once_has_attachment = False
        self.update_kind: str | None = None

    def add_text(self, text: Any) -> None:
        self.has_text = True
        self.text = text.body
        self.body_range_count = len(text.body_ranges)

    def add_reactions(self, reactions: Sequence[Any]) -> None:
        self.reaction_count = len(reactions)
        for reaction in reactions:
            self.recipients.append(reaction.author_id)
            self.timestamps.append(("Reaction.sentTimestamp", reaction.sent_timestamp))

    def add_quote(self, quote: Any) -> None:
        self.quote_type = QUOTE_TYPES.get(quote.type, str(quote.type))
        if quote.HasField("target_sent_timestamp"):
            self.quote_target_sent = quote.target_sent_timestamp
            self.timestamps.append(("Quote.targetSentTimestamp", quote.target_sent_timestamp))
        self.recipients.append(quote.author_id)
        self.quoted_attachment_count = len(quote.attachments)
        for quoted in quote.attachments:
            if quoted.HasField("thumbnail"):
                self.add_attachment(message_attachment_record(quoted.thumbnail, "quote_thumbnail"))

    def add_attachment(self, record: AttachmentRecord) -> None:
        self.attachments.append(record)
        if record.transit_upload_ms is not None:
            self.timestamps.append(
                ("FilePointer.transitTierUploadTimestamp", record.transit_upload_ms)
            )


def _standard_details(message: Any, details: _ItemDetails) -> None:
    if message.HasField("text"):
        details.add_text(message.text)
    if message.HasField("quote"):
        details.add_quote(message.quote)
    for attachment in message.attachments:
        details.add_attachment(message_attachment_record(attachment, "attachment"))
    if message.HasField("long_text"):
        details.add_attachment(attachment_record(message.long_text, "long_text"))
    for preview in message.link_preview:
        if preview.HasField("date"):
            details.timestamps.append(("LinkPreview.date", preview.date))
        if preview.HasField("image"):
            details.add_attachment(attachment_record(preview.image, "link_preview"))
    details.add_reactions(message.reactions)


def _contact_details(message: Any, details: _ItemDetails) -> None:
    contact = message.contact
    if contact.HasField("avatar"):
        details.add_attachment(attachment_record(contact.avatar, "contact_avatar"))
    details.add_reactions(message.reactions)


def _sticker_details(message: Any, details: _ItemDetails) -> None:
    sticker = message.sticker
    if sticker.HasField("data"):
        details.add_attachment(attachment_record(sticker.data, "sticker"))
    details.add_reactions(message.reactions)


def _view_once_details(message: Any, details: _ItemDetails) -> None:
    if message.HasField("attachment"):
        details.view_once_has_attachment = True
        details.add_attachment(message_attachment_record(message.attachment, "view_once"))
    details.add_reactions(message.reactions)


def _story_reply_details(message: Any, details: _ItemDetails) -> None:
    if message.WhichOneof("reply") == "text_reply":
        reply = message.text_reply
        if reply.HasField("text"):
            details.add_text(reply.text)
        if reply.HasField("long_text"):
            details.add_attachment(attachment_record(reply.long_text, "long_text"))
    details.add_reactions(message.reactions)


def _update_details(message: Any, details: _ItemDetails) -> None:
    details.update_kind = message.WhichOneof("update")


def _reactions_only(message: Any, details: _ItemDetails) -> None:
    details.add_reactions(message.reactions)


def _no_details(message: Any, details: _ItemDetails) -> None:
    pass


_DETAILS_BY_MEMBER = {
    "standard_message": _standard_details,
    "contact_message": _contact_details,
    "sticker_message": _sticker_details,
    "view_once_message": _view_once_details,
    "direct_story_reply_message": _story_reply_details,
    "update_message": _update_details,
    "poll": _reactions_only,
    "remote_deleted_message": _no_details,
    "payment_notification": _no_details,
    "gift_badge": _no_details,
    "admin_deleted_message": _no_details,
}

_SEND_STATUS_NAMES = {
    None: "missing",
    "pending": "pending",
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "viewed": "viewed",
    "skipped": "skipped",
    "failed": "failed",
}


def chat_item_record(
    item: Any, frame_index: int, item_number: int, unknown_field_count: int = 0
) -> ChatItemRecord:
    """Build the record of one ChatItem message, with its revisions as records too."""
    has = item.HasField
    direction = item.WhichOneof("directional_details")
    member = item.WhichOneof("item")
    details = _ItemDetails()
    if member is not None:
        _DETAILS_BY_MEMBER[member](getattr(item, member), details)
    if has("pin_details"):
        pin = item.pin_details
        details.timestamps.append(("PinDetails.pinnedAtTimestamp", pin.pinned_at_timestamp))
        if pin.WhichOneof("pin_expiry") == "pin_expires_at_timestamp":
            details.timestamps.append(
                ("PinDetails.pinExpiresAtTimestamp", pin.pin_expires_at_timestamp)
            )

    read = False
    date_received = date_server_sent = None
    statuses: tuple[str, ...] = ()
    status_recipients: tuple[int, ...] = ()
    if direction == "incoming":
        incoming = item.incoming
        read = incoming.read
        date_received = incoming.date_received
        if incoming.HasField("date_server_sent"):
            date_server_sent = incoming.date_server_sent
    elif direction == "outgoing":
        outgoing = item.outgoing
        date_received = outgoing.date_received
        send_status = outgoing.send_status
        statuses = tuple(
            _SEND_STATUS_NAMES[status.WhichOneof("delivery_status")] for status in send_status
        )
        status_recipients = tuple(status.recipient_id for status in send_status)
        for status in send_status:
            details.timestamps.append(("SendStatus.timestamp", status.timestamp))

    revisions = tuple(
        chat_item_record(revision, frame_index, item_number) for revision in item.revisions
    )
    return ChatItemRecord(
        frame_index=frame_index,
        item_number=item_number,
        chat_id=item.chat_id,
        author_id=item.author_id,
        date_sent=item.date_sent,
        direction=direction,
        kind=ITEM_KIND_BY_MEMBER[member] if member is not None else None,
        expire_start_ms=item.expire_start_date if has("expire_start_date") else None,
        expires_in_ms=item.expires_in_ms if has("expires_in_ms") else None,
        read=read,
        send_statuses=statuses,
        text=details.text,
        attachments=tuple(details.attachments),
        view_once_has_attachment=details.view_once_has_attachment,
        quote_type=details.quote_type,
        quote_target_sent=details.quote_target_sent,
        quoted_attachment_count=details.quoted_attachment_count,
        revision_count=len(revisions),
        reaction_count=details.reaction_count,
        update_kind=details.update_kind,
        unknown_field_count=unknown_field_count,
        sms=item.sms,
        date_received=date_received,
        date_server_sent=date_server_sent,
        send_status_recipient_ids=status_recipients,
        other_timestamps=tuple(details.timestamps),
        has_text=details.has_text,
        body_range_count=details.body_range_count,
        referenced_recipient_ids=tuple(details.recipients),
        revisions=revisions,
    )


# ---- other frames -----------------------------------------------------------------------------


def backup_info_record(info: Any) -> BackupInfoRecord:
    return BackupInfoRecord(
        version=info.version,
        backup_time_ms=info.backup_time_ms,
        media_root_key=info.media_root_backup_key,
        current_app_version=info.current_app_version,
        first_app_version=info.first_app_version,
        frame_index=0,
    )


def account_record(account: Any, frame_index: int) -> AccountRecord:
    settings = account.account_settings
    auto_download = None
    if settings.HasField("auto_download_settings"):
        options = settings.auto_download_settings
        auto_download = (options.images, options.audio, options.video, options.documents)
    navigation_bar_size = None
    if account.HasField("android_specific_settings"):
        navigation_bar_size = account.android_specific_settings.navigation_bar_size
    return AccountRecord(
        frame_index=frame_index,
        profile_key=account.profile_key,
        username=account.username if account.HasField("username") else None,
        given_name=account.given_name,
        family_name=account.family_name,
        has_account_settings=account.HasField("account_settings"),
        universal_expire_timer_seconds=settings.universal_expire_timer_seconds,
        phone_number_sharing_mode=settings.phone_number_sharing_mode,
        default_sent_media_quality=settings.default_sent_media_quality,
        app_theme=settings.app_theme,
        calls_use_less_data_setting=settings.calls_use_less_data_setting,
        auto_download_options=auto_download,
        navigation_bar_size=navigation_bar_size,
        backup_tier=settings.backup_tier if settings.HasField("backup_tier") else None,
    )


def _contact_name(contact: Any) -> str | None:
    parts = [
        contact.profile_given_name if contact.HasField("profile_given_name") else "",
        contact.profile_family_name if contact.HasField("profile_family_name") else "",
    ]
    name = " ".join(part for part in parts if part)
    return name or None


def recipient_record(recipient: Any, frame_index: int) -> RecipientRecord:
    kind = recipient.WhichOneof("destination")
    record = RecipientRecord(frame_index=frame_index, recipient_id=recipient.id, kind=kind)
    if kind == "contact":
        contact = recipient.contact
        has = contact.HasField
        record.name = _contact_name(contact)
        record.aci = contact.aci if has("aci") else None
        record.pni = contact.pni if has("pni") else None
        record.e164 = contact.e164 if has("e164") else None
        record.username = contact.username if has("username") else None
        registration = contact.WhichOneof("registration")
        record.registered = None if registration is None else registration == "registered"
        record.blocked = contact.blocked
        record.blocked_at_ms = contact.blocked_at_timestamp
        record.identity_state = contact.identity_state
        record.has_identity_key = has("identity_key")
    elif kind == "group":
        group = recipient.group
        record.name = group.snapshot.title.title or None
        record.unique_key = group.master_key
        record.blocked = group.blocked
        record.blocked_at_ms = group.blocked_at_timestamp
    elif kind == "distribution_list":
        item = recipient.distribution_list
        record.unique_key = item.distribution_id
        if item.WhichOneof("item") == "distribution_list":
            record.name = item.distribution_list.name or None
            record.member_recipient_ids = tuple(item.distribution_list.member_recipient_ids)
    elif kind == "call_link":
        record.name = recipient.call_link.name or None
        record.unique_key = recipient.call_link.root_key
    return record


def chat_record(chat: Any, frame_index: int) -> ChatRecord:
    return ChatRecord(
        frame_index=frame_index,
        chat_id=chat.id,
        recipient_id=chat.recipient_id,
        expiration_timer_ms=chat.expiration_timer_ms if chat.HasField("expiration_timer_ms") else None,
        expire_timer_version=chat.expire_timer_version,
        pinned_order=chat.pinned_order if chat.HasField("pinned_order") else None,
    )


# ---- unknown fields ---------------------------------------------------------------------------


def iter_unknown_fields(message: Any, path: str = "") -> Iterator[tuple[str, int]]:
    """Yield (path, tag) for every unknown field in a parsed message and its sub-messages."""
    for field in UnknownFieldSet(message):
        yield path, field.field_number
    for descriptor, value in message.ListFields():
        if descriptor.message_type is None:
            continue
        child_path = f"{path}.{descriptor.name}" if path else descriptor.name
        if descriptor.is_repeated:
            for element in value:
                yield from iter_unknown_fields(element, child_path)
        else:
            yield from iter_unknown_fields(value, child_path)


def has_unknown_fields(message: Any, encoded_length: int) -> bool:
    """Tell cheaply whether a freshly parsed message may hold unknown fields.

    Drops the unknown fields and compares the re-encoded size with the input size: equal sizes
    prove there were none. A non-canonical encoding (a default value written out, an unpacked
    list) also changes the size; the caller then walks the message to find the real ones.
    Modifies ``message``.
    """
    message.DiscardUnknownFields()
    return message.ByteSize() != encoded_length


# ---- the scan ---------------------------------------------------------------------------------


class _Dispatch:
    """Bound visitor methods per callback, so the hot loop skips visitors that lack one."""

    def __init__(self, visitors: Iterable[ArchiveVisitor]):
        def bound(name: str) -> list[Any]:
            return [getattr(v, name) for v in visitors if callable(getattr(v, name, None))]

        self.backup_info = bound("backup_info")
        self.account = bound("account")
        self.recipient = bound("recipient")
        self.chat = bound("chat")
        self.chat_item = bound("chat_item")
        self.other_frame = bound("other_frame")
        self.unknown_field = bound("unknown_field")
        self.end = bound("end")


def parse_backup_info(data: bytes) -> Any:
    try:
        return _BackupInfo.FromString(data)
    except DecodeError as error:
        raise MalformedFrameError(
            f"frame 0 (BackupInfo): invalid protobuf ({error}); the input is not a backup frame "
            "stream or it is corrupt"
        ) from None


def parse_frame(data: bytes, frame_index: int) -> Any:
    try:
        return _Frame.FromString(data)
    except DecodeError as error:
        raise MalformedFrameError(
            f"frame {frame_index}: invalid protobuf ({error}); the frame stream is corrupt"
        ) from None


def _report_unknown(dispatch: _Dispatch, message: Any, frame_index: int) -> int:
    count = 0
    for path, tag in iter_unknown_fields(message):
        count += 1
        for callback in dispatch.unknown_field:
            callback(frame_index, path, tag)
    return count


class FrameDecoder:
    """Decodes messages one at a time and calls the visitors; ``scan`` drives it.

    Holds the only state kept between frames: the number of chat items seen per chat, which
    gives each chat item its ``item_number``.
    """

    def __init__(self, visitors: Sequence[ArchiveVisitor]):
        self.dispatch = _Dispatch(visitors)
        self.item_counts: dict[int, int] = {}

    def backup_info(self, data: bytes) -> BackupInfoRecord:
        info = parse_backup_info(data)
        record = backup_info_record(info)
        for callback in self.dispatch.backup_info:
            callback(record)
        if has_unknown_fields(info, len(data)):
            _report_unknown(self.dispatch, parse_backup_info(data), 0)
        return record

    def frame(self, data: bytes, frame_index: int) -> str:
        """Decode one Frame, call the visitors and return its kind ("chat_item", "empty", ...)."""
        frame = parse_frame(data, frame_index)
        kind, record = _decode_frame(frame, frame_index, self.item_counts)
        # The check drops unknown fields from `frame`, so it runs after decoding.
        if has_unknown_fields(frame, len(data)):
            count = _report_unknown(self.dispatch, parse_frame(data, frame_index), frame_index)
            if kind == "chat_item":
                record.unknown_field_count = count
        _dispatch(self.dispatch, kind, record, frame_index)
        return kind

    def end(self) -> None:
        for callback in self.dispatch.end:
            callback()


def scan(messages: Iterable[bytes], visitors: Sequence[ArchiveVisitor]) -> None:
    """Decode every message of a frame stream and call the visitors in stream order.

    Raises NotABackupError for an empty stream and MalformedFrameError (naming the frame) for
    a message that is not valid protobuf. Calls ``end()`` on every visitor after the last frame.
    """
    decoder = FrameDecoder(visitors)
    iterator = iter(messages)
    first = next(iterator, None)
    if first is None:
        raise NotABackupError("the frame stream is empty: no BackupInfo found")
    decoder.backup_info(first)
    frame_index = 0
    for frame_index, data in enumerate(iterator, start=1):
        decoder.frame(data, frame_index)
        if frame_index % PROGRESS_EVERY_FRAMES == 0:
            log.info("read %d frames", frame_index)
    log.info("read %d frames", frame_index)
    decoder.end()


def _decode_frame(frame: Any, frame_index: int, item_counts: dict[int, int]) -> tuple[str, Any]:
    kind = frame.WhichOneof("item")
    if kind == "chat_item":
        item = frame.chat_item
        chat_id = item.chat_id
        number = item_counts.get(chat_id, 0) + 1
        item_counts[chat_id] = number
        return kind, chat_item_record(item, frame_index, number)
    if kind == "recipient":
        return kind, recipient_record(frame.recipient, frame_index)
    if kind == "chat":
        return kind, chat_record(frame.chat, frame_index)
    if kind == "account":
        return kind, account_record(frame.account, frame_index)
    return kind or "empty", None


def _dispatch(dispatch: _Dispatch, kind: str, record: Any, frame_index: int) -> None:
    if kind == "chat_item":
        callbacks = dispatch.chat_item
    elif kind == "recipient":
        callbacks = dispatch.recipient
    elif kind == "chat":
        callbacks = dispatch.chat
    elif kind == "account":
        callbacks = dispatch.account
    else:
        for callback in dispatch.other_frame:
            callback(frame_index, kind)
        return
    for callback in callbacks:
        callback(record)
