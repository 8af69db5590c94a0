"""Typed records for what an archive contains, and the streaming visitor interface over them.

An archive can hold millions of chat items, so nothing here keeps every item: the reader turns
each frame into a small record, hands it to every visitor, and drops it. ``BackupSummary`` is
the visitor that counts; rules (``harness.rules``) are visitors that emit located findings.
Memory therefore stays flat in the archive size unless a caller asks to collect items.

Ids (``chat_id``, ``author_id``, ``recipient_id``) are the file-local ids of the frame stream.
``frame_index`` counts messages in the stream: 0 is the BackupInfo, 1 the first Frame.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

# Chat item kinds, named after the ChatItem `item` oneof members.
ITEM_KINDS = (
    "standard",
    "contact",
    "sticker",
    "remote_deleted",
    "update",
    "payment",
    "gift_badge",
    "view_once",
    "direct_story_reply",
    "poll",
    "admin_deleted",
)


@dataclasses.dataclass(slots=True)
class BackupInfoRecord:
    version: int
    backup_time_ms: int
    media_root_key: bytes = dataclasses.field(repr=False)
    current_app_version: str = ""
    first_app_version: str = ""
    frame_index: int = 0


@dataclasses.dataclass(slots=True)
class AccountRecord:
    """The AccountData frame: profile and the settings libsignal requires to be set."""

    frame_index: int
    profile_key: bytes = dataclasses.field(repr=False)
    username: str | None = None
    given_name: str = ""
    family_name: str = ""
    has_account_settings: bool = False
    universal_expire_timer_seconds: int = 0
    # Enum numbers as stored; 0 is the UNKNOWN value.
    phone_number_sharing_mode: int = 0
    default_sent_media_quality: int = 0
    app_theme: int = 0
    calls_use_less_data_setting: int = 0
    auto_download_options: tuple[int, ...] | None = None  # images, audio, video, documents
    navigation_bar_size: int | None = None  # only when androidSpecificSettings is present
    backup_tier: int | None = None


@dataclasses.dataclass(slots=True)
class RecipientRecord:
    frame_index: int
    recipient_id: int
    # "contact", "group", "distribution_list", "self", "release_notes", "call_link"; None when
    # the destination oneof is empty.
    kind: str | None
    name: str | None = None  # profile or group title, when the frame has one
    aci: bytes | None = None
    e164: int | None = None
    pni: bytes | None = None
    username: str | None = None
    registered: bool | None = None  # contact: None when the registration oneof is empty
    blocked: bool = False
    blocked_at_ms: int = 0
    identity_state: int = 0  # contact: 0 DEFAULT, 1 VERIFIED, 2 UNVERIFIED
    has_identity_key: bool = False
    # The identifier that must be unique among recipients of its kind: group master key,
    # distribution id, call-link root key.
    unique_key: bytes | None = None
    member_recipient_ids: tuple[int, ...] = ()  # distribution list members


@dataclasses.dataclass(slots=True)
class ChatRecord:
    frame_index: int
    chat_id: int
    recipient_id: int
    expiration_timer_ms: int | None = None
    expire_timer_version: int = 0
    pinned_order: int | None = None


@dataclasses.dataclass(slots=True)
class AttachmentRecord:
    """One FilePointer found in a chat item, with the fields the tier rules need."""

    role: str  # "attachment", "long_text", "link_preview", "quote_thumbnail", "sticker", "contact_avatar", "view_once"
    content_type: str | None
    file_name: str | None
    size: int
    key: bytes = dataclasses.field(repr=False)  # 64-byte attachment key, empty when no content
    plaintext_hash: bytes | None = None
    encrypted_digest: bytes | None = None
    transit_cdn_key: str | None = None
    transit_cdn_number: int | None = None
    transit_upload_ms: int | None = None
    media_tier_cdn_number: int | None = None
    caption: str | None = None
    has_pointer: bool = True  # False for a MessageAttachment without its FilePointer
    has_locator: bool = True  # False when FilePointer.locatorInfo is missing
    local_key: bytes | None = dataclasses.field(default=None, repr=False)
    incremental_mac: bytes | None = dataclasses.field(default=None, repr=False)
    incremental_mac_chunk_size: int | None = None
    client_uuid: bytes | None = None

    @property
    def locator_empty(self) -> bool:
        """True for the all-empty LocatorInfo that marks an unavailable attachment."""
        return (
            not self.key
            and self.size == 0
            and self.plaintext_hash is None
            and self.encrypted_digest is None
            and self.transit_cdn_key is None
            and self.transit_cdn_number is None
            and self.transit_upload_ms is None
            and self.media_tier_cdn_number is None
            and self.local_key is None
        )

    @property
    def has_content(self) -> bool:
        return bool(self.key)

    @property
    def on_transit_tier(self) -> bool:
        return self.transit_cdn_key is not None

    def media_name(self) -> str | None:
        """Return the media-tier object name: hex of plaintextHash followed by the key."""
        if not self.plaintext_hash or not self.key:
            return None
        return (self.plaintext_hash + self.key).hex()


@dataclasses.dataclass(slots=True)
class ChatItemRecord:
    frame_index: int
    item_number: int  # position of this item among the chat items of its chat, from 1
    chat_id: int
    author_id: int
    date_sent: int
    direction: str | None  # "incoming", "outgoing", "directionless" or None when unset
    kind: str | None  # one of ITEM_KINDS, or None when the oneof is empty
    expire_start_ms: int | None = None  # None when the field is absent (presence matters)
    expires_in_ms: int | None = None
    read: bool = False  # incoming only
    send_statuses: tuple[str, ...] = ()  # outgoing: "pending", "sent", "delivered", ...
    text: str | None = None
    attachments: tuple[AttachmentRecord, ...] = ()
    view_once_has_attachment: bool = False
    quote_type: str | None = None  # "normal", "view_once", ... when the item quotes another
    quote_target_sent: int | None = None
    quoted_attachment_count: int = 0
    revision_count: int = 0
    reaction_count: int = 0
    update_kind: str | None = None  # ChatUpdateMessage member for kind "update"
    unknown_field_count: int = 0
    sms: bool = False
    date_received: int | None = None  # incoming and outgoing details
    date_server_sent: int | None = None  # incoming, when present
    send_status_recipient_ids: tuple[int, ...] = ()  # parallel to send_statuses
    # Other timestamps of the item (send statuses, reactions, quotes, link previews, pins,
    # attachment uploads) as (field name, milliseconds), for range checks.
    other_timestamps: tuple[tuple[str, int], ...] = ()
    has_text: bool = False  # a Text message is present (its body may be empty)
    body_range_count: int = 0
    referenced_recipient_ids: tuple[int, ...] = ()  # reaction, quote and poll-vote authors
    revisions: tuple[ChatItemRecord, ...] = ()  # older versions, oldest first

    @property
    def disappearing(self) -> bool:
        return self.expires_in_ms is not None

    def location(self) -> str:
        return f"chat {self.chat_id}, item {self.item_number} (frame {self.frame_index}, sent {self.date_sent})"


@dataclasses.dataclass(slots=True)
class Finding:
    """A rule violation located in the archive (or in recorded traffic)."""

    rule: str  # short id, e.g. "exclusion.view-once-attachment"
    message: str  # one sentence, names the place: "chat 3, item 57: view-once attachment present"
    location: str = ""
    severity: str = "error"  # "error" fails a check; "warning" is reported only

    def to_json(self) -> dict[str, str]:
        return dataclasses.asdict(self)


class ArchiveVisitor(Protocol):
    """Receives records in stream order. Every method is optional to implement."""

    def backup_info(self, record: BackupInfoRecord) -> None: ...

    def account(self, record: AccountRecord) -> None: ...

    def recipient(self, record: RecipientRecord) -> None: ...

    def chat(self, record: ChatRecord) -> None: ...

    def chat_item(self, record: ChatItemRecord) -> None: ...

    def other_frame(self, frame_index: int, kind: str) -> None:
        """A frame without a record type: "sticker_pack", "ad_hoc_call", "notification_profile",
        "chat_folder", or "empty" when the Frame.item oneof is not set."""

    def unknown_field(self, frame_index: int, path: str, tag: int) -> None: ...

    def end(self) -> None: ...
