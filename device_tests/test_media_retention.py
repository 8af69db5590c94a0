"""Media retention by tier. The free tier keeps transit pointers only, and media older than the
free window does not come back on restore while newer media does. The paid tier copies every
attachment and thumbnail to the media tier, and each copy decrypts to the original bytes.

Free tier: before backups are turned on, the media-age matrix is loaded message by message,
each at its attachment's upload time, so the stub stores every transit object at its
scenario age. After a backup at the scenario clock the app is wiped and restored one minute
later. An attachment must restore when it was uploaded less than the stub's free-tier media
window (``freeTierMediaDays`` of its subscription configuration, 45 days by default) before
the scenario clock, and must be listed as unavailable otherwise.

Paid tier: the same app is wiped and registered to a new paid account, the matrix is loaded
at once and backed up. Every media-tier object is decrypted with keys derived from the media
root key of the archive's BackupInfo: first the server's layer, then the attachment's own
encryption (for thumbnails, the thumbnail transit key). Last, the clock moves past the stub's
backup grace period and its expiration worker runs: the daily refresh with the media
credential must have kept the media backup id and its objects.
"""

from __future__ import annotations

import pytest

from device_support import (
    DAY_MS,
    HOUR_MS,
    JOB_TIMEOUT_S,
    MINUTE_MS,
    MediaLayerError,
    decrypt_media_object,
    download_archive,
    media_backup_id_of,
    media_id_text,
    media_objects,
    read_archive,
    resolved_scenario,
)
from harness.artifacts import register_secret
from harness.device_session import new_account
from harness.scenario import attachment_bytes
from suite_support_extra import (
    MEDIA_TIER_ROUTES,
    decrypt_thumbnail_object,
    has_thumbnail,
    item_of,
    load_by_upload_time,
    reinstall,
    sha256_hex,
    thumbnail_media_id,
    upload_time,
    wait_for_log_after,
)

SCENARIO = "media-age-matrix"
# The end of a keep-alive refresh in the app log, whatever its outcome. The reference app
# logs "keep-alive refresh skipped" (debug level) when it does not refresh.
REFRESH_ENDED = r"refresh (sent|failed|skipped)"


def original_hashes(resolved):
    """Return the SHA-256 of every scenario attachment's plaintext, by file name."""
    return {
        attachment["file_name"]: sha256_hex(attachment_bytes(attachment))
        for message in resolved["messages"]
        for attachment in message["attachments"]
    }


@pytest.fixture(scope="module", autouse=True)
def aged_phone(stub, target, account, clock):
    """The matrix on the free account's phone, each attachment on the stub at its scenario age.

    It runs before backups are turned on, as a user has media long before enabling backups,
    so no daily alarm fires while the clock moves through the 90 days.
    """
    start = clock.now_ms()
    oldest = start - min(upload_time(message) for message in resolved_scenario(SCENARIO, start)["messages"])
    resolved = resolved_scenario(SCENARIO, start + oldest + HOUR_MS)
    load_by_upload_time(target, clock, resolved)
    return resolved


@pytest.fixture(scope="module")
def free_run(aged_phone, recorder, stub, target, account, recovery_key, clock, policy, tmp_path_factory):
    """A free-tier backup of the aged matrix at the scenario clock, and the restore of it."""
    resolved = aged_phone
    result = target.back_up_now()
    if not result.ok:
        return {"backup_error": f"the free-tier backup failed on the target: {result.error}"}
    # The window the stub serves as freeTierMediaDays in its subscription configuration.
    window_ms = int(stub.admin.info()["config"]["free_tier_media_days"]) * DAY_MS
    path = download_archive(stub, recovery_key, account.aci, tmp_path_factory.mktemp("free") / "archive.bin")
    view = read_archive(target, path, recovery_key, account.aci, policy=policy, tier="free")
    requests = recorder.requests()

    # Each upload reached the stub a moment after its scenario time. Restoring a minute after
    # the scenario clock keeps an attachment uploaded exactly one window earlier outside it.
    clock.advance(MINUTE_MS)
    reinstall(stub, target, account)
    restored = target.restore(recovery_key)
    # Same as the matrix's own `expect` values when the window is 45 days.
    fates = {
        attachment["file_name"]: "available" if resolved["now_ms"] - attachment["uploaded_ms"] < window_ms else "unavailable"
        for message in resolved["messages"]
        for attachment in message["attachments"]
    }
    return {
        "backup_error": None,
        "resolved": resolved,
        "view": view,
        "requests": requests,
        "restored": restored,
        "visible": target.visible_messages() if restored.ok else [],
        "fates": fates,
        "originals": original_hashes(resolved),
        "window_days": window_ms // DAY_MS,
    }


def completed(run):
    """Return a phase's results, or fail the test with the error of its backup."""
    if run["backup_error"]:
        pytest.fail(run["backup_error"])
    return run


def attachments_with_fate(run, fate):
    """Yield (message, attachment) pairs of the scenario whose free-tier fate is ``fate``."""
    for message in run["resolved"]["messages"]:
        for attachment in message["attachments"]:
            if run["fates"][attachment["file_name"]] == fate:
                yield message, attachment


def restored_attachment(run, message, attachment):
    """Return the restored message and its attachment of the same file name (either may be None)."""
    restored_message = next((entry for entry in run["visible"] if entry.sent_at_ms == message["sent_ms"]), None)
    if restored_message is None:
        return None, None
    return restored_message, next((entry for entry in restored_message.attachments if entry.file_name == attachment["file_name"]), None)


def test_free_archive_points_to_transit(free_run):
    completed(free_run)
    findings = [finding for finding in free_run["view"].errors() if finding.rule.startswith("media.")]
    assert not findings, findings[0].message
    for message, attachment in attachments_with_fate(free_run, "available"):
        item = item_of(free_run["view"].items, message)
        assert item is not None, f"message {message['id']}: missing from the free-tier archive"
        pointer = next((entry for entry in item.attachments if entry.file_name == attachment["file_name"]), None)
        assert pointer is not None, f"{item.location()}: no attachment '{attachment['file_name']}'"
        assert pointer.on_transit_tier, (
            f"{item.location()}: '{attachment['file_name']}' has no transit-tier locator, "
            f"though it was uploaded within the {free_run['window_days']}-day window"
        )


def test_free_uses_no_media_tier(free_run):
    completed(free_run)
    calls = [request for request in free_run["requests"] if (request.method, request.path) in MEDIA_TIER_ROUTES]
    assert not calls, f"{calls[0].location()}: a free-tier client used a media-tier route"


def test_free_restore_succeeds(free_run):
    completed(free_run)
    restored = free_run["restored"]
    assert restored.ok, f"restore of the free-tier backup failed ({restored.error_kind}): {restored.error}"


def test_free_recent_media_restored(free_run):
    completed(free_run)
    for message, attachment in attachments_with_fate(free_run, "available"):
        restored_message, restored = restored_attachment(free_run, message, attachment)
        age_days = (free_run["resolved"]["now_ms"] - attachment["uploaded_ms"]) / DAY_MS
        place = f"message {message['id']}, '{attachment['file_name']}' (uploaded {age_days:g} days earlier)"
        assert restored_message is not None, f"{place}: message not restored"
        assert restored is not None, f"{place}: attachment not restored"
        assert restored.available, f"{place}: not available after the restore, though inside the {free_run['window_days']}-day window"
        assert restored.sha256 == free_run["originals"][attachment["file_name"]], f"{place}: restored bytes differ from the original"


def test_free_old_media_not_restored(free_run):
    completed(free_run)
    old = list(attachments_with_fate(free_run, "unavailable"))
    assert old, f"the scenario has no attachment older than the {free_run['window_days']}-day window"
    for message, attachment in old:
        restored_message, restored = restored_attachment(free_run, message, attachment)
        age_days = (free_run["resolved"]["now_ms"] - attachment["uploaded_ms"]) / DAY_MS
        place = f"message {message['id']}, '{attachment['file_name']}' (uploaded {age_days:g} days earlier)"
        assert restored_message is not None, f"{place}: message not restored (only its media should be gone)"
        assert restored is not None, f"{place}: attachment not listed after the restore"
        assert not restored.available, f"{place}: shown as available, though older than the {free_run['window_days']}-day window"


@pytest.fixture(scope="module")
def paid_run(free_run, stub, target, policy, clock, tmp_path_factory):
    """The same app on a new paid account: one backup of the matrix and its media tier.

    It needs the free-tier run to be over, because it wipes the app.
    """
    account = new_account(stub, "paid")
    reinstall(stub, target, account)
    recovery_key = target.enable_backups("paid")
    register_secret(recovery_key)
    resolved = resolved_scenario(SCENARIO, clock.now_ms())
    target.load_scenario(resolved)
    result = target.back_up_now()
    if not result.ok:
        return {"backup_error": f"the paid-tier backup failed on the target: {result.error}"}
    path = download_archive(stub, recovery_key, account.aci, tmp_path_factory.mktemp("paid") / "archive.bin")
    view = read_archive(target, path, recovery_key, account.aci, policy=policy, tier="paid")
    return {
        "backup_error": None,
        "account": account,
        "view": view,
        "tier": media_objects(stub, view, account.aci),
        "originals": original_hashes(resolved),
    }


def test_paid_copies_every_attachment(paid_run):
    completed(paid_run)
    tier = paid_run["tier"]
    assert len(tier.expected) == len(paid_run["originals"]), (
        f"the paid-tier archive names {len(tier.expected)} media-tier attachments, the scenario has {len(paid_run['originals'])}"
    )
    assert not tier.missing, f"{len(tier.missing)} attachment(s) not in the media tier, e.g. {tier.missing[0]}"


def test_paid_media_decrypts_to_original(paid_run, stub):
    completed(paid_run)
    tier = paid_run["tier"]
    media_root_key = paid_run["view"].info.media_root_key
    for media_id, (location, attachment) in tier.expected.items():
        if media_id not in tier.objects:
            continue  # reported by test_paid_copies_every_attachment
        place = f"{location}: '{attachment.file_name}' (media-tier object {media_id})"
        try:
            plaintext = decrypt_media_object(stub.admin.object_bytes(tier.objects[media_id]), media_root_key, attachment)
        except MediaLayerError as error:
            pytest.fail(f"{place}: does not decrypt: {error}")
        assert sha256_hex(plaintext) == paid_run["originals"][attachment.file_name], f"{place}: decrypts to other bytes than the original"


def test_paid_copies_thumbnails(paid_run, stub):
    completed(paid_run)
    tier = paid_run["tier"]
    media_root_key = paid_run["view"].info.media_root_key
    expected = [(location, attachment) for location, attachment in tier.expected.values() if has_thumbnail(attachment)]
    assert expected, "the scenario has no image or video attachment"
    missing = []
    for location, attachment in expected:
        media_id = media_id_text(thumbnail_media_id(media_root_key, attachment))
        if media_id not in tier.objects:
            missing.append(f"{location}: thumbnail of '{attachment.file_name}'")
            continue
        try:
            decrypt_thumbnail_object(stub.admin.object_bytes(tier.objects[media_id]), media_root_key, attachment)
        except MediaLayerError as error:
            pytest.fail(f"{location}: thumbnail of '{attachment.file_name}' (object {media_id}) does not decrypt: {error}")
    assert not missing, f"{len(missing)} thumbnail(s) not in the media tier, e.g. {missing[0]}"


@pytest.fixture(scope="module")
def paid_after_grace(paid_run, stub, target, clock):
    """The paid backup after the clock moved one day and then the server's grace period.

    A refresh must follow each jump, and only a refresh line logged after the jump counts:
    the last line of the refresh before it can reach the log late. Then the stub's
    expiration worker runs once.
    """
    if paid_run["backup_error"]:
        return paid_run
    grace_days = int(stub.admin.info()["config"]["backup_grace_days"])
    for delta_ms in (DAY_MS, grace_days * DAY_MS):
        position = target.log_position()
        halfway_ms = clock.now_ms() + delta_ms // 2
        clock.advance(delta_ms)
        # A paid refresh logs two lines, and the second one of the previous refresh can reach
        # the log after ``position``. Only a line logged after the jump counts.
        wait_for_log_after(target, REFRESH_ENDED, position, halfway_ms, JOB_TIMEOUT_S)
    stub.admin.run_expiry()
    media_root_key = paid_run["view"].info.media_root_key
    return {
        "backup_error": None,
        "days_moved": grace_days + 1,
        "tier": media_objects(stub, paid_run["view"], paid_run["account"].aci),
        "record": stub.admin.backup(media_backup_id_of(media_root_key, paid_run["account"].aci)),
    }


def test_paid_refresh_keeps_media_alive(paid_run, paid_after_grace):
    completed(paid_after_grace)
    days = paid_after_grace["days_moved"]
    assert paid_after_grace["record"] is not None, (
        f"{days} days later the stub's expiry deleted the media backup id: no keep-alive refresh with the media credential reached the server"
    )
    before, after = paid_run["tier"].objects, paid_after_grace["tier"].objects
    gone = sorted(set(before) - set(after))
    assert not gone, f"{days} days later {len(gone)} media-tier object(s) expired, e.g. {gone[0]}"
