"""``ValidityChecker``: the structural rules libsignal enforces on a frame stream, as findings.

libsignal (``MessageBackup.validate``, 0.103.0) rejects a backup at its first violation; this
visitor reports every violation it sees, each located ("chat 3, item 57 (frame 812): ..."), and
keeps going. The messages quote libsignal's error text where it is known. Covered: the media
root key, AccountData (one, profile key, settings), recipient and chat ids (non-zero, unique,
defined before use), Self present, contact identifiers, empty oneofs, chat item authors and
directions, directionless iff update, send statuses, revisions, standard message bodies,
disappearing-message timers by purpose, view-once attachments, FilePointer / LocatorInfo shape
and timestamps too far in the future.

NOTE: unknown enum values, the ChatFolder "exactly one ALL folder" rule, sticker packs, ad-hoc
calls, notification profiles, group snapshots and the insides of opaque sub-messages (group
changes, calls, poll options) are not checked.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from harness.model import (
    AccountRecord,
    AttachmentRecord,
    BackupInfoRecord,
    ChatItemRecord,
    ChatRecord,
    Finding,
    RecipientRecord,
)


class Purpose(enum.IntEnum):
    """What a backup is for; libsignal's expiry and view-once rules depend on it."""

    DEVICE_TRANSFER = 0
    REMOTE_BACKUP = 1
    TAKEOUT_EXPORT = 2


MEDIA_ROOT_KEY_LENGTH = 32
PROFILE_KEY_LENGTH = 32
SERVICE_ID_LENGTH = 16
ATTACHMENT_KEY_LENGTH = 64
CLIENT_UUID_LENGTH = 16
# libsignal rejects timestamps above this many milliseconds (the largest JavaScript Date).
MAX_TIMESTAMP_MS = 8_640_000_000_000_000
# A remote backup may only hold disappearing messages that live at least a day past its time.
REMOTE_BACKUP_MIN_REMAINING_MS = 86_400_000
# libsignal limits: a Text body next to a long-text attachment, and a body with ranges.
LONG_TEXT_INLINE_MAX_BYTES = 2048
BODY_WITH_RANGES_MAX_BYTES = 131_072

# Recipient kinds that may own a chat, and that may author a chat item.
CHAT_OWNER_KINDS = frozenset({"contact", "group", "self", "release_notes"})
AUTHOR_KINDS = frozenset({"contact", "self", "release_notes"})
# Send statuses after which an outgoing message's timer must have started.
STARTED_SEND_STATUSES = frozenset({"sent", "delivered", "read", "viewed", "skipped"})
REVISABLE_KINDS = frozenset({"standard", "direct_story_reply"})

RULE = "validity"


class ValidityChecker:
    """Visitor that collects a ``Finding`` for each libsignal validity rule a stream breaks."""

    def __init__(self, purpose: Purpose = Purpose.REMOTE_BACKUP):
        self.purpose = purpose
        self.findings: list[Finding] = []
        self.backup_time_ms = 0
        self._accounts = 0
        self._recipient_kinds: dict[int, str | None] = {}
        self._recipients: dict[int, RecipientRecord] = {}
        self._chat_recipients: dict[int, int] = {}
        self._pinned_orders: set[int] = set()
        self._self_ids: list[int] = []
        self._identifiers: dict[tuple[str, object], int] = {}

    # ---- reporting ---------------------------------------------------------------------------

    def _add(self, rule: str, location: str, text: str) -> None:
        self.findings.append(Finding(f"{RULE}.{rule}", f"{location}: {text}", location))

    def _item(self, record: ChatItemRecord, rule: str, text: str) -> None:
        location = f"chat {record.chat_id}, item {record.item_number} (frame {record.frame_index})"
        self._add(rule, location, text)

    # ---- top-level frames --------------------------------------------------------------------

    def backup_info(self, record: BackupInfoRecord) -> None:
        self.backup_time_ms = record.backup_time_ms
        if len(record.media_root_key) != MEDIA_ROOT_KEY_LENGTH:
            self._add(
                "backup-info",
                "BackupInfo (frame 0)",
                "invalid mediaRootBackupKey (expected 32 bytes, got "
                f"{len(record.media_root_key)})",
            )

    def account(self, record: AccountRecord) -> None:
        self._accounts += 1
        location = f"AccountData (frame {record.frame_index})"
        if self._accounts > 1:
            self._add("account", location, "multiple AccountData frames found")
        if len(record.profile_key) != PROFILE_KEY_LENGTH:
            self._add("account", location, "profile key was invalid (expected 32 bytes, got "
                      f"{len(record.profile_key)})")  # fmt: skip
        if not record.has_account_settings:
            self._add("account", location, "no account settings found")
            return
        for name in _unset_account_settings(record):
            self._add("account", location, f"account setting {name} is UNKNOWN (0)")

    def recipient(self, record: RecipientRecord) -> None:
        location = f"recipient {record.recipient_id} (frame {record.frame_index})"
        if record.recipient_id == 0:
            self._add("recipient", location, "0 is not a valid recipient ID")
        elif record.recipient_id in self._recipient_kinds:
            self._add("recipient", location, "multiple frames with the same ID")
        else:
            self._recipient_kinds[record.recipient_id] = record.kind
            self._recipients[record.recipient_id] = record
        if record.kind is None:
            self._add("recipient", location, "Recipient.destination is a oneof but is empty")
        elif record.kind == "contact":
            self._check_contact(record, location)
        elif record.kind == "self":
            self._self_ids.append(record.recipient_id)
            if len(self._self_ids) == 2:
                self._add("recipient", location, "multiple Self recipients found")
        elif record.kind == "release_notes":
            self._unique(location, "Release Notes recipient", "release_notes", True)
        elif record.unique_key is not None:
            label = {"group": "group master key", "distribution_list": "distribution id",
                     "call_link": "call link root key"}[record.kind]  # fmt: skip
            self._unique(location, label, record.kind, record.unique_key)

    def _check_contact(self, record: RecipientRecord, location: str) -> None:
        for name, value in (("aci", record.aci), ("pni", record.pni)):
            if value is not None and len(value) != SERVICE_ID_LENGTH:
                self._add("contact", location, f"contact {name} is {len(value)} bytes, not 16")
        if record.aci is None and record.pni is None and record.e164 is None:
            self._add("contact", location, "contact has neither an ACI, a PNI nor an e164")
        if record.e164 == 0:
            self._add("contact", location, "contact e164 is 0")
        if record.registered is None:
            self._add("contact", location, "contact registered value is UNKNOWN")
        if record.identity_state != 0 and not record.has_identity_key:
            self._add("contact", location, "contact is verified or unverified without an identity key")
        if record.blocked_at_ms and not record.blocked:
            self._add("contact", location, "contact has a blockedAtTimestamp but is not blocked")
        for label, value in (("ACI", record.aci), ("PNI", record.pni), ("e164", record.e164),
                             ("username", record.username)):  # fmt: skip
            if value is not None:
                self._unique(location, label, label, value)

    def _unique(self, location: str, label: str, namespace: str, value: object) -> None:
        key = (namespace, value)
        if key in self._identifiers:
            self._add(
                "recipient",
                location,
                f"duplicate {label}: also used by recipient {self._identifiers[key]}",
            )
        else:
            self._identifiers[key] = int(location.split()[1])

    def chat(self, record: ChatRecord) -> None:
        location = f"chat {record.chat_id} (frame {record.frame_index})"
        if record.chat_id == 0:
            self._add("chat", location, "0 is not a valid chat ID")
        elif record.chat_id in self._chat_recipients:
            self._add("chat", location, "multiple records with the same ID")
        else:
            self._chat_recipients[record.chat_id] = record.recipient_id
        kind = self._recipient_kinds.get(record.recipient_id, "missing")
        if kind == "missing":
            self._add("chat", location, f"no record for RecipientId({record.recipient_id})")
        elif kind not in CHAT_OWNER_KINDS:
            self._add("chat", location, f"recipient {record.recipient_id} ({kind}) cannot own a chat")
        if record.expiration_timer_ms is not None and record.expire_timer_version == 0:
            self._add("chat", location, f"chat with RecipientId({record.recipient_id}) has an "
                      "expirationTimerMs but no expireTimerVersion")  # fmt: skip
        if record.pinned_order is not None:
            if record.pinned_order in self._pinned_orders:
                self._add("chat", location, f"pinnedOrder {record.pinned_order} is used twice")
            self._pinned_orders.add(record.pinned_order)

    def other_frame(self, frame_index: int, kind: str) -> None:
        if kind == "empty":
            self._add("frame", f"frame {frame_index}", "Frame.item is a oneof but is empty")

    def unknown_field(self, frame_index: int, path: str, tag: int) -> None:
        """Unknown fields are soft in libsignal; ``BackupSummary`` counts them."""

    # ---- chat items --------------------------------------------------------------------------

    def chat_item(self, record: ChatItemRecord) -> None:
        chat_recipient = self._chat_recipients.get(record.chat_id)
        if chat_recipient is None:
            text = "0 is not a valid chat ID" if record.chat_id == 0 else "no record for chat"
            self._item(record, "chat-item", text)
        self._check_item_shape(record, chat_recipient)
        self._check_timestamps(record)
        self._check_expiry(record)
        if record.attachments:
            self._check_attachments(record, record.attachments)
        if record.revisions:
            self._check_revisions(record)

    def item_findings(self, record: ChatItemRecord) -> list[Finding]:
        """Return the findings ``chat_item`` would add for ``record``, without adding them."""
        kept = self.findings
        self.findings = []
        try:
            self.chat_item(record)
            return self.findings
        finally:
            self.findings = kept

    def _check_item_shape(self, record: ChatItemRecord, chat_recipient: int | None) -> None:
        direction = record.direction
        kind = record.kind
        if direction is None:
            self._item(record, "chat-item", "ChatItem.directionalDetails is a oneof but is empty")
        if kind is None:
            self._item(record, "chat-item", "ChatItem.item is a oneof but is empty")
        elif direction == "directionless" and kind != "update":
            self._item(record, "chat-item", "directionless ChatItem wasn't an update message")
        elif kind == "update" and direction is not None and direction != "directionless":
            self._item(record, "chat-item", "update message wasn't directionless")
        self._check_author(record, chat_recipient)
        if direction == "outgoing" and record.send_statuses:
            self._check_send_statuses(record)
        if kind == "standard":
            self._check_standard(record)
        elif kind == "view_once" and record.view_once_has_attachment:
            if self.purpose == Purpose.TAKEOUT_EXPORT:
                self._item(record, "view-once", "expiration too soon: expiration timers are not "
                           "allowed for takeout-export")  # fmt: skip
        for recipient_id in record.referenced_recipient_ids:
            if recipient_id not in self._recipient_kinds:
                self._item(record, "chat-item", f"no record for RecipientId({recipient_id})")

    def _check_author(self, record: ChatItemRecord, chat_recipient: int | None) -> None:
        author_kind = self._recipient_kinds.get(record.author_id, "missing")
        if author_kind == "missing":
            self._item(record, "author", f"no record for RecipientId({record.author_id})")
            return
        if author_kind not in AUTHOR_KINDS:
            self._item(record, "author", f"author RecipientId({record.author_id}) is a "
                       f"{author_kind}, not a contact, Self or Release Notes")  # fmt: skip
            return
        direction = record.direction
        if author_kind == "self" and direction == "incoming":
            self._item(record, "author", "incoming message from Self")
        elif author_kind != "self" and direction == "outgoing":
            self._item(record, "author", f"outgoing message from a {author_kind} recipient")
        if author_kind == "contact":
            contact = self._recipients[record.author_id]
            if direction == "incoming" and contact.aci is None and contact.e164 is None:
                self._item(record, "author", "incoming message from a contact with neither ACI nor e164")
            if chat_recipient is not None and chat_recipient != record.author_id:
                if self._recipient_kinds.get(chat_recipient) != "group":
                    self._item(record, "author", f"message from RecipientId({record.author_id}) "
                               "in a chat that is neither theirs nor a group")  # fmt: skip

    def _check_send_statuses(self, record: ChatItemRecord) -> None:
        for status, recipient_id in zip(record.send_statuses, record.send_status_recipient_ids):
            kind = self._recipient_kinds.get(recipient_id, "missing")
            if kind == "missing":
                self._item(record, "send-status", f"no record for RecipientId({recipient_id})")
            elif kind not in ("contact", "self"):
                self._item(record, "send-status",
                           f"send status names RecipientId({recipient_id}), a {kind}")  # fmt: skip
            if status == "missing":
                self._item(record, "send-status", "send status is missing")

    def _check_standard(self, record: ChatItemRecord) -> None:
        has_long_text = any(a.role == "long_text" for a in record.attachments)
        has_attachments = any(a.role == "attachment" for a in record.attachments)
        if not record.has_text and not has_attachments:
            self._item(record, "standard-message", "StandardMessage has neither text nor attachments")
        body_bytes = len(record.text.encode("utf-8")) if record.text else 0
        if has_long_text and not record.has_text:
            self._item(record, "standard-message", "long text attachment without a text body")
        if has_long_text and body_bytes > LONG_TEXT_INLINE_MAX_BYTES:
            self._item(record, "standard-message", f"text body of {body_bytes} bytes next to a "
                       f"long text attachment (limit {LONG_TEXT_INLINE_MAX_BYTES})")  # fmt: skip
        if record.body_range_count and not 1 <= body_bytes <= BODY_WITH_RANGES_MAX_BYTES:
            self._item(record, "standard-message", f"text body of {body_bytes} bytes with body "
                       f"ranges (allowed 1 to {BODY_WITH_RANGES_MAX_BYTES})")  # fmt: skip

    def _check_timestamps(self, record: ChatItemRecord) -> None:
        named = [("ChatItem.dateSent", record.date_sent)]
        if record.expire_start_ms is not None:
            named.append(("ChatItem.expireStartDate", record.expire_start_ms))
        if record.date_received is not None:
            named.append((f"ChatItem.{record.direction}.dateReceived", record.date_received))
        if record.date_server_sent is not None:
            named.append(("ChatItem.incoming.dateServerSent", record.date_server_sent))
        named.extend(record.other_timestamps)
        for name, value in named:
            if value > MAX_TIMESTAMP_MS:
                self._item(record, "timestamp",
                           f"Timestamp {value} for '{name}' was too far in the future")  # fmt: skip

    # ---- disappearing messages ---------------------------------------------------------------

    def _check_expiry(self, record: ChatItemRecord) -> None:
        start, duration = record.expire_start_ms, record.expires_in_ms
        if start is None and duration is None:
            return
        if duration is None:
            self._item(record, "expiry", "item has expiration start date but no duration")
            return
        if self.purpose == Purpose.TAKEOUT_EXPORT:
            self._item(record, "expiry", "expiration too soon: expiration timers are not allowed "
                       "for takeout-export")  # fmt: skip
            return
        if start is None:
            if _timer_should_have_started(record):
                self._item(record, "expiry", "item has been read/sent but expiration timer has not started")
            elif self.purpose == Purpose.REMOTE_BACKUP and duration < REMOTE_BACKUP_MIN_REMAINING_MS:
                self._item(record, "expiry", "expiration too soon: expiration duration too short: "
                           f"{duration // 1000}s")  # fmt: skip
            return
        expires_at = start + duration
        if self.purpose == Purpose.REMOTE_BACKUP:
            earliest = self.backup_time_ms + REMOTE_BACKUP_MIN_REMAINING_MS
            if expires_at < earliest:
                self._item(record, "expiry", "expiration too soon: expires "
                           f"{(expires_at - self.backup_time_ms) // 1000}s after backup creation")  # fmt: skip
        elif expires_at < self.backup_time_ms:
            self._item(record, "expiry", "expiration too soon: expired "
                       f"{(self.backup_time_ms - expires_at) // 1000}s before backup creation")  # fmt: skip

    # ---- attachments and revisions -----------------------------------------------------------

    def _check_attachments(self, record: ChatItemRecord, attachments: Iterable[AttachmentRecord]) -> None:
        for attachment in attachments:
            for problem in attachment_problems(attachment):
                self._item(record, "attachment", f"{attachment.role.replace('_', ' ')}: {problem}")

    def _check_revisions(self, record: ChatItemRecord) -> None:
        if record.kind not in REVISABLE_KINDS:
            self._item(record, "revisions", "ChatItem that isn't a StandardMessage or "
                       "DirectStoryReplyMessage has revisions")  # fmt: skip
        for number, revision in enumerate(record.revisions, start=1):
            where = f"revision {number}"
            if revision.revisions:
                self._item(record, "revisions", f"{where} has revisions of its own")
            if revision.author_id != record.author_id:
                self._item(record, "revisions", f"{where} has another author")
            if revision.direction != record.direction:
                self._item(record, "revisions", f"{where} has another direction")
            if revision.kind != record.kind:
                self._item(record, "revisions", f"{where} has another message kind")
            if revision.kind == "standard":
                self._check_standard(revision)
            self._check_timestamps(revision)
            if revision.attachments:
                self._check_attachments(record, revision.attachments)

    # ---- end of stream -----------------------------------------------------------------------

    def end(self) -> None:
        if self._accounts == 0:
            self._add("account", "end of stream", "no AccountData frames found")
        if not self._self_ids:
            self._add("recipient", "end of stream", "no Self recipient found")


def _unset_account_settings(record: AccountRecord) -> list[str]:
    unset = [
        name
        for name, value in (
            ("phoneNumberSharingMode", record.phone_number_sharing_mode),
            ("defaultSentMediaQuality", record.default_sent_media_quality),
            ("appTheme", record.app_theme),
            ("callsUseLessDataSetting", record.calls_use_less_data_setting),
        )
        if value == 0
    ]
    if record.auto_download_options is not None and 0 in record.auto_download_options:
        unset.append("autoDownloadSettings")
    if record.navigation_bar_size == 0:
        unset.append("androidSpecificSettings.navigationBarSize")
    return unset


def _timer_should_have_started(record: ChatItemRecord) -> bool:
    if record.direction == "incoming":
        return record.read
    if record.direction == "outgoing":
        return all(status in STARTED_SEND_STATUSES for status in record.send_statuses)
    return False


def attachment_problems(attachment: AttachmentRecord) -> list[str]:
    """Return what breaks libsignal's FilePointer / LocatorInfo rules (empty when valid)."""
    problems: list[str] = []
    if attachment.client_uuid is not None and len(attachment.client_uuid) != CLIENT_UUID_LENGTH:
        problems.append(f"clientUuid is {len(attachment.client_uuid)} bytes, not 16")
    if not attachment.has_pointer:
        return problems + ["missing file pointer"]
    if not attachment.has_locator:
        return problems + ["FilePointer.locatorInfo is missing"]
    if (attachment.incremental_mac is None) != (attachment.incremental_mac_chunk_size is None):
        problems.append("incrementalMac and incrementalMacChunkSize must be set together")
    elif attachment.incremental_mac is not None and not attachment.incremental_mac:
        problems.append("incrementalMac is empty")
    if attachment.locator_empty:
        return problems
    problems.extend(_locator_problems(attachment))
    return problems


def _locator_problems(attachment: AttachmentRecord) -> list[str]:
    problems: list[str] = []
    integrity = attachment.plaintext_hash if attachment.plaintext_hash is not None else attachment.encrypted_digest
    if not integrity:
        problems.append("LocatorInfo needs a non-empty plaintextHash or encryptedDigest")
    has_cdn_key = attachment.transit_cdn_key is not None
    has_cdn_number = attachment.transit_cdn_number is not None
    if has_cdn_key != has_cdn_number:
        problems.append("transitCdnKey and transitCdnNumber must be set together")
    if has_cdn_key and not attachment.key:
        problems.append("transit tier locator without a key")
    if attachment.transit_upload_ms is not None and not has_cdn_key:
        problems.append("transitTierUploadTimestamp without transit tier info")
    if attachment.encrypted_digest is not None and not (has_cdn_key and attachment.key):
        problems.append("encryptedDigest requires transit tier info and a key")
    has_content = has_cdn_key or attachment.plaintext_hash is not None
    if has_content != bool(attachment.key):
        problems.append("key must be set exactly when the locator has content")
    elif attachment.key and len(attachment.key) != ATTACHMENT_KEY_LENGTH:
        problems.append(f"key is {len(attachment.key)} bytes, not 64")
    if attachment.plaintext_hash is None:
        if attachment.local_key is not None:
            problems.append("localKey requires a plaintextHash")
        if attachment.media_tier_cdn_number is not None:
            problems.append("mediaTierCdnNumber requires a plaintextHash")
    return problems
