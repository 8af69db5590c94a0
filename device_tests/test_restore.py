"""Restore: wipe the app, restore with the recovery key, and the visible messages equal the
pre-wipe ones minus exclusions and minus what expired meanwhile. A wrong key, a malformed key,
a corrupted archive, a truncated download, an archive that breaks off in the middle and a
missing archive each fail with a clear error and leave no data. A retry with the right key
then works, and nothing is committed to the server before the restore.

The tests run in file order on one wiped app: each failure must leave it empty for the next.
"""

from __future__ import annotations

import dataclasses

import pytest

from device_support import (
    archive_messages,
    archive_object_path,
    back_up,
    describe_findings,
    download_archive,
    expected_fate,
    read_archive,
    reencrypt,
    resolved_scenario,
)
from harness import keys
from harness.device_session import stub_endpoints
from harness.traffic import AccountIdentity, check_archive_plane

COMMIT_ROUTES = {("PUT", "/v1/archives/backupid"), ("PUT", "/v1/archives/keys")}


@pytest.fixture(scope="module")
def origin(stub, target, account, recovery_key, policy, scenario_override, tmp_path_factory):
    """The phone before the wipe: a backed-up scenario and what its screens showed."""
    resolved = resolved_scenario("daily-life", target.clock_ms(), scenario_override)
    target.load_scenario(resolved)
    back_up(target)
    folder = tmp_path_factory.mktemp("restore")
    path = download_archive(stub, recovery_key, account.aci, folder / "archive.bin")
    view = read_archive(target, path, recovery_key, account.aci, policy=policy)
    excluded = {
        message["sent_ms"]
        for message in resolved["messages"]
        if expected_fate(message, view.info.backup_time_ms, policy) == "excluded"
    }
    return {
        "before": target.visible_messages(),
        "excluded_sent": excluded,
        "archive": path,
        "object": archive_object_path(stub, recovery_key, account.aci),
        "folder": folder,
    }


def reinstall(stub, target, account):
    target.wipe()
    target.start()
    target.point_at(stub_endpoints(stub))
    target.register_account(account)


@pytest.fixture(scope="module")
def wiped(origin, stub, target, account, recorder):
    """The same account on a wiped app, as a new phone; returns the recording position."""
    reinstall(stub, target, account)
    return {"since": recorder.position()}


@pytest.fixture
def phone(wiped, stub, target, account):
    """The wiped app, wiped again if an earlier failed restore left data behind."""
    if target.visible_messages():
        reinstall(stub, target, account)
    return wiped


def assert_failed_cleanly(result, target, expected_kinds, what):
    assert not result.ok, f"restore with {what} succeeded"
    assert result.error_kind in expected_kinds, (
        f"restore with {what}: error kind {result.error_kind!r}, expected one of {sorted(expected_kinds)}"
    )
    assert result.error and "\n" not in result.error.strip(), f"restore with {what}: no clear one-line error: {result.error!r}"
    left = target.visible_messages()
    assert left == [], f"restore with {what} left {len(left)} message(s) behind, e.g. {left[0].chat}: {left[0].text!r}"


def test_wrong_key_fails_cleanly(phone, target):
    result = target.restore(keys.display_recovery_key(keys.generate_recovery_key()))
    assert_failed_cleanly(result, target, {"incorrect-key"}, "a wrong recovery key")


@pytest.mark.parametrize("entry", ["ABCD EFGH", "a" * 65, "é" * 64], ids=["8-characters", "65-characters", "non-ascii"])
def test_malformed_key_fails_cleanly(phone, target, entry):
    assert_failed_cleanly(target.restore(entry), target, {"invalid-key"}, f"the malformed key {entry[:12]!r}")


def test_corrupted_archive_fails_cleanly(phone, origin, stub, target, recovery_key):
    # The last byte belongs to the MAC: the content still decrypts, only the MAC disagrees.
    size = origin["archive"].stat().st_size
    flipped = stub.admin.corrupt_object(origin["object"], offset=size - 1)
    try:
        result = target.restore(recovery_key)
    finally:
        stub.admin.corrupt_object(origin["object"], offset=flipped["offset"], bit=flipped["bit"])
    assert_failed_cleanly(result, target, {"corrupt"}, "an archive whose MAC was changed")


def test_truncated_download_fails_cleanly(phone, origin, stub, target, recovery_key):
    size = origin["archive"].stat().st_size
    fault = stub.admin.add_fault("/backups/*", "truncate", method="GET", count=1, after_bytes=size // 2)
    try:
        result = target.restore(recovery_key)
    finally:
        stub.admin.remove_fault(fault["id"])
    assert_failed_cleanly(result, target, {"network", "corrupt"}, "a truncated download")


def test_broken_frame_leaves_no_partial_data(phone, origin, stub, target, recovery_key, account):
    messages = archive_messages(target, origin["archive"], recovery_key, account.aci)
    middle = max(2, len(messages) // 2)
    broken = [*messages[:middle], b"\xff\xff\xff\xff", *messages[middle:]]
    crafted = reencrypt(target, origin["archive"], recovery_key, account.aci, broken, origin["folder"] / "broken.bin")
    stub.admin.put_object(origin["object"], crafted.read_bytes())
    try:
        result = target.restore(recovery_key)
    finally:
        stub.admin.put_object(origin["object"], origin["archive"].read_bytes())
    assert_failed_cleanly(result, target, {"corrupt"}, f"an archive whose frame {middle} is invalid")


def test_missing_archive_fails_cleanly(phone, origin, stub, target, recovery_key):
    stub.admin.delete_object(origin["object"])
    try:
        result = target.restore(recovery_key)
    finally:
        stub.admin.put_object(origin["object"], origin["archive"].read_bytes())
    assert_failed_cleanly(result, target, {"missing"}, "no archive on the server")


def test_retry_with_right_key_restores(phone, target, recovery_key):
    typed = keys.normalize_recovery_key(recovery_key).upper()
    result = target.restore(typed)
    assert result.ok, f"restore with the right key failed after the failed attempts: {result.error}"


def comparable(message):
    """A visible message without what a restore legitimately drops (view-once content)."""
    if message.view_once:
        return dataclasses.replace(message, attachments=())
    return message


def test_restored_messages_match(origin, target, clock, artifacts):
    now = clock.now_ms()
    expected = {
        (message.chat, message.sent_at_ms): comparable(message)
        for message in origin["before"]
        if message.sent_at_ms not in origin["excluded_sent"]
        and not (message.expire_start_ms is not None and message.expires_in_ms is not None
                 and message.expire_start_ms + message.expires_in_ms <= now)
    }
    shown = {(message.chat, message.sent_at_ms): comparable(message) for message in target.visible_messages()}
    missing = sorted(set(expected) - set(shown))
    extra = sorted(set(shown) - set(expected))
    changed = sorted(place for place in set(expected) & set(shown) if shown[place] != expected[place])
    artifacts.save_json(
        "restore-diff.json",
        {
            "missing": [dataclasses.asdict(expected[place]) for place in missing],
            "extra": [dataclasses.asdict(shown[place]) for place in extra],
            "changed": [{"before": dataclasses.asdict(expected[p]), "after": dataclasses.asdict(shown[p])} for p in changed],
        },
    )
    assert not missing, f"{len(missing)} message(s) not restored, e.g. chat {missing[0][0]!r}, sent {missing[0][1]}"
    assert not extra, f"{len(extra)} message(s) restored that should be gone, e.g. chat {extra[0][0]!r}, sent {extra[0][1]}"
    for place, message in expected.items():
        assert shown[place] == message, f"chat {place[0]!r}, message sent {place[1]}: differs after the restore"


def test_no_commitment_before_restore(phone, recorder):
    requests = recorder.requests(since_id=phone["since"])
    commits = [request for request in requests if (request.method, request.path) in COMMIT_ROUTES]
    restored_at = next(
        (request.id for request in requests if request.method == "GET" and request.path.startswith("/backups/")
         and request.status == 200),
        None,
    )
    early = [request for request in commits if restored_at is None or request.id < restored_at]
    assert not early, f"{early[0].location()}: backup id committed while restoring (before the archive was read)"


def test_restore_requests_unlinkable(phone, recorder, account):
    """The archive download and the attachment downloads of a restore carry no account auth."""
    identity = AccountIdentity(account.aci, account.e164, account.device_id, account.password)
    requests = recorder.requests(since_id=phone["since"])
    assert any(request.plane == "cdn" for request in requests), "the restore made no CDN request"
    findings = check_archive_plane(requests, identity)
    assert not findings, describe_findings(findings)
