"""The reference app end to end: conversations backed up through the stub and restored on a
wiped phone, with the exclusions applied, and restores that fail cleanly and can be retried."""

from __future__ import annotations

import base64
import hmac

import pytest
from cryptography.hazmat.primitives import padding as sym_padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from harness import keys
from harness.scenario import load_scenario, resolve, thumbnail_bytes
from reference_app_support import DAY_MS, HOUR_MS, attachment, message, scenario, start_phone, app_stub  # noqa: F401

pytestmark = pytest.mark.oracle


MINUTE_MS = 60_000


def mixed_messages(now: int) -> list[dict]:
    """Messages that cover every exclusion rule and the content a restore must bring back.

    Every message has its own sent time; ``short`` and ``soon`` are the two to be excluded.
    """
    return [
        message("plain", now - 3 * DAY_MS, text="hello", read=True),
        message("reply", now - 3 * DAY_MS + MINUTE_MS, direction="outgoing", text="hi back", quote="plain",
                reactions=[{"emoji": "👍", "author": "bob", "sent_ms": now - 3 * DAY_MS + 2 * MINUTE_MS}]),
        message("photo", now - 2 * DAY_MS, kind="media", text="look", read=True, attachments=[attachment("photo")]),
        message("once", now - DAY_MS - 3 * MINUTE_MS, kind="view_once", text=None, attachments=[attachment("once")],
                reactions=[{"emoji": "😮", "author": "self", "sent_ms": now - DAY_MS}]),
        message("short", now - HOUR_MS, text="short timer", expires_in_ms=DAY_MS),
        message("soon", now - 6 * DAY_MS, text="expires soon", read=True, expires_in_ms=7 * DAY_MS,
                expire_start_ms=now - 6 * DAY_MS - HOUR_MS),
        message("long", now - DAY_MS - 2 * MINUTE_MS, text="long timer", read=True, expires_in_ms=7 * DAY_MS,
                expire_start_ms=now - DAY_MS),
        message("unstarted", now - DAY_MS - MINUTE_MS, text="unread long timer", expires_in_ms=7 * DAY_MS),
        message("edited", now - 30 * MINUTE_MS, direction="outgoing", text="final text",
                edits=[{"text": "first text", "sent_ms": now - 40 * MINUTE_MS}]),
        message("gone", now - 2 * HOUR_MS, text="deleted for everyone", deleted=True),
    ]


def by_sent(messages):
    return {m.sent_at_ms: m for m in messages}


def test_round_trip_keeps_messages_minus_exclusions(app_stub, tmp_path):
    phone = start_phone(app_stub, tmp_path / "phone", layout="modern")
    now = phone.target.clock_ms()
    phone.target.load_scenario(scenario(now, mixed_messages(now)))
    before = by_sent(phone.target.visible_messages())
    key = phone.target.enable_backups("free")
    result = phone.target.back_up_now()
    assert result.ok, result.error

    phone.reinstall()
    restored = phone.target.restore(key)
    assert restored.ok, restored.error
    after = by_sent(phone.target.visible_messages())
    phone.target.close()

    excluded = {now - HOUR_MS, now - 6 * DAY_MS}
    assert len(before) == 10
    assert set(after) == set(before) - excluded
    for sent, shown in after.items():
        original = before[sent]
        if original.view_once:
            assert original.attachments != ()
            assert shown.attachments == ()
            assert shown.reactions == original.reactions
            continue
        assert shown == original, f"message sent at {sent} changed in the restore"


def test_round_trip_of_daily_life_fixture(app_stub, tmp_path):
    phone = start_phone(app_stub, tmp_path / "phone")
    fixture = load_scenario("fixtures/scenarios/daily-life.yaml")
    phone.target.load_scenario(resolve(fixture, phone.target.clock_ms()))
    before = by_sent(phone.target.visible_messages())
    key = phone.target.enable_backups("free")
    assert phone.target.back_up_now().ok

    phone.reinstall()
    assert phone.target.restore(key).ok
    after = by_sent(phone.target.visible_messages())
    phone.target.close()

    assert set(after) == set(before)
    changed = [sent for sent in after if after[sent] != before[sent]]
    assert [before[sent].view_once for sent in changed] == [True]


def test_wrong_key_fails_then_right_key_restores(app_stub, tmp_path):
    phone = start_phone(app_stub, tmp_path / "phone")
    now = phone.target.clock_ms()
    phone.target.load_scenario(scenario(now, [message("a", now - DAY_MS)]))
    key = phone.target.enable_backups("free")
    assert phone.target.back_up_now().ok
    phone.reinstall()

    wrong = phone.target.restore("0" * 64)
    assert not wrong.ok
    assert wrong.error_kind == "incorrect-key"
    assert phone.target.chats() == []
    assert phone.target.backup_status().enabled is False

    typed = key.lower().replace(" ", "-")
    right = phone.target.restore(typed)
    phone.target.close()
    assert right.ok, right.error


@pytest.mark.parametrize(
    "entry, expected",
    [("ABCD", "expected 64 characters, got 4"), ("a" * 65, "got 65"), ("é" * 64, "character 1")],
)
def test_invalid_key_entry_rejected(app_stub, tmp_path, entry, expected):
    phone = start_phone(app_stub, tmp_path / "phone")
    result = phone.target.restore(entry)
    phone.target.close()
    assert not result.ok
    assert result.error_kind == "invalid-key"
    assert expected in result.error


def test_corrupt_archive_leaves_store_empty(app_stub, tmp_path):
    phone = start_phone(app_stub, tmp_path / "phone")
    now = phone.target.clock_ms()
    phone.target.load_scenario(scenario(now, [message("a", now - DAY_MS), message("b", now - HOUR_MS)]))
    key = phone.target.enable_backups("free")
    assert phone.target.back_up_now().ok
    path = phone.archive_path(key)
    flipped = app_stub.admin.corrupt_object(path)
    phone.reinstall()

    broken = phone.target.restore(key)
    assert not broken.ok
    assert broken.error_kind == "corrupt"
    assert "MAC" in broken.error
    assert phone.target.chats() == []
    assert phone.target.visible_messages() == []

    app_stub.admin.corrupt_object(path, offset=flipped["offset"], bit=flipped["bit"])  # flip it back
    fixed = phone.target.restore(key)
    phone.target.close()
    assert fixed.ok, fixed.error


def test_truncated_download_then_retry(app_stub, tmp_path):
    phone = start_phone(app_stub, tmp_path / "phone")
    now = phone.target.clock_ms()
    phone.target.load_scenario(scenario(now, [message("a", now - DAY_MS, text="x" * 5000)]))
    key = phone.target.enable_backups("free")
    assert phone.target.back_up_now().ok
    phone.reinstall()
    fault = app_stub.admin.add_fault("/backups/*", "truncate", method="GET", count=1, after_bytes=100)

    cut = phone.target.restore(key)
    app_stub.admin.remove_fault(fault["id"])
    assert not cut.ok
    assert cut.error_kind in ("network", "corrupt")
    assert phone.target.chats() == []

    retried = phone.target.restore(key)
    phone.target.close()
    assert retried.ok, retried.error


def test_restore_without_backup_reports_missing(app_stub, tmp_path):
    phone = start_phone(app_stub, tmp_path / "phone")
    result = phone.target.restore("1" * 64)
    usable = phone.target.chats()
    phone.target.close()
    assert not result.ok
    assert result.error_kind in ("missing", "incorrect-key")
    assert usable == []


def test_scheduled_backup_replaces_archive(app_stub, tmp_path):
    phone = start_phone(app_stub, tmp_path / "phone")
    now = phone.target.clock_ms()
    phone.target.load_scenario(scenario(now, [message("day1", now - HOUR_MS, text="day one")]))
    key = phone.target.enable_backups("free")
    assert phone.target.back_up_now().ok
    first = phone.uploaded(key, tmp_path / "first.bin")

    phone.target.receive_message("Bob Jones", "day two")
    status = phone.target.backup_status()
    position = phone.target.log_position()
    phone.target.advance_clock(status.next_backup_ms - phone.target.clock_ms() + 1000)
    line = phone.target.wait_for_log(r"backup (uploaded|failed)", position, 60)
    assert "backup uploaded" in line.text
    second = phone.uploaded(key, tmp_path / "second.bin")
    objects = [entry["path"] for entry in app_stub.admin.objects("backups") if entry["path"] == phone.archive_path(key)]
    phone.target.close()

    assert first.texts() == {"day one"}
    assert second.texts() == {"day one", "day two"}
    assert second.info.backup_time_ms > first.info.backup_time_ms
    assert len(objects) == 1


def test_paid_tier_copies_media_and_restores_it(app_stub, tmp_path):
    phone = start_phone(app_stub, tmp_path / "phone", backup_level=201)
    now = phone.target.clock_ms()
    phone.target.load_scenario(
        scenario(now, [message("p", now - DAY_MS, kind="media", text=None, read=True, attachments=[attachment("p1"), attachment("p2")])])
    )
    key = phone.target.enable_backups("paid")
    assert phone.target.back_up_now().ok
    media = [entry for entry in app_stub.admin.objects("backups") if entry["path"].count("/") == 3]
    phone.reinstall()
    assert phone.target.restore(key).ok
    shown = phone.target.visible_messages()
    phone.target.close()
    assert len(media) == 2
    assert [attachment.available for attachment in shown[0].attachments] == [True, True]


def open_layer(blob: bytes, aes_key: bytes, hmac_key: bytes) -> bytes:
    """Check the HMAC-SHA256 of ``IV || AES-CBC ciphertext || MAC`` and return the unpadded plaintext."""
    body, mac = blob[:-32], blob[-32:]
    assert hmac.compare_digest(mac, hmac.new(hmac_key, body, "sha256").digest()), "MAC does not match"
    decryptor = Cipher(algorithms.AES(aes_key), modes.CBC(body[:16])).decryptor()
    padded = decryptor.update(body[16:]) + decryptor.finalize()
    unpadder = sym_padding.PKCS7(128).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


def media_id_text(media_id: bytes) -> str:
    return base64.urlsafe_b64encode(media_id).decode("ascii").rstrip("=")


def test_paid_tier_copies_thumbnails_and_restores_them(app_stub, tmp_path):
    photo = attachment("thumb-photo", thumbnail=True)
    document = attachment("thumb-doc", content_type="application/pdf", thumbnail=False)
    phone = start_phone(app_stub, tmp_path / "phone", backup_level=201)
    now = phone.target.clock_ms()
    sent = now - DAY_MS
    phone.target.load_scenario(
        scenario(now, [message("t", sent, kind="media", text=None, read=True, attachments=[photo, document])])
    )
    key = phone.target.enable_backups("paid")
    assert phone.target.back_up_now().ok
    backup = phone.uploaded(key, tmp_path / "archive.bin")
    root = backup.info.media_root_backup_key
    objects = phone.media_objects(root)
    locator = backup.item(sent).standard_message.attachments[0].pointer.locator_info
    name = (locator.plaintext_hash + locator.key).hex()
    thumbnail_id = keys.derive_media_id(root, name + "_thumbnail")
    stored = app_stub.admin.object_bytes(objects[media_id_text(thumbnail_id)])
    phone.reinstall()
    position = phone.target.log_position()
    restore = phone.target.restore(key)
    shown = phone.target.request("GET", "/messages")["messages"]
    log_text = "\n".join(line.text for line in phone.target.read_log(position))
    phone.target.close()

    assert len(objects) == 3
    hmac_key, aes_key = keys.derive_media_encryption_key(root, thumbnail_id)
    transit_object = open_layer(stored, aes_key, hmac_key)
    thumbnail_key = b"".join(keys.derive_thumbnail_transit_key(root, thumbnail_id))
    padded = open_layer(transit_object, thumbnail_key[:32], thumbnail_key[32:])
    expected = thumbnail_bytes(photo)
    assert padded[: len(expected)] == expected
    assert padded[len(expected) :].strip(b"\x00") == b""
    assert restore.ok, restore.error
    assert [item["thumbnail"] for item in shown[0]["attachments"]] == [True, False]
    assert "thumbnails restored count=1 generated=0" in log_text


def test_key_rotation_invalidates_old_key(app_stub, tmp_path):
    phone = start_phone(app_stub, tmp_path / "phone")
    now = phone.target.clock_ms()
    phone.target.load_scenario(scenario(now, [message("a", now - HOUR_MS)]))
    old_key = phone.target.enable_backups("free")
    assert phone.target.back_up_now().ok
    position = phone.target.log_position()
    new_key = phone.target.regenerate_recovery_key()
    phone.target.wait_for_log("backup (uploaded|failed)", position, 60)
    phone.reinstall()

    old = phone.target.restore(old_key)
    new = phone.target.restore(new_key)
    phone.target.close()
    assert new_key != old_key
    assert old.error_kind == "incorrect-key"
    assert new.ok, new.error


def test_state_survives_restart(app_stub, tmp_path):
    phone = start_phone(app_stub, tmp_path / "phone")
    now = phone.target.clock_ms()
    phone.target.load_scenario(scenario(now, [message("a", now - HOUR_MS, text="kept")]))
    phone.target.enable_backups("free")
    phone.target.stop()
    phone.target.start()
    texts = [m.text for m in phone.target.visible_messages()]
    status = phone.target.backup_status()
    phone.target.close()
    assert texts == ["kept"]
    assert status.enabled


def media_objects(app_stub) -> set[str]:
    return {entry["path"] for entry in app_stub.admin.objects("backups") if entry["path"].count("/") == 3}


def test_paid_tier_deletes_orphaned_media(app_stub, tmp_path):
    phone = start_phone(app_stub, tmp_path / "phone", backup_level=201)
    now = phone.target.clock_ms()
    phone.target.load_scenario(
        scenario(now, [
            message("keep", now - DAY_MS, kind="media", text=None, read=True, attachments=[attachment("keep")]),
            message("drop", now - HOUR_MS, kind="media", text=None, read=True, attachments=[attachment("drop")]),
        ])
    )
    phone.target.enable_backups("paid")
    before = media_objects(app_stub)
    assert phone.target.back_up_now().ok
    first = media_objects(app_stub) - before
    phone.target.delete_message(scenario_id="drop")
    assert phone.target.back_up_now().ok
    second = media_objects(app_stub) - before
    log_text = "\n".join(line.text for line in phone.target.read_log())
    phone.target.close()
    assert len(first) == 2
    assert len(second) == 1
    assert second < first
    assert "orphans deleted count=1" in log_text


def test_disable_deletes_remote_backup(app_stub, tmp_path):
    phone = start_phone(app_stub, tmp_path / "phone")
    now = phone.target.clock_ms()
    phone.target.load_scenario(scenario(now, [message("a", now - HOUR_MS)]))
    key = phone.target.enable_backups("free")
    assert phone.target.back_up_now().ok
    mark = app_stub.admin.set_marker("disable")
    phone.target.disable_backups()
    status = phone.target.backup_status()
    deletes = [r for r in app_stub.admin.recordings(since_id=mark) if (r["method"], r["path"]) == ("DELETE", "/v1/archives")]
    path = phone.archive_path(key)
    phone.reinstall()
    restored = phone.target.restore(key)
    phone.target.close()
    assert status.enabled is False
    assert status.next_backup_ms is None
    assert len(deletes) == 2
    assert path is None or not app_stub.admin.object_exists(path)
    assert not restored.ok


def test_setup_order_before_first_upload(app_stub, tmp_path):
    phone = start_phone(app_stub, tmp_path / "phone")
    now = phone.target.clock_ms()
    phone.target.load_scenario(scenario(now, [message("a", now - HOUR_MS)]))
    mark = app_stub.admin.set_marker("setup-order")
    phone.target.enable_backups("free")
    assert phone.target.back_up_now().ok
    phone.target.close()
    calls = [
        (r["method"], r["path"])
        for r in app_stub.admin.recordings(since_id=mark)
        if r["path"].startswith("/v1/archives")
    ]
    first_form = calls.index(("GET", "/v1/archives/upload/form"))
    assert calls[:4] == [
        ("PUT", "/v1/archives/backupid"),
        ("GET", "/v1/archives/auth"),
        ("PUT", "/v1/archives/keys"),
        ("PUT", "/v1/archives/keys"),
    ]
    assert first_form > 3
    assert calls.count(("GET", "/v1/archives/auth")) == 1
