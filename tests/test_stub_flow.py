"""The whole archive flow against the running stub, with credentials made by libsignal.

Commit backup id, fetch credentials, set keys, get the upload form, TUS upload, read back,
refresh, list, copy media, delete: each step over real HTTP on loopback.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from harness.stub_process import StubProcess
from libsignal_bridge.zk import TYPE_MEDIA, TYPE_MESSAGES
from stub_support import BackupClient, b64, bridge, stub, stub_process, tus_upload  # noqa: F401 (fixtures)

pytestmark = pytest.mark.oracle
DAY = 86400


@pytest.fixture
def client(stub, bridge):
    return BackupClient(stub.url, stub.admin, bridge, backup_level=201).setup()


def copy_body(key: str, length: int, media_id: bytes, hmac_key: bytes, aes_key: bytes) -> dict[str, object]:
    return {
        "sourceAttachment": {"cdn": 3, "key": key},
        "objectLength": length,
        "mediaId": base64.urlsafe_b64encode(media_id).decode().rstrip("="),
        "hmacKey": b64(hmac_key),
        "encryptionKey": b64(aes_key),
    }


def decrypt_media(stored: bytes, hmac_key: bytes, aes_key: bytes) -> bytes:
    iv, ciphertext, mac = stored[:16], stored[16:-32], stored[-32:]
    assert hmac.compare_digest(hmac.new(hmac_key, iv + ciphertext, hashlib.sha256).digest(), mac)
    decryptor = Cipher(algorithms.AES(aes_key), modes.CBC(iv)).decryptor()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(decryptor.update(ciphertext) + decryptor.finalize()) + unpadder.finalize()


def test_message_backup_upload_and_read(stub, client):
    info = client.backup_info()
    assert info["cdn"] == 3
    assert info["backupName"] == "messageBackup"
    assert len(info["backupDir"]) == 22
    assert info["usedSpace"] == 0

    form = client.upload_form(5000)
    assert form["key"] == f"{info['backupDir']}/messageBackup"
    assert form["signedUploadLocation"].endswith("/upload/backups")
    claims = jwt.decode(form["headers"]["Authorization"].split()[1], options={"verify_signature": False})
    assert (claims["aud"], claims["sub"], claims["scope"], claims["maxLen"]) == ("backups", form["key"], "write", 5000)

    archive = os.urandom(5000)
    assert tus_upload(stub.url, form, archive).status_code == 204
    read = requests.get(f"{stub.url}/backups/{form['key']}", headers=client.read_headers())
    assert read.status_code == 200
    assert read.content == archive
    no_token = requests.get(f"{stub.url}/backups/{form['key']}")
    assert no_token.status_code == 401


def test_new_upload_replaces_archive(stub, client):
    first, second = os.urandom(3000), os.urandom(2000)
    assert tus_upload(stub.url, client.upload_form(), first).status_code == 204
    assert tus_upload(stub.url, client.upload_form(), second).status_code == 204
    info = client.backup_info()
    stored = stub.admin.objects(f"backups/{info['backupDir']}")
    assert [item["path"] for item in stored] == [f"backups/{info['backupDir']}/messageBackup"]
    assert requests.get(f"{stub.url}/backups/{info['backupDir']}/messageBackup", headers=client.read_headers()).content == second


def test_read_token_limited_to_own_directory(stub, bridge, client):
    other = BackupClient(stub.url, stub.admin, bridge).setup()
    assert tus_upload(stub.url, other.upload_form(), b"other archive").status_code == 204
    other_dir = other.backup_info()["backupDir"]
    response = requests.get(f"{stub.url}/backups/{other_dir}/messageBackup", headers=client.read_headers())
    assert response.status_code == 401


def test_refresh_sets_day_start(stub, client):
    stub.admin.advance_clock(3 * DAY + 3600)
    client.fetch_credentials()
    assert client.call("POST", "/v1/archives").status_code == 204
    # The module's stub is shared, so pick this client's record, not the first refreshed one.
    record = stub.admin.backup(client.backup_id(TYPE_MESSAGES))
    now = stub.admin.now()
    assert record["refreshed_at"] == int(now) // DAY * DAY


def test_media_copy_list_and_delete(stub, client):
    source = os.urandom(1000)
    form = client.media_form(len(source))
    assert len(form["key"]) == 20
    assert tus_upload(stub.url, form, source).status_code == 204
    media_id, hmac_key, aes_key = os.urandom(15), os.urandom(32), os.urandom(32)
    body = copy_body(form["key"], len(source), media_id, hmac_key, aes_key)

    copied = client.call("PUT", "/v1/archives/media", TYPE_MEDIA, json=body)
    assert copied.status_code == 200
    assert copied.json() == {"cdn": 3}

    listing = client.call("GET", "/v1/archives/media", TYPE_MEDIA).json()
    assert listing["cursor"] is None
    [stored_object] = listing["storedMediaObjects"]
    assert stored_object["mediaId"] == body["mediaId"]
    assert stored_object["objectLength"] == 16 + 16 * ((1000 + 16) // 16) + 32

    media_info = client.call("GET", "/v1/archives", TYPE_MEDIA).json()
    assert media_info["usedSpace"] == stored_object["objectLength"]
    read_headers = client.call("GET", "/v1/archives/auth/read", TYPE_MEDIA, params={"cdn": 3}).json()["headers"]
    path = f"{listing['backupDir']}/{listing['mediaDir']}/{body['mediaId']}"
    stored = requests.get(f"{stub.url}/backups/{path}", headers=read_headers).content
    assert decrypt_media(stored, hmac_key, aes_key) == source

    delete = {"mediaToDelete": [{"cdn": 3, "mediaId": body["mediaId"]}, {"cdn": 3, "mediaId": b64url_id()}]}
    assert client.call("POST", "/v1/archives/media/delete", TYPE_MEDIA, json=delete).status_code == 204
    assert client.call("GET", "/v1/archives/media", TYPE_MEDIA).json()["storedMediaObjects"] == []
    assert client.call("GET", "/v1/archives", TYPE_MEDIA).json()["usedSpace"] == 0


def b64url_id() -> str:
    return base64.urlsafe_b64encode(os.urandom(15)).decode()


def test_media_batch_outcomes(stub, client):
    source = os.urandom(100)
    form = client.media_form(len(source))
    assert tus_upload(stub.url, form, source).status_code == 204
    good = copy_body(form["key"], 100, os.urandom(15), os.urandom(32), os.urandom(32))
    wrong_length = dict(good, objectLength=99, mediaId=b64url_id())
    missing = dict(good, sourceAttachment={"cdn": 3, "key": "AAAAAAAAAAAAAAAAAAAA"}, mediaId=b64url_id())
    other_cdn = dict(good, sourceAttachment={"cdn": 2, "key": form["key"]}, mediaId=b64url_id())
    response = client.call("PUT", "/v1/archives/media/batch", TYPE_MEDIA, json={"items": [good, wrong_length, missing, other_cdn]})
    assert response.status_code == 207
    outcomes = response.json()["responses"]
    assert [item["status"] for item in outcomes] == [200, 400, 410, 410]
    assert outcomes[0]["cdn"] == 3
    assert outcomes[1]["failureReason"] == "Invalid source length"
    assert outcomes[2]["failureReason"] == "Source not found"
    assert [item["mediaId"] for item in outcomes] == [item["mediaId"] for item in (good, wrong_length, missing, other_cdn)]


def test_media_list_pages(stub, client):
    source = os.urandom(10)
    form = client.media_form(len(source))
    assert tus_upload(stub.url, form, source).status_code == 204
    items = [copy_body(form["key"], 10, os.urandom(15), os.urandom(32), os.urandom(32)) for _ in range(5)]
    assert client.call("PUT", "/v1/archives/media/batch", TYPE_MEDIA, json={"items": items}).status_code == 207
    seen, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = client.call("GET", "/v1/archives/media", TYPE_MEDIA, params=params).json()
        seen += [item["mediaId"] for item in page["storedMediaObjects"]]
        cursor = page["cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(item["mediaId"] for item in items)
    assert len(seen) == 5
    assert client.call("GET", "/v1/archives/media", TYPE_MEDIA, params={"limit": 0}).status_code == 400
    assert client.call("GET", "/v1/archives/media", TYPE_MEDIA, params={"limit": 10001}).status_code == 400


def test_media_quota_refuses_rest_of_batch(bridge):
    with StubProcess.start(config={"media_quota_bytes": 200, "expiry_interval_seconds": 0}) as small:
        client = BackupClient(small.url, small.admin, bridge).setup()
        form = client.media_form(100)
        assert tus_upload(small.url, form, os.urandom(100)).status_code == 204
        small_form = client.media_form(1)
        assert tus_upload(small.url, small_form, b"x").status_code == 204
        big = copy_body(form["key"], 100, os.urandom(15), os.urandom(32), os.urandom(32))
        tiny = copy_body(small_form["key"], 1, os.urandom(15), os.urandom(32), os.urandom(32))
        # 164 bytes fit in 200; the second 164 does not, and the tiny third is refused too.
        items = [big, dict(big, mediaId=b64url_id()), tiny]
        outcomes = client.call("PUT", "/v1/archives/media/batch", TYPE_MEDIA, json={"items": items}).json()["responses"]
        assert [item["status"] for item in outcomes] == [200, 413, 413]
        assert outcomes[1]["failureReason"] == "Media quota exhausted"
        single = client.call("PUT", "/v1/archives/media", TYPE_MEDIA, json=tiny)
        assert single.status_code == 413


def test_delete_backup_removes_everything(stub, client):
    assert tus_upload(stub.url, client.upload_form(), b"archive").status_code == 204
    backup_dir = client.backup_info()["backupDir"]
    assert client.call("DELETE", "/v1/archives").status_code == 204
    assert stub.admin.objects(f"backups/{backup_dir}") == []
    # The public key went with the record, so the old signature no longer authenticates.
    assert client.call("GET", "/v1/archives").status_code == 401
    assert client.set_keys(TYPE_MESSAGES).status_code == 204
    assert client.backup_info()["backupDir"] != backup_dir


def test_svrb_credentials_for_messages_only(stub, client):
    response = client.call("GET", "/v1/archives/auth/svrb")
    assert response.status_code == 200
    assert len(response.json()["username"]) == 32
    assert client.call("GET", "/v1/archives/auth/svrb", TYPE_MEDIA).status_code == 401


def test_read_auth_needs_cdn_3(stub, client):
    assert client.call("GET", "/v1/archives/auth/read", params={"cdn": 2}).status_code == 400
    assert client.call("GET", "/v1/archives/auth/read").status_code == 400


def test_upload_form_size_limit(stub, client):
    too_big = client.call("GET", "/v1/archives/upload/form", params={"uploadLength": 2 * 1024**3})
    assert too_big.status_code == 413
    media_too_big = client.call("GET", "/v1/archives/media/upload/form", TYPE_MEDIA, params={"uploadLength": 200 * 1024**2})
    assert media_too_big.status_code == 413


def test_recordings_cover_the_flow(stub, client):
    planes = {record["path"]: record["plane"] for record in stub.admin.recordings()}
    assert planes["/v1/archives/backupid"] == "account"
    assert planes["/v1/archives/auth"] == "account"
    assert planes["/v1/archives/keys"] == "archive"
    archive_headers = [
        dict(record["headers"]) for record in stub.admin.recordings(plane="archive")
    ]
    assert all("authorization" not in headers for headers in archive_headers)
    assert all("x-signal-zk-auth" in headers for headers in archive_headers)
