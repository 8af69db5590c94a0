"""Each planted defect of the reference app shows the behaviour it plants.

Every test runs the app with one defect and observes it from outside, as the suite will: the
archive the stub stored (decrypted with the recovery key), the stub's recordings, the app log,
its files, or a restore. Where it helps, the same flow without the defect is the control.
"""

from __future__ import annotations

import base64
import datetime
import uuid
import zoneinfo

import pytest

from harness import keys
from harness.archive import open_archive, write_archive
from harness.errors import ArchiveError, MacMismatchError
from harness.frames import encode_message
from harness import schema
from reference_app_support import DAY_MS, HOUR_MS, Phone, attachment, message, read_archive, scenario, start_phone, app_stub  # noqa: F401

pytestmark = pytest.mark.oracle

MINUTE_MS = 60_000


def backed_up(app_stub, work_dir, defects=(), messages=None, *, tier="free", layout="legacy", backup_level=None):
    """Start a phone with ``defects``, load messages, turn backups on and back up once."""
    phone = start_phone(app_stub, work_dir, defects=tuple(defects), layout=layout, backup_level=backup_level)
    now = phone.target.clock_ms()
    phone.target.load_scenario(scenario(now, messages(now) if messages else [message("a", now - HOUR_MS, text="hello")]))
    key = phone.target.enable_backups(tier)
    result = phone.target.back_up_now()
    return phone, key, result, now


def since(app_stub) -> int:
    return app_stub.admin.set_marker(uuid.uuid4().hex)


def header(record: dict, name: str) -> str | None:
    for key, value in record["headers"]:
        if key == name:
            return value
    return None


# --- archive container -----------------------------------------------------------------------


def test_plaintext_upload_stores_readable_frames(app_stub, tmp_path):
    phone, key, result, _ = backed_up(app_stub, tmp_path / "p", ["plaintext-upload"])
    stored = app_stub.admin.object_bytes(phone.archive_path(key))
    phone.target.close()
    assert result.ok
    assert not stored.startswith(b"SBACKUP")
    assert b"hello" in stored


def test_static_iv_repeats_the_iv(app_stub, tmp_path):
    phone, key, first, _ = backed_up(app_stub, tmp_path / "p", ["static-iv"])
    iv_first = app_stub.admin.object_bytes(phone.archive_path(key))[:16]
    phone.target.receive_message("Bob Jones", "second day")
    assert phone.target.back_up_now().ok
    iv_second = app_stub.admin.object_bytes(phone.archive_path(key))[:16]
    phone.target.close()
    assert first.ok
    assert iv_first == iv_second == bytes(16)


def test_without_static_iv_ivs_differ(app_stub, tmp_path):
    phone, key, _, _ = backed_up(app_stub, tmp_path / "p")
    iv_first = app_stub.admin.object_bytes(phone.archive_path(key))[:16]
    assert phone.target.back_up_now().ok
    iv_second = app_stub.admin.object_bytes(phone.archive_path(key))[:16]
    phone.target.close()
    assert iv_first != iv_second


def test_bad_mac_archive_fails_verification(app_stub, tmp_path):
    phone, key, result, _ = backed_up(app_stub, tmp_path / "p", ["bad-mac"])
    archive = phone.download_archive(key, tmp_path / "a.bin")
    message_key = keys.MessageBackupKey.from_recovery_key(keys.normalize_recovery_key(key), phone.aci_bytes)
    phone.target.close()
    assert result.ok
    with pytest.raises(MacMismatchError):
        with open_archive(archive, message_key) as chunks:
            b"".join(chunks)


# --- key confidentiality ---------------------------------------------------------------------


def test_key_to_server_sends_the_key(app_stub, tmp_path):
    mark = since(app_stub)
    phone, key, _, _ = backed_up(app_stub, tmp_path / "p", ["key-to-server"])
    phone.target.close()
    compact = keys.normalize_recovery_key(key)
    leaked = [r for r in app_stub.admin.recordings(since_id=mark) if any(compact in value for _, value in r["headers"])]
    assert [r["path"] for r in leaked] == ["/v1/archives/upload/form"]


def test_key_to_log_writes_the_key(app_stub, tmp_path):
    phone, key, _, _ = backed_up(app_stub, tmp_path / "p", ["key-to-log"])
    text = "\n".join(line.text for line in phone.target.read_log())
    phone.target.capture_artifacts(tmp_path / "artifacts")
    artifact = (tmp_path / "artifacts" / "app.log").read_text()
    phone.target.close()
    assert keys.normalize_recovery_key(key) in text
    assert keys.normalize_recovery_key(key) not in artifact


def data_files_contain(snapshot, secret: bytes) -> list[str]:
    return [str(path.relative_to(snapshot)) for path in snapshot.rglob("*") if path.is_file() and secret in path.read_bytes()]


def test_key_absent_from_log_and_files(app_stub, tmp_path):
    phone, key, _, _ = backed_up(app_stub, tmp_path / "p")
    compact = keys.normalize_recovery_key(key).encode()
    log_text = phone.target.log_path.read_bytes()
    snapshot = phone.target.snapshot_files(tmp_path / "snap")
    phone.target.close()
    assert compact not in log_text
    assert compact.upper() not in log_text
    assert data_files_contain(snapshot, compact) == []
    assert (snapshot / "keystore.json").is_file()


def test_key_in_settings_writes_key_to_file(app_stub, tmp_path):
    phone, key, _, _ = backed_up(app_stub, tmp_path / "p", ["key-in-settings"])
    snapshot = phone.target.snapshot_files(tmp_path / "snap")
    phone.target.close()
    assert data_files_contain(snapshot, keys.normalize_recovery_key(key).encode()) == ["debug_settings.json"]


# --- exclusion rules ---------------------------------------------------------------------------


def timers(now):
    return [
        message("short", now - HOUR_MS, text="short", expires_in_ms=DAY_MS),
        message("soon", now - 6 * DAY_MS, text="soon", read=True, expires_in_ms=7 * DAY_MS, expire_start_ms=now - 6 * DAY_MS - HOUR_MS),
        message("plenty", now - DAY_MS, text="plenty", read=True, expires_in_ms=30 * DAY_MS, expire_start_ms=now - DAY_MS),
        message("once", now - 2 * HOUR_MS, kind="view_once", text=None, attachments=[attachment("once")]),
    ]


def test_correct_app_applies_exclusions(app_stub, tmp_path):
    phone, key, result, _ = backed_up(app_stub, tmp_path / "p", messages=timers)
    backup = phone.uploaded(key, tmp_path / "a.bin")
    phone.target.close()
    assert result.ok, result.error
    assert backup.texts() == {"plenty"}
    view_once = [item for item in backup.chat_items() if item.HasField("view_once_message")]
    assert len(view_once) == 1
    assert not view_once[0].view_once_message.HasField("attachment")


def test_keeps_short_timers_exports_them(app_stub, tmp_path):
    phone, key, _, _ = backed_up(app_stub, tmp_path / "p", ["keeps-short-timers"], timers)
    backup = phone.uploaded(key, tmp_path / "a.bin")
    phone.target.close()
    assert "short" in backup.texts()
    assert "soon" not in backup.texts()


def test_ignores_time_left_exports_soon_expiring(app_stub, tmp_path):
    phone, key, _, _ = backed_up(app_stub, tmp_path / "p", ["ignores-time-left"], timers)
    backup = phone.uploaded(key, tmp_path / "a.bin")
    phone.target.close()
    assert "soon" in backup.texts()
    assert "short" not in backup.texts()


def test_over_excludes_drops_long_timers(app_stub, tmp_path):
    phone, key, _, _ = backed_up(app_stub, tmp_path / "p", ["over-excludes"], timers)
    backup = phone.uploaded(key, tmp_path / "a.bin")
    phone.target.close()
    assert "plenty" not in backup.texts()


def test_keeps_view_once_media_exports_attachment(app_stub, tmp_path):
    phone, key, _, _ = backed_up(app_stub, tmp_path / "p", ["keeps-view-once-media"], timers)
    backup = phone.uploaded(key, tmp_path / "a.bin")
    phone.target.close()
    view_once = [item for item in backup.chat_items() if item.HasField("view_once_message")]
    assert view_once[0].view_once_message.attachment.pointer.locator_info.key


def deletions(now):
    return [
        message("kept", now - 3 * HOUR_MS, text="kept"),
        message("retracted", now - 2 * HOUR_MS, text="retracted secret", deleted=True),
        message("mine", now - HOUR_MS, text="deleted on the phone"),
    ]


@pytest.mark.parametrize("defects, expected", [((), {"kept"}), (("keeps-deleted",), {"kept", "retracted secret", "deleted on the phone"})])
def test_deleted_messages_in_archive(app_stub, tmp_path, defects, expected):
    phone = start_phone(app_stub, tmp_path / "p", defects=defects)
    now = phone.target.clock_ms()
    phone.target.load_scenario(scenario(now, deletions(now)))
    phone.target.delete_message(scenario_id="mine")
    key = phone.target.enable_backups("free")
    assert phone.target.back_up_now().ok
    backup = phone.uploaded(key, tmp_path / "a.bin")
    phone.target.close()
    assert {text for text in backup.texts() if text} == expected


# --- replacement -------------------------------------------------------------------------------


def two_days(app_stub, tmp_path, defects):
    phone = start_phone(app_stub, tmp_path / "p", defects=defects)
    now = phone.target.clock_ms()
    phone.target.load_scenario(scenario(now, [message("old", now - HOUR_MS, text="yesterday's news")]))
    key = phone.target.enable_backups("free")
    assert phone.target.back_up_now().ok
    phone.target.delete_message(scenario_id="old")
    phone.target.advance_clock(2 * HOUR_MS)
    phone.target.receive_message("Bob Jones", "today's news")
    assert phone.target.back_up_now().ok
    backup = phone.uploaded(key, tmp_path / "a.bin")
    phone.target.close()
    return backup.texts()


def test_correct_app_replaces_archive(app_stub, tmp_path):
    assert two_days(app_stub, tmp_path, ()) == {"today's news"}


def test_appends_instead_of_replace_keeps_yesterday(app_stub, tmp_path):
    assert two_days(app_stub, tmp_path, ("appends-instead-of-replace",)) == {"yesterday's news", "today's news"}


def test_stale_snapshot_misses_new_messages(app_stub, tmp_path):
    assert two_days(app_stub, tmp_path, ("stale-snapshot",)) == {"yesterday's news"}


# --- media -------------------------------------------------------------------------------------


def aged_photo(now):
    return [message("old-photo", now - 40 * DAY_MS, kind="media", text=None, read=True,
                    attachments=[attachment("old", uploaded_ms=now - 35 * DAY_MS)])]


@pytest.mark.parametrize("defects, has_locator", [((), True), (("media-window-30-days",), False)])
def test_free_tier_locator_of_old_attachment(app_stub, tmp_path, defects, has_locator):
    phone, key, result, now = backed_up(app_stub, tmp_path / "p", defects, aged_photo)
    backup = phone.uploaded(key, tmp_path / "a.bin")
    phone.target.close()
    assert result.ok, result.error
    locator = backup.chat_items()[0].standard_message.attachments[0].pointer.locator_info
    assert bool(locator.transit_cdn_key) is has_locator
    if has_locator:
        assert locator.transit_tier_upload_timestamp == now - 35 * DAY_MS


# --- restore -----------------------------------------------------------------------------------


@pytest.mark.parametrize("defects, restores", [((), False), (("restore-ignores-mac",), True)])
def test_restore_with_broken_mac(app_stub, tmp_path, defects, restores):
    phone, key, _, _ = backed_up(app_stub, tmp_path / "p", defects)
    path = phone.archive_path(key)
    size = next(entry["size"] for entry in app_stub.admin.objects(path) if entry["path"] == path)
    app_stub.admin.corrupt_object(path, offset=size - 1, bit=0)  # only the MAC changes
    phone.reinstall()
    result = phone.target.restore(key)
    texts = [m.text for m in phone.target.visible_messages()]
    phone.target.close()
    assert result.ok is restores
    assert texts == (["hello"] if restores else [])


def upload_bad_archive(phone: Phone, key: str, tmp_path) -> None:
    """Replace the phone's backup with one that breaks after a few valid frames.

    The archive is encrypted and MACed correctly, so only the import notices: the second
    Recipient frame repeats id 2.
    """
    from reference_app.archive_client import AccountAuth, ArchiveKeys
    from reference_app.archive_credentials import MemoryCredentialStore
    from reference_app.restore import MessagesOnlyClient

    account = schema.AccountData(profile_key=bytes(32), given_name="Alice")
    settings = account.account_settings
    settings.phone_number_sharing_mode = settings.NOBODY
    settings.default_sent_media_quality = settings.STANDARD
    settings.app_theme = settings.SYSTEM
    settings.calls_use_less_data_setting = settings.NEVER
    frames = [schema.BackupInfo(version=1, backup_time_ms=1, media_root_backup_key=bytes(32)).SerializeToString()]
    frames.append(schema.Frame(account=account).SerializeToString())
    self_recipient = schema.Frame()
    self_recipient.recipient.id = 1
    self_recipient.recipient.self.SetInParent()
    frames.append(self_recipient.SerializeToString())
    for _ in range(2):
        contact = schema.Frame()
        contact.recipient.id = 2
        contact.recipient.contact.aci = uuid.uuid4().bytes
        contact.recipient.contact.registered.SetInParent()
        frames.append(contact.SerializeToString())
    recovery_key = keys.normalize_recovery_key(key)
    path = tmp_path / "bad.archive"
    write_archive([b"".join(encode_message(f) for f in frames)], path, keys.MessageBackupKey.from_recovery_key(recovery_key, phone.aci_bytes), layout="legacy")
    client = MessagesOnlyClient(
        phone.stub.url,
        AccountAuth(phone.account.aci, 1, phone.account.password),
        ArchiveKeys.from_recovery_key(recovery_key, phone.aci_bytes, bytes(32)),
        phone.stub.admin.zk_public_params(),
        clock=lambda: phone.stub.admin.now(),
        store=MemoryCredentialStore(),
    )
    try:
        client.upload_backup(path)
    finally:
        client.close()


@pytest.mark.parametrize("defects, leftover", [((), False), (("partial-restore-on-error",), True)])
def test_restore_error_midway(app_stub, tmp_path, defects, leftover):
    phone, key, _, _ = backed_up(app_stub, tmp_path / "p", defects)
    upload_bad_archive(phone, key, tmp_path)
    phone.reinstall()
    result = phone.target.restore(key)
    snapshot = phone.target.snapshot_files(tmp_path / "snap")
    phone.target.close()
    import sqlite3

    with sqlite3.connect(snapshot / "messages.db") as db:
        contacts = db.execute("SELECT COUNT(*) FROM recipients WHERE kind = 'contact'").fetchone()[0]
    assert not result.ok
    assert result.error_kind == "corrupt"
    assert (contacts > 0) is leftover


def test_commits_before_restore_puts_backup_id(app_stub, tmp_path):
    phone, key, _, _ = backed_up(app_stub, tmp_path / "p", ["commits-before-restore"])
    phone.reinstall()
    mark = since(app_stub)
    phone.target.restore(key)
    phone.target.close()
    paths = [(r["method"], r["path"]) for r in app_stub.admin.recordings(since_id=mark)]
    assert ("PUT", "/v1/archives/backupid") in paths


def test_correct_restore_commits_nothing(app_stub, tmp_path):
    phone, key, _, _ = backed_up(app_stub, tmp_path / "p")
    phone.reinstall()
    mark = since(app_stub)
    assert phone.target.restore(key).ok
    phone.target.close()
    paths = [(r["method"], r["path"]) for r in app_stub.admin.recordings(since_id=mark)]
    assert ("PUT", "/v1/archives/backupid") not in paths
    assert ("PUT", "/v1/archives/keys") not in paths


# --- traffic -----------------------------------------------------------------------------------


def test_account_auth_on_archive_routes(app_stub, tmp_path):
    mark = since(app_stub)
    phone, _, result, _ = backed_up(app_stub, tmp_path / "p", ["account-auth-on-archive-routes"])
    phone.target.close()
    mixed = [r for r in app_stub.admin.recordings(since_id=mark, plane="archive") if header(r, "authorization") and header(r, "x-signal-zk-auth")]
    assert mixed
    assert not result.ok


def test_correct_app_separates_channels(app_stub, tmp_path):
    mark = since(app_stub)
    phone, _, result, _ = backed_up(app_stub, tmp_path / "p")
    phone.target.close()
    archive = app_stub.admin.recordings(since_id=mark, plane="archive")
    assert result.ok
    assert archive
    assert not [r for r in archive if header(r, "authorization")]


def test_account_auth_on_cdn(app_stub, tmp_path):
    photo = lambda now: [message("p", now - HOUR_MS, kind="media", text=None, attachments=[attachment("p")])]  # noqa: E731
    phone, key, _, _ = backed_up(app_stub, tmp_path / "p", ["account-auth-on-cdn"], photo)
    phone.reinstall()
    mark = since(app_stub)
    assert phone.target.restore(key).ok
    phone.target.close()
    reads = [r for r in app_stub.admin.recordings(since_id=mark, plane="cdn") if r["path"].startswith("/attachments/")]
    assert reads
    assert all((header(r, "authorization") or "").startswith("Basic ") for r in reads)


def test_fetch_credentials_every_call(app_stub, tmp_path):
    mark = since(app_stub)
    phone, _, _, _ = backed_up(app_stub, tmp_path / "p", ["fetch-credentials-every-call"])
    phone.target.close()
    fetches = [r for r in app_stub.admin.recordings(since_id=mark, plane="account") if r["path"] == "/v1/archives/auth"]
    assert len(fetches) > 3


def test_reuse_presentation(app_stub, tmp_path):
    mark = since(app_stub)
    phone, _, _, _ = backed_up(app_stub, tmp_path / "p", ["reuse-presentation"])
    phone.target.close()
    presentations = [header(r, "x-signal-zk-auth") for r in app_stub.admin.recordings(since_id=mark, plane="archive")]
    assert len(presentations) != len(set(presentations))


def test_omit_upload_length(app_stub, tmp_path):
    mark = since(app_stub)
    phone, _, _, _ = backed_up(app_stub, tmp_path / "p", ["omit-upload-length"])
    phone.target.close()
    forms = [r for r in app_stub.admin.recordings(since_id=mark) if r["path"] == "/v1/archives/upload/form"]
    assert forms
    assert all("uploadLength" not in r["query"] for r in forms)


def test_refresh_defects(app_stub, tmp_path):
    counts = {}
    for name, defects in (("correct", ()), ("no-refresh", ("no-refresh",)), ("skip-media-refresh", ("skip-media-refresh",))):
        phone = start_phone(app_stub, tmp_path / name, defects=defects, backup_level=201)
        phone.target.enable_backups("paid")
        mark = since(app_stub)
        phone.target.refresh_now()
        counts[name] = len([r for r in app_stub.admin.recordings(since_id=mark) if (r["method"], r["path"]) == ("POST", "/v1/archives")])
        phone.target.close()
    assert counts == {"correct": 2, "no-refresh": 0, "skip-media-refresh": 1}


def test_sign_media_with_messages_key_is_rejected(app_stub, tmp_path):
    phone, _, result, _ = backed_up(app_stub, tmp_path / "p", ["sign-media-with-messages-key"], tier="paid", backup_level=201)
    phone.target.close()
    assert not result.ok
    assert "401" in result.error


@pytest.mark.parametrize("defects, copied", [((), True), (("skips-thumbnails",), False)])
def test_paid_tier_thumbnail_copy(app_stub, tmp_path, defects, copied):
    photo = attachment("thumbed", thumbnail=True)

    def messages(now):
        return [message("p", now - HOUR_MS, kind="media", text=None, read=True, attachments=[photo])]

    phone, key, result, now = backed_up(app_stub, tmp_path / "p", defects, messages, tier="paid", backup_level=201)
    backup = phone.uploaded(key, tmp_path / "a.bin")
    root = backup.info.media_root_backup_key
    locator = backup.item(now - HOUR_MS).standard_message.attachments[0].pointer.locator_info
    name = (locator.plaintext_hash + locator.key).hex()
    objects = phone.media_objects(root)
    phone.target.close()
    assert result.ok
    assert media_id_text(keys.derive_media_id(root, name)) in objects
    assert (media_id_text(keys.derive_media_id(root, name + "_thumbnail")) in objects) is copied


def media_id_text(media_id: bytes) -> str:
    return base64.urlsafe_b64encode(media_id).decode("ascii").rstrip("=")


# --- key rotation and schedule -----------------------------------------------------------------


@pytest.mark.parametrize("defects, same_media_key", [((), False), (("rotation-keeps-media-key",), True)])
def test_rotation_media_root_key(app_stub, tmp_path, defects, same_media_key):
    phone, key, _, _ = backed_up(app_stub, tmp_path / "p", defects)
    first = phone.uploaded(key, tmp_path / "a.bin").info.media_root_backup_key
    position = phone.target.log_position()
    new_key = phone.target.regenerate_recovery_key()
    phone.target.wait_for_log("backup (uploaded|failed)", position, 60)
    second = phone.uploaded(new_key, tmp_path / "b.bin").info.media_root_backup_key
    phone.target.close()
    assert (first == second) is same_media_key


@pytest.mark.parametrize("defects, on_slot", [((), False), (("no-jitter",), True)])
def test_schedule_jitter(app_stub, tmp_path, defects, on_slot):
    phone = start_phone(app_stub, tmp_path / "p", defects=defects, seed=3)
    phone.target.enable_backups("free")
    next_ms = phone.target.backup_status().next_backup_ms
    phone.target.close()
    slot_offset = next_ms % DAY_MS - 2 * HOUR_MS  # the slot is 02:00 UTC
    assert abs(slot_offset) <= 5 * MINUTE_MS or abs(slot_offset - DAY_MS) <= 5 * MINUTE_MS
    assert (slot_offset == 0) is on_slot


# --- defects added with the coverage guard (tests/test_defect_coverage.py) ----------------------


def photo(now):
    return [message("p", now - HOUR_MS, kind="media", text=None, read=True, attachments=[attachment("p")])]


def first_locator(backup):
    return backup.chat_items()[0].standard_message.attachments[0].pointer.locator_info


@pytest.mark.parametrize("defects, minutes", [((), 120), (("schedule-in-utc",), 450)])
def test_schedule_time_zone(app_stub, tmp_path, defects, minutes):
    zone = zoneinfo.ZoneInfo("Asia/Kolkata")
    phone = start_phone(app_stub, tmp_path / "p", defects=defects, seed=3)
    phone.target.set_clock(phone.target.clock_ms(), "Asia/Kolkata")
    phone.target.enable_backups("free")
    next_ms = phone.target.backup_status().next_backup_ms
    phone.target.close()
    local = datetime.datetime.fromtimestamp(next_ms / 1000, zone)
    # The 02:00 slot in India time, or 02:00 UTC (07:30 in India), within the 5-minute jitter.
    assert abs(local.hour * 60 + local.minute + local.second / 60 - minutes) <= 5


@pytest.mark.parametrize("defects, replaced", [((), True), (("new-backup-id-each-day",), False)])
def test_next_days_backup_replaces_the_archive(app_stub, tmp_path, defects, replaced):
    phone, key, first, _ = backed_up(app_stub, tmp_path / "p", defects)
    phone.target.advance_clock(DAY_MS)
    second = phone.target.back_up_now()
    stored = phone.uploaded(key, tmp_path / "a.bin").info.backup_time_ms
    phone.target.close()
    assert first.ok and second.ok, second.error
    assert (stored > first.backup_time_ms) is replaced


def opens_with(path, recovery_key: str, aci: bytes) -> bool:
    try:
        read_archive(path, keys.normalize_recovery_key(recovery_key), aci)
    except ArchiveError:
        return False
    return True


@pytest.mark.parametrize(
    "defects, stored_for_new_key, opens, deleted",
    [
        ((), True, {"new": True, "old": False}, False),
        (("rotation-keeps-archive-key",), True, {"new": False, "old": True}, False),
        (("rotation-keeps-backup-id",), False, {}, False),
        (("rotation-deletes-old-backup",), True, {"new": True, "old": False}, True),
    ],
)
def test_rotation_archive(app_stub, tmp_path, defects, stored_for_new_key, opens, deleted):
    phone, old_key, _, _ = backed_up(app_stub, tmp_path / "p", defects)
    mark = since(app_stub)
    position = phone.target.log_position()
    new_key = phone.target.regenerate_recovery_key()
    phone.target.wait_for_log("backup (uploaded|failed)", position, 60)
    path = phone.archive_path(new_key)
    opened = {}
    if path is not None:
        archive = app_stub.admin.download_object(path, tmp_path / "new.bin")
        opened = {name: opens_with(archive, key, phone.aci_bytes) for name, key in (("new", new_key), ("old", old_key))}
    phone.target.close()
    deletes = [r for r in app_stub.admin.recordings(since_id=mark) if (r["method"], r["path"]) == ("DELETE", "/v1/archives")]
    assert (path is not None) is stored_for_new_key
    assert opened == opens
    assert bool(deletes) is deleted


@pytest.mark.parametrize("defects, used", [((), False), (("media-tier-on-free",), True)])
def test_free_tier_media_routes(app_stub, tmp_path, defects, used):
    mark = since(app_stub)
    phone, _, result, _ = backed_up(app_stub, tmp_path / "p", defects, photo)
    phone.target.close()
    media = [r for r in app_stub.admin.recordings(since_id=mark) if r["path"].startswith("/v1/archives/media")]
    assert result.ok, result.error
    assert bool(media) is used


@pytest.mark.parametrize(
    "defects, restored, available",
    [((), True, False), (("expired-media-shown-available",), True, True), (("restore-fails-on-missing-media",), False, None)],
)
def test_restore_with_expired_transit_media(app_stub, tmp_path, defects, restored, available):
    phone, key, _, _ = backed_up(app_stub, tmp_path / "p", defects, photo)
    app_stub.admin.delete_object(f"attachments/{first_locator(phone.uploaded(key, tmp_path / 'a.bin')).transit_cdn_key}")
    phone.reinstall()
    result = phone.target.restore(key)
    availability = [entry.available for shown in phone.target.visible_messages() for entry in shown.attachments]
    phone.target.close()
    assert result.ok is restored
    if restored:
        assert availability == [available]


@pytest.mark.parametrize("defects, decrypts", [((), True), (("swapped-media-keys",), False)])
def test_paid_copy_keys(app_stub, tmp_path, defects, decrypts):
    from reference_app.errors import CorruptMedia
    from reference_app.media_copy import strip_media_tier_layer

    phone, key, result, _ = backed_up(app_stub, tmp_path / "p", defects, photo, tier="paid", backup_level=201)
    backup = phone.uploaded(key, tmp_path / "a.bin")
    root = backup.info.media_root_backup_key
    locator = first_locator(backup)
    media_id = keys.derive_media_id(root, (locator.plaintext_hash + locator.key).hex())
    stored = app_stub.admin.object_bytes(phone.media_objects(root)[media_id_text(media_id)])
    phone.target.close()
    hmac_key, aes_key = keys.derive_media_encryption_key(root, media_id)
    try:
        strip_media_tier_layer(stored, hmac_key, aes_key)
    except CorruptMedia:
        assert not decrypts
    else:
        assert decrypts


def view_once_photo(now):
    return [message("once", now - HOUR_MS, kind="view_once", text=None, attachments=[attachment("once")])]


@pytest.mark.parametrize("defects, objects", [((), 0), (("copies-excluded-media",), 1)])
def test_paid_tier_copies_archived_media_only(app_stub, tmp_path, defects, objects):
    phone, key, result, _ = backed_up(app_stub, tmp_path / "p", defects, view_once_photo, tier="paid", backup_level=201)
    root = phone.uploaded(key, tmp_path / "a.bin").info.media_root_backup_key
    stored = phone.media_objects(root)
    phone.target.close()
    assert result.ok, result.error
    assert len(stored) == objects


@pytest.mark.parametrize(
    "defects, media_cdn, transit_cdn",
    [((), False, True), (("free-tier-media-locator",), True, True), (("locator-without-cdn-number",), False, False)],
)
def test_free_tier_locator_fields(app_stub, tmp_path, defects, media_cdn, transit_cdn):
    phone, key, result, _ = backed_up(app_stub, tmp_path / "p", defects, photo)
    locator = first_locator(phone.uploaded(key, tmp_path / "a.bin"))
    phone.target.close()
    assert result.ok, result.error
    assert locator.transit_cdn_key
    assert locator.HasField("media_tier_cdn_number") is media_cdn
    assert locator.HasField("transit_cdn_number") is transit_cdn


@pytest.mark.parametrize("defects, opens_without_aci", [((), False), (("archive-key-ignores-aci",), True)])
def test_archive_key_bound_to_aci(app_stub, tmp_path, defects, opens_without_aci):
    phone, key, result, _ = backed_up(app_stub, tmp_path / "p", defects)
    archive = phone.download_archive(key, tmp_path / "a.bin")
    phone.target.close()
    assert result.ok, result.error
    assert opens_with(archive, key, bytes(16)) is opens_without_aci


@pytest.mark.parametrize("defects, kept", [((), True), (("chat-timer-on-untimed",), False)])
def test_message_with_timer_off_in_timed_chat(app_stub, tmp_path, defects, kept):
    phone = start_phone(app_stub, tmp_path / "p", defects=defects)
    now = phone.target.clock_ms()
    loaded = scenario(now, [message("off", now - 6 * DAY_MS - 12 * HOUR_MS, direction="outgoing", text="timer off")])
    loaded["chats"][0]["expires_in_ms"] = 7 * DAY_MS
    phone.target.load_scenario(loaded)
    key = phone.target.enable_backups("free")
    assert phone.target.back_up_now().ok
    texts = phone.uploaded(key, tmp_path / "a.bin").texts()
    phone.target.close()
    assert ("timer off" in texts) is kept


def quoted_view_once(now):
    return [
        *view_once_photo(now),
        message("q", now - HOUR_MS + 1, direction="outgoing", text="quoting the photo", quote="once"),
    ]


@pytest.mark.parametrize("defects, view_once_quote", [((), True), (("view-once-quote-keeps-attachment",), False)])
def test_quote_of_view_once(app_stub, tmp_path, defects, view_once_quote):
    phone, key, result, now = backed_up(app_stub, tmp_path / "p", defects, quoted_view_once)
    quote = phone.uploaded(key, tmp_path / "a.bin").item(now - HOUR_MS + 1).standard_message.quote
    phone.target.close()
    assert result.ok, result.error
    assert (quote.type == quote.VIEW_ONCE) is view_once_quote
    assert (len(quote.attachments) == 0) is view_once_quote


def reacted(now):
    return [message("r", now - HOUR_MS, text="hello", reactions=[{"emoji": "👍", "author": "self"}])]


def restore_attempts(app_stub, tmp_path, defects) -> dict:
    """Back up, then restore on a wiped app: wrong key, malformed key, broken-off download,
    missing archive, and last the right key. Return each outcome and the restored reactions."""
    phone, key, _, _ = backed_up(app_stub, tmp_path / "p", defects, reacted)
    path = phone.archive_path(key)
    archive = app_stub.admin.object_bytes(path)
    phone.reinstall()
    results = {
        "wrong key": phone.target.restore(keys.display_recovery_key(keys.generate_recovery_key())),
        "malformed key": phone.target.restore("ABCD EFGH"),
    }
    fault = app_stub.admin.add_fault("/backups/*", "truncate", method="GET", count=1, after_bytes=len(archive) // 2)
    try:
        results["broken-off download"] = phone.target.restore(key)
    finally:
        app_stub.admin.remove_fault(fault["id"])
    app_stub.admin.delete_object(path)
    try:
        results["missing archive"] = phone.target.restore(key)
    finally:
        app_stub.admin.put_object(path, archive)
    results["right key"] = phone.target.restore(key)
    reactions = [list(m.reactions) for m in phone.target.visible_messages()]
    phone.target.close()
    outcomes = {name: result.error_kind or "ok" for name, result in results.items()}
    outcomes["one-line errors"] = all("\n" not in (result.error or "").strip() for result in results.values())
    outcomes["reactions"] = reactions
    return outcomes


CLEAN_RESTORES = {
    "wrong key": "incorrect-key",
    "malformed key": "invalid-key",
    "broken-off download": "network",
    "missing archive": "missing",
    "right key": "ok",
    "one-line errors": True,
    "reactions": [["👍"]],
}


@pytest.mark.parametrize(
    "defects, changed",
    [
        ((), {}),
        (("wrong-key-reported-as-corrupt",), {"wrong key": "corrupt"}),
        (("no-key-format-check",), {"malformed key": "incorrect-key"}),
        (("traceback-in-restore-error",), {"one-line errors": False}),
        (("missing-reported-as-network",), {"missing archive": "network"}),
        (("caches-missing-backup",), {"right key": "missing", "reactions": []}),
        (("restore-drops-reactions",), {"reactions": [[]]}),
    ],
)
def test_restore_outcomes(app_stub, tmp_path, defects, changed):
    assert restore_attempts(app_stub, tmp_path, defects) == {**CLEAN_RESTORES, **changed}


def leaks(app_stub, tmp_path, defects) -> set[str]:
    """Back up, receive a photo, back up again; return what leaked where it must not."""
    mark = since(app_stub)
    phone, _, result, _ = backed_up(app_stub, tmp_path / "p", defects)
    assert result.ok, result.error
    position = phone.target.log_position()
    photo_file = {"file_name": "beach.jpg", "content_type": "image/jpeg", "size": 3000, "seed": "beach"}
    phone.target.receive_message("Bob Jones", "look at this", attachments=[photo_file])
    phone.target.wait_for_log(r"attachments uploaded count=\d+", position, 60)
    assert phone.target.back_up_now().ok
    log_text = "\n".join(line.text for line in phone.target.read_log())
    snapshot = phone.target.snapshot_files(tmp_path / "snap")
    phone.target.close()
    records = app_stub.admin.recordings(since_id=mark)
    forms = [r for r in records if r["path"] == "/v4/attachments/form/upload"]
    found = set()
    if any("beach" in str(r["query"]) for r in forms):
        found.add("file name in upload form")
    if any(header(r, "x-signal-zk-auth") for r in forms):
        found.add("presentation on account route")
    if any(header(r, "x-signal-account") for r in records if r["plane"] == "archive"):
        found.add("ACI on archive route")
    if any("backupId" in str(r["query"]) for r in records if r["path"] == "/v1/archives/auth"):
        found.add("backup id on account route")
    if "look at this" in log_text:
        found.add("message text in log")
    outside_store = [p for p in data_files_contain(snapshot, b"look at this") if not p.startswith("messages.db")]
    if outside_store:
        found.add("message text in app files")
    return found


@pytest.mark.parametrize(
    "defects, leaked",
    [
        ((), set()),
        (("filename-in-upload-form",), {"file name in upload form"}),
        (("zk-auth-on-account-routes",), {"presentation on account route"}),
        (("aci-on-archive-routes",), {"ACI on archive route"}),
        (("backup-id-on-account-routes",), {"backup id on account route"}),
        (("logs-message-text",), {"message text in log"}),
        (("keeps-plaintext-export",), {"message text in app files"}),
    ],
)
def test_leaks(app_stub, tmp_path, defects, leaked):
    assert leaks(app_stub, tmp_path, defects) == leaked
