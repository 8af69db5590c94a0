"""TTL expiry by the stub clock: whole backups, media directories and refresh rules."""

from __future__ import annotations

import base64
import os

import pytest
import requests

from harness.stub_client import hashed_backup_id
from libsignal_bridge.zk import TYPE_MEDIA, TYPE_MESSAGES
from stub_support import BackupClient, b64, bridge, stub, stub_process, tus_upload  # noqa: F401 (fixtures)

pytestmark = pytest.mark.oracle
DAY = 86400


def backup_id(client: BackupClient, credential_type: int) -> bytes:
    credential = next(iter(client.types[credential_type].by_day.values()))
    return client.zk.credential_info(credential).backup_id


def test_unrefreshed_backup_deleted_after_grace(stub, bridge):
    stale = BackupClient(stub.url, stub.admin, bridge).setup()
    assert tus_upload(stub.url, stale.upload_form(), b"old archive").status_code == 204
    fresh = BackupClient(stub.url, stub.admin, bridge).setup()
    stale_id = backup_id(stale, TYPE_MESSAGES)
    fresh_id = backup_id(fresh, TYPE_MESSAGES)

    stub.admin.advance_clock(29 * DAY)
    assert stub.admin.run_expiry()["backups_deleted"] == []
    assert fresh.fetch_credentials(days=1).status_code == 200
    assert fresh.call("POST", "/v1/archives").status_code == 204
    stub.admin.advance_clock(2 * DAY)

    summary = stub.admin.run_expiry()
    assert hashed_backup_id(stale_id) in summary["backups_deleted"]
    assert stub.admin.backup(stale_id) is None
    assert stub.admin.backup(fresh_id) is not None
    assert not any(item["path"].endswith("messageBackup") for item in stub.admin.objects("backups"))


def test_media_expires_but_messages_stay(stub, bridge):
    client = BackupClient(stub.url, stub.admin, bridge, backup_level=201).setup()
    form = client.media_form(10)
    assert tus_upload(stub.url, form, os.urandom(10)).status_code == 204
    body = {
        "sourceAttachment": {"cdn": 3, "key": form["key"]},
        "objectLength": 10,
        "mediaId": base64.urlsafe_b64encode(os.urandom(15)).decode(),
        "hmacKey": b64(os.urandom(32)),
        "encryptionKey": b64(os.urandom(32)),
    }
    assert client.call("PUT", "/v1/archives/media", TYPE_MEDIA, json=body).status_code == 200
    media_id = backup_id(client, TYPE_MEDIA)
    old_media_dir = stub.admin.backup(media_id)["media_dir"]

    # Drop to the free level: refreshes keep the record but no longer touch the media time.
    stub.admin.register_account(str(client.aci), client.password, backup_level=200)
    for _ in range(2):
        stub.admin.advance_clock(16 * DAY)
        assert client.fetch_credentials(days=1).status_code == 200
        assert client.call("POST", "/v1/archives", TYPE_MEDIA).status_code == 204

    summary = stub.admin.run_expiry()
    assert hashed_backup_id(media_id) in summary["media_expired"]
    record = stub.admin.backup(media_id)
    assert record is not None
    assert record["media_dir"] != old_media_dir
    assert record["media_bytes"] == 0
    assert record["media_refreshed_at"] is None
    assert client.call("GET", "/v1/archives/media", TYPE_MEDIA).json()["storedMediaObjects"] == []


def test_free_level_never_media_expired(stub, bridge):
    client = BackupClient(stub.url, stub.admin, bridge, backup_level=200).setup()
    stub.admin.advance_clock(20 * DAY)
    assert client.fetch_credentials(days=1).status_code == 200
    assert client.call("POST", "/v1/archives").status_code == 204
    stub.admin.advance_clock(20 * DAY)
    summary = stub.admin.run_expiry()
    assert summary["media_expired"] == []
    assert stub.admin.backup(backup_id(client, TYPE_MESSAGES))["media_refreshed_at"] is None


def test_upload_form_and_keys_refresh(stub, bridge):
    client = BackupClient(stub.url, stub.admin, bridge).setup()
    record_id = backup_id(client, TYPE_MESSAGES)
    start = stub.admin.backup(record_id)["refreshed_at"]
    stub.admin.advance_clock(2 * DAY)
    assert client.fetch_credentials(days=1).status_code == 200
    assert client.call("GET", "/v1/archives").status_code == 200
    assert stub.admin.backup(record_id)["refreshed_at"] == start
    client.upload_form()
    assert stub.admin.backup(record_id)["refreshed_at"] == start + 2 * DAY
    assert stub.admin.backup(record_id)["cdn"] == 3
    stub.admin.advance_clock(DAY)
    assert client.fetch_credentials(days=1).status_code == 200
    assert client.set_keys(TYPE_MESSAGES).status_code == 204
    assert stub.admin.backup(record_id)["refreshed_at"] == start + 3 * DAY


def test_read_token_expires_by_stub_clock(stub, bridge):
    client = BackupClient(stub.url, stub.admin, bridge).setup()
    form = client.upload_form()
    assert tus_upload(stub.url, form, b"archive").status_code == 204
    headers = client.read_headers()
    stub.admin.advance_clock(8 * DAY)
    assert requests.get(f"{stub.url}/backups/{form['key']}", headers=headers).status_code == 401
