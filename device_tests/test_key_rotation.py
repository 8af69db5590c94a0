"""Key rotation. After the user creates a new recovery key, the next archive opens with the new
key only and its BackupInfo carries a new media root key. The old archive stays on the server
until the new one is uploaded.

The module backs up the general-purpose scenario, keeps the archive the stub stored, creates
a new recovery key and waits for the backup the app starts after the rotation. It then
compares the stub's objects and the recorded requests with the two archives.
"""

from __future__ import annotations

import pytest

from device_support import (
    back_up,
    backup_id_of,
    download_archive,
    read_archive,
    resolved_scenario,
    wait_for_backup,
)
from harness.artifacts import register_secret
from harness.errors import ArchiveError
from suite_support_extra import open_error, sha256_hex, succeeded, upload_completed_id


@pytest.fixture(scope="module")
def run(recorder, stub, target, account, recovery_key, policy, scenario_override, tmp_path_factory):
    """The archive before the rotation, the one after it, and the requests in between."""
    target.load_scenario(resolved_scenario("daily-life", target.clock_ms(), scenario_override))
    back_up(target, "backup before the rotation")

    folder = tmp_path_factory.mktemp("rotation")
    old_path = download_archive(stub, recovery_key, account.aci, folder / "old.bin")
    old_view = read_archive(target, old_path, recovery_key, account.aci, policy=policy)
    old_object = stub.admin.message_backup_path(backup_id_of(recovery_key, account.aci))

    since = recorder.position()
    position = target.log_position()
    new_key = target.regenerate_recovery_key()
    register_secret(new_key)
    wait_for_backup(target, position)

    new_object = stub.admin.message_backup_path(backup_id_of(new_key, account.aci))
    new_path, new_view, new_error = open_stored(stub, target, new_object, new_key, account.aci, policy, folder / "new.bin")
    return {
        "old_key": recovery_key,
        "old_path": old_path,
        "old_view": old_view,
        "old_object": old_object,
        "old_stored": stub.admin.object_bytes(old_object) if stub.admin.object_exists(old_object) else None,
        "new_object": new_object,
        "new_path": new_path,
        "new_view": new_view,
        "new_error": new_error,
        "requests": recorder.requests(since_id=since),
    }


def open_stored(stub, target, path, recovery_key, aci, policy, destination):
    """Download and decrypt a stored archive: (local path, view, error), None where it failed."""
    if path is None or not stub.admin.object_exists(path):
        return None, None, None
    local = stub.admin.download_object(path, destination)
    try:
        return local, read_archive(target, local, recovery_key, aci, policy=policy), None
    except ArchiveError as error:
        return local, None, str(error)


def new_archive(run):
    """Return the path of the archive stored for the new key, or fail the test."""
    if run["new_path"] is None:
        pytest.fail("after the rotation the server stores no archive for the new recovery key's backup id")
    return run["new_path"]


def new_view(run):
    """Return the decrypted archive stored for the new key, or fail the test."""
    new_archive(run)
    if run["new_view"] is None:
        pytest.fail(f"the archive uploaded after the rotation does not open with the new recovery key: {run['new_error']}")
    return run["new_view"]


def test_new_archive_stored_for_new_key(run):
    assert run["new_object"] is not None, "after the rotation the server has no backup for the new recovery key's backup id"
    assert run["new_path"] is not None, f"{run['new_object']}: no archive stored after the rotation"


def test_new_archive_opens_with_new_key(run):
    view = new_view(run)
    assert view.items, "the archive uploaded after the rotation holds no chat items"
    assert view.info.backup_time_ms > run["old_view"].info.backup_time_ms, (
        f"the archive stored for the new key has backupTimeMs {view.info.backup_time_ms}, "
        f"not later than the archive before the rotation ({run['old_view'].info.backup_time_ms})"
    )


def test_new_archive_rejects_old_key(run, target, account):
    error = open_error(target, new_archive(run), run["old_key"], account.aci)
    assert error is not None, "the archive uploaded after the rotation still opens with the old recovery key"


def test_media_root_key_rotated(run):
    assert new_view(run).info.media_root_key != run["old_view"].info.media_root_key, (
        "the archive uploaded after the rotation has the old media root key in its BackupInfo"
    )


def test_old_archive_kept_until_new_upload(run):
    new_archive(run)
    new_dir = run["new_object"].split("/")[1]  # backups/<backup dir>/messageBackup
    uploaded_at = upload_completed_id(run["requests"], new_dir)
    assert uploaded_at is not None, f"no completed upload of {run['new_object']} was recorded after the rotation"
    deletes = [
        request for request in run["requests"]
        if request.method == "DELETE" and request.path == "/v1/archives" and succeeded(request) and request.id < uploaded_at
    ]
    assert not deletes, f"{deletes[0].location()}: a backup was deleted before the new archive was uploaded"
    stored = run["old_stored"]
    if stored is not None:
        assert sha256_hex(stored) == sha256_hex(run["old_path"].read_bytes()), (
            f"{run['old_object']}: the old backup id's archive was overwritten after the rotation"
        )
