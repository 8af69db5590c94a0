"""Validity rules: each planted defect gives exactly its finding; valid variants give none."""

from __future__ import annotations

import pytest

from harness import schema
from harness.reader import scan
from harness.validity import Purpose, ValidityChecker
import backup_builders as b

DAY = b.DAY_MS
T = b.BACKUP_TIME_MS


def findings_for(messages, purpose=Purpose.REMOTE_BACKUP) -> list[str]:
    checker = ValidityChecker(purpose)
    scan(b.to_bytes(messages), [checker])
    return [finding.message for finding in checker.findings]


def with_item(*frames):
    return b.minimal_backup() + list(frames)


def item(frame):
    return frame.chat_item


# ---- valid streams ----------------------------------------------------------------------------


def test_minimal_backup_is_valid():
    assert findings_for(with_item(b.incoming_text(), b.outgoing_text())) == []


def test_corpus_style_attachments_are_valid():
    frame = b.incoming_text()
    message = frame.chat_item.standard_message
    b.file_pointer(message.attachments.add().pointer, transit=True)
    b.file_pointer(message.attachments.add().pointer, transit=True, media=True)
    message.attachments.add().pointer.locator_info.SetInParent()  # the empty "invalid" locator
    assert findings_for(with_item(frame)) == []


# ---- one defect, one finding --------------------------------------------------------------------


def replace(index, frame):
    def mutate(messages):
        messages[index] = frame
        return messages

    return mutate


def drop(index):
    def mutate(messages):
        del messages[index]
        return messages

    return mutate


def append(*frames):
    def mutate(messages):
        return messages + list(frames)

    return mutate


def edit(index, change):
    def mutate(messages):
        change(messages[index])
        return messages

    return mutate


def account_edit(change):
    return edit(1, lambda frame: change(frame.account))


def contact_edit(change):
    return edit(3, lambda frame: change(frame.recipient.contact))


def item_edit(change, base=None):
    def mutate(messages):
        frame = base() if base else b.incoming_text()
        change(frame.chat_item)
        return messages + [frame]

    return mutate


def recipient(recipient_id, kind):
    frame = schema.Frame()
    frame.recipient.id = recipient_id
    if kind == "group":
        frame.recipient.group.master_key = b"\x07" * 32
        frame.recipient.group.snapshot.title.title = "friends"
    elif kind == "distribution_list":
        item = frame.recipient.distribution_list
        item.distribution_id = b"\x00" * 16
        item.distribution_list.name = "friends"
        item.distribution_list.privacy_mode = item.distribution_list.ALL
    elif kind:
        getattr(frame.recipient, kind).SetInParent()
    return frame


def set_fields(**values):
    def change(message):
        for name, value in values.items():
            setattr(message, name, value)

    return change


def clear(name):
    return lambda message: message.ClearField(name)


def outgoing_with(*statuses):
    return lambda: b.outgoing_text(statuses=statuses)


def disappearing(start=None, duration=None, read=False):
    def change(chat_item):
        if read:
            chat_item.incoming.read = True
        if start is not None:
            chat_item.expire_start_date = start
        if duration is not None:
            chat_item.expires_in_ms = duration

    return change


def attachment(change):
    def mutate(chat_item):
        pointer = chat_item.standard_message.attachments.add().pointer
        b.file_pointer(pointer)
        change(pointer)

    return mutate


def locator(change):
    return attachment(lambda pointer: change(pointer.locator_info))


def copy_into_revisions(chat_item) -> None:
    # Copy through bytes: CopyFrom of a message into its own child crashes the upb runtime.
    data = chat_item.SerializeToString()
    chat_item.revisions.add().MergeFromString(data)


def revision(change):
    def mutate(chat_item):
        old = chat_item.revisions.add()
        old.CopyFrom(b.incoming_text("old").chat_item)
        change(old)

    return mutate


DEFECTS = [
    # BackupInfo and AccountData
    ("media root key length", replace(0, b.backup_info(media_root_key=b"\x01" * 31)),
     "BackupInfo (frame 0): invalid mediaRootBackupKey (expected 32 bytes, got 31)"),
    ("second account", append(b.account_frame()),
     "AccountData (frame 5): multiple AccountData frames found"),
    ("no account", drop(1), "end of stream: no AccountData frames found"),
    ("profile key length", account_edit(set_fields(profile_key=b"\x01" * 16)),
     "AccountData (frame 1): profile key was invalid (expected 32 bytes, got 16)"),
    ("no account settings", account_edit(clear("account_settings")),
     "AccountData (frame 1): no account settings found"),
    ("unknown app theme", account_edit(lambda a: setattr(a.account_settings, "app_theme", 0)),
     "AccountData (frame 1): account setting appTheme is UNKNOWN (0)"),
    # recipients
    ("recipient id 0", append(recipient(0, "release_notes")),
     "recipient 0 (frame 5): 0 is not a valid recipient ID"),
    ("duplicate recipient id", append(recipient(2, "release_notes")),
     "recipient 2 (frame 5): multiple frames with the same ID"),
    ("empty destination", append(recipient(9, None)),
     "recipient 9 (frame 5): Recipient.destination is a oneof but is empty"),
    ("no self", drop(2), "end of stream: no Self recipient found"),
    ("second self", append(recipient(9, "self")), "recipient 9 (frame 5): multiple Self recipients found"),
    ("second release notes", append(recipient(8, "release_notes"), recipient(9, "release_notes")),
     "recipient 9 (frame 6): duplicate Release Notes recipient: also used by recipient 8"),
    ("aci length", contact_edit(set_fields(aci=b"\x01" * 15)),
     "recipient 2 (frame 3): contact aci is 15 bytes, not 16"),
    ("contact without ids", contact_edit(clear("aci")),
     "recipient 2 (frame 3): contact has neither an ACI, a PNI nor an e164"),
    ("contact e164 zero", contact_edit(set_fields(e164=0)), "recipient 2 (frame 3): contact e164 is 0"),
    ("contact registration unset", contact_edit(clear("registered")),
     "recipient 2 (frame 3): contact registered value is UNKNOWN"),
    ("verified without identity key", contact_edit(set_fields(identity_state=1)),
     "recipient 2 (frame 3): contact is verified or unverified without an identity key"),
    ("duplicate aci", append(b.contact_frame(recipient_id=9)),
     "recipient 9 (frame 5): duplicate ACI: also used by recipient 2"),
    # chats
    ("chat id 0", append(b.chat_frame(chat_id=0)), "chat 0 (frame 5): 0 is not a valid chat ID"),
    ("duplicate chat id", append(b.chat_frame()), "chat 3 (frame 5): multiple records with the same ID"),
    ("chat before its recipient", append(b.chat_frame(chat_id=4, recipient_id=9), recipient(9, "group")),
     "chat 4 (frame 5): no record for RecipientId(9)"),
    ("chat of a distribution list", append(recipient(9, "distribution_list"), b.chat_frame(4, 9)),
     "chat 4 (frame 6): recipient 9 (distribution_list) cannot own a chat"),
    ("timer without version", edit(4, lambda f: setattr(f.chat, "expiration_timer_ms", 0)),
     "chat 3 (frame 4): chat with RecipientId(2) has an expirationTimerMs but no expireTimerVersion"),
    ("duplicate pinned order",
     append(b.chat_frame(4, 1)),  # pinned orders are set by the test below
     None),
    # chat item structure
    ("empty frame", append(schema.Frame()), "frame 5: Frame.item is a oneof but is empty"),
    ("item in unknown chat", item_edit(set_fields(chat_id=7)),
     "chat 7, item 1 (frame 5): no record for chat"),
    ("unknown author", item_edit(set_fields(author_id=9)),
     "chat 3, item 1 (frame 5): no record for RecipientId(9)"),
    ("incoming from self", item_edit(set_fields(author_id=1)),
     "chat 3, item 1 (frame 5): incoming message from Self"),
    ("outgoing from contact", item_edit(set_fields(author_id=2), base=outgoing_with("sent")),
     "chat 3, item 1 (frame 5): outgoing message from a contact recipient"),
    ("author is a group", lambda m: m + [recipient(9, "group")] + item_edit(set_fields(author_id=9))([]),
     "chat 3, item 1 (frame 6): author RecipientId(9) is a group, not a contact, Self or Release Notes"),
    ("contact in another chat", lambda m: m + [b.contact_frame(9, b"\x09" * 16), b.chat_frame(4, 9),
                                               b.incoming_text(chat_id=4)],
     "chat 4, item 1 (frame 7): message from RecipientId(2) in a chat that is neither theirs nor a group"),
    ("directionless standard message", item_edit(lambda i: i.directionless.SetInParent()),
     "chat 3, item 1 (frame 5): directionless ChatItem wasn't an update message"),
    ("update with direction",
     item_edit(lambda i: setattr(i.update_message.simple_update, "type", 1)),
     "chat 3, item 1 (frame 5): update message wasn't directionless"),
    ("empty item oneof", item_edit(clear("standard_message")),
     "chat 3, item 1 (frame 5): ChatItem.item is a oneof but is empty"),
    ("empty direction oneof", item_edit(clear("incoming")),
     "chat 3, item 1 (frame 5): ChatItem.directionalDetails is a oneof but is empty"),
    ("send status unset", item_edit(lambda i: None, base=outgoing_with(None)),
     "chat 3, item 1 (frame 5): send status is missing"),
    ("send status unknown recipient",
     item_edit(lambda i: setattr(i.outgoing.send_status[0], "recipient_id", 9), base=outgoing_with("sent")),
     "chat 3, item 1 (frame 5): no record for RecipientId(9)"),
    ("neither text nor attachments", item_edit(lambda i: i.standard_message.ClearField("text")),
     "chat 3, item 1 (frame 5): StandardMessage has neither text nor attachments"),
    ("reaction author unknown",
     item_edit(lambda i: i.standard_message.reactions.add(emoji="x", author_id=9, sent_timestamp=1)),
     "chat 3, item 1 (frame 5): no record for RecipientId(9)"),
    ("date sent too far", item_edit(set_fields(date_sent=8_640_000_000_000_001)),
     "chat 3, item 1 (frame 5): Timestamp 8640000000000001 for 'ChatItem.dateSent' was too far in the future"),
    # disappearing messages (RemoteBackup)
    ("start without duration", item_edit(disappearing(start=T)),
     "chat 3, item 1 (frame 5): item has expiration start date but no duration"),
    ("read but not started", item_edit(disappearing(duration=2 * DAY, read=True)),
     "chat 3, item 1 (frame 5): item has been read/sent but expiration timer has not started"),
    ("sent but not started", item_edit(disappearing(duration=2 * DAY), base=outgoing_with("sent", "delivered")),
     "chat 3, item 1 (frame 5): item has been read/sent but expiration timer has not started"),
    ("unstarted too short", item_edit(disappearing(duration=DAY - 1)),
     "chat 3, item 1 (frame 5): expiration too soon: expiration duration too short: 86399s"),
    ("zero duration", item_edit(disappearing(duration=0)),
     "chat 3, item 1 (frame 5): expiration too soon: expiration duration too short: 0s"),
    ("started expires too soon", item_edit(disappearing(start=T, duration=DAY - 1)),
     "chat 3, item 1 (frame 5): expiration too soon: expires 86399s after backup creation"),
    # view-once
    ("view-once attachment without pointer",
     item_edit(lambda i: setattr(i.view_once_message.attachment, "was_downloaded", True)),
     "chat 3, item 1 (frame 5): view once: missing file pointer"),
    ("view-once with revisions",
     item_edit(lambda i: (i.view_once_message.SetInParent(), copy_into_revisions(i))),
     "chat 3, item 1 (frame 5): ChatItem that isn't a StandardMessage or DirectStoryReplyMessage has revisions"),
    # FilePointer and LocatorInfo
    ("missing locator", item_edit(attachment(clear("locator_info"))),
     "chat 3, item 1 (frame 5): attachment: FilePointer.locatorInfo is missing"),
    ("incremental mac alone", item_edit(attachment(set_fields(incremental_mac=b"\x01"))),
     "chat 3, item 1 (frame 5): attachment: incrementalMac and incrementalMacChunkSize must be set together"),
    ("no integrity check", item_edit(locator(clear("encrypted_digest"))),
     "chat 3, item 1 (frame 5): attachment: LocatorInfo needs a non-empty plaintextHash or encryptedDigest"),
    ("cdn key without number", item_edit(locator(clear("transit_cdn_number"))),
     "chat 3, item 1 (frame 5): attachment: transitCdnKey and transitCdnNumber must be set together"),
    ("upload time without transit",
     item_edit(locator(lambda l: (l.ClearField("transit_cdn_key"), l.ClearField("transit_cdn_number"),
                                  setattr(l, "plaintext_hash", b"\x02" * 32)))),
     "chat 3, item 1 (frame 5): attachment: transitTierUploadTimestamp without transit tier info"),
    ("local key without plaintext hash", item_edit(locator(set_fields(local_key=b"\x05" * 32))),
     "chat 3, item 1 (frame 5): attachment: localKey requires a plaintextHash"),
    ("client uuid length",
     item_edit(lambda i: (setattr(i.standard_message.attachments.add(), "client_uuid", b"\x01" * 4),
                          b.file_pointer(i.standard_message.attachments[0].pointer))),
     "chat 3, item 1 (frame 5): attachment: clientUuid is 4 bytes, not 16"),
    # revisions
    ("revision by another author", item_edit(revision(set_fields(author_id=1))),
     "chat 3, item 1 (frame 5): revision 1 has another author"),
    ("nested revisions", item_edit(revision(copy_into_revisions)),
     "chat 3, item 1 (frame 5): revision 1 has revisions of its own"),
]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [pytest.param(mutate, expected, id=name) for name, mutate, expected in DEFECTS if expected],
)
def test_planted_defect_gives_exactly_its_finding(mutate, expected):
    messages = mutate(b.minimal_backup())
    assert findings_for(messages) == [expected]


def test_duplicate_pinned_order():
    first = b.chat_frame(4, 1)
    first.chat.pinned_order = 1
    second = b.chat_frame(5, 1)
    second.chat.pinned_order = 1
    assert findings_for(with_item(first, second)) == ["chat 5 (frame 6): pinnedOrder 1 is used twice"]


# ---- disappearing-message boundaries and purposes ---------------------------------------------------


def expiry_findings(change, purpose=Purpose.REMOTE_BACKUP, base=None):
    frame = base() if base else b.incoming_text()
    change(frame.chat_item)
    return findings_for(with_item(frame), purpose)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(disappearing(duration=DAY), id="unstarted unread one day"),
        pytest.param(disappearing(start=T, duration=DAY), id="started expires exactly a day after"),
        pytest.param(disappearing(start=T - DAY, duration=3 * DAY, read=True), id="started read"),
    ],
)
def test_expiry_boundaries_accepted(change):
    assert expiry_findings(change) == []


def test_expiry_pending_outgoing_not_started_is_fine():
    assert expiry_findings(disappearing(duration=2 * DAY), base=outgoing_with("sent", "pending")) == []


def test_expiry_empty_send_status_list_counts_as_sent():
    found = expiry_findings(disappearing(duration=2 * DAY), base=outgoing_with())
    assert found == ["chat 3, item 1 (frame 5): item has been read/sent but expiration timer has not started"]


def test_expiry_device_transfer_allows_zero_duration():
    assert expiry_findings(disappearing(duration=0), Purpose.DEVICE_TRANSFER) == []


def test_expiry_device_transfer_rejects_expired():
    found = expiry_findings(disappearing(start=T - 10_000, duration=5_000), Purpose.DEVICE_TRANSFER)
    assert found == ["chat 3, item 1 (frame 5): expiration too soon: expired 5s before backup creation"]


def test_expiry_takeout_rejects_any_timer():
    found = expiry_findings(disappearing(start=T, duration=30 * DAY), Purpose.TAKEOUT_EXPORT)
    assert found == [
        "chat 3, item 1 (frame 5): expiration too soon: expiration timers are not allowed for takeout-export"
    ]


def test_view_once_attachment_allowed_for_remote_backup():
    frame = b.incoming_text()
    b.file_pointer(frame.chat_item.view_once_message.attachment.pointer)
    assert findings_for(with_item(frame)) == []


def test_view_once_attachment_rejected_for_takeout():
    frame = b.incoming_text()
    b.file_pointer(frame.chat_item.view_once_message.attachment.pointer)
    assert findings_for(with_item(frame), Purpose.TAKEOUT_EXPORT) == [
        "chat 3, item 1 (frame 5): expiration too soon: expiration timers are not allowed for takeout-export"
    ]


def test_findings_are_located_with_rule_ids():
    checker = ValidityChecker()
    scan(b.to_bytes(with_item(b.incoming_text(), b.incoming_text(chat_id=9))), [checker])
    (finding,) = checker.findings
    assert finding.rule == "validity.chat-item"
    assert finding.location == "chat 9, item 1 (frame 6)"


# ---- libsignal agrees --------------------------------------------------------------------------


@pytest.mark.oracle
def test_libsignal_rejects_every_planted_defect(tmp_path):
    """Each defect above is one libsignal rejects too, with the same rule as its first error."""
    from harness import oracle
    from libsignal_bridge import Bridge

    accepted = []
    with Bridge() as bridge:
        for name, mutate, expected in DEFECTS:
            if expected is None:
                continue
            path = b.write_stream(tmp_path / "defect.binproto", mutate(b.minimal_backup()))
            if oracle.validate_frames(path, bridge=bridge).ok:
                accepted.append(name)
        rejected_valid = []
        for name, frame in accepted_variants():
            path = b.write_stream(tmp_path / "valid.binproto", with_item(frame))
            if not oracle.validate_frames(path, bridge=bridge).ok:
                rejected_valid.append(name)
    assert accepted == []
    assert rejected_valid == []


def accepted_variants():
    """Streams this checker accepts; libsignal must accept them too."""
    yield "plain", b.incoming_text()
    yield "outgoing", b.outgoing_text()
    for name, change, base in [
        ("unstarted one day", disappearing(duration=DAY), None),
        ("started a day after", disappearing(start=T, duration=DAY), None),
        ("started read", disappearing(start=T - DAY, duration=3 * DAY, read=True), None),
        ("pending outgoing", disappearing(duration=2 * DAY), outgoing_with("sent", "pending")),
    ]:
        frame = base() if base else b.incoming_text()
        change(frame.chat_item)
        yield name, frame
    view_once = b.incoming_text()
    b.file_pointer(view_once.chat_item.view_once_message.attachment.pointer)
    yield "view-once with attachment", view_once
    attachments = b.incoming_text()
    message = attachments.chat_item.standard_message
    b.file_pointer(message.attachments.add().pointer, transit=True)
    b.file_pointer(message.attachments.add().pointer, transit=True, media=True)
    message.attachments.add().pointer.locator_info.SetInParent()
    yield "attachments", attachments
