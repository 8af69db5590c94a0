"""Bad input to the stub: each case gets a 4xx JSON error, never a 500, and no file outside
the object store is read or written."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from harness.stub_process import StubProcess
from libsignal_bridge.zk import TYPE_MEDIA
from stub_support import AccountClient, BackupClient, bridge, stub, stub_process, tus_upload  # noqa: F401 (fixtures)


def raw_request(url: str, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """Send ``path`` exactly as given (no dot-segment cleanup, unlike requests/urllib3)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def assert_json_4xx(status: int, body: bytes) -> dict[str, object]:
    assert 400 <= status < 500, body[:200]
    error = json.loads(body)
    assert error["code"] == status
    assert isinstance(error["message"], str)
    return error


@pytest.fixture
def account(stub):
    return AccountClient(stub.url, stub.admin)


BACKUP_ID_URL = "/v1/archives/backupid"


def test_malformed_json_rejected(stub, account):
    response = requests.put(
        stub.url + BACKUP_ID_URL, data=b'{"messagesBackupAuthCredentialRequest": ', auth=account.auth,
        headers={"Content-Type": "application/json"},
    )
    assert_json_4xx(response.status_code, response.content)
    assert response.status_code == 400


@pytest.mark.parametrize(
    "body",
    [
        {"messagesBackupAuthCredentialRequest": 5},
        {"messagesBackupAuthCredentialRequest": ["a"]},
        {"messagesBackupAuthCredentialRequest": "@@not base64@@"},
        ["not", "an", "object"],
        "a string",
    ],
    ids=["number", "list", "bad-base64", "array-body", "string-body"],
)
def test_wrong_types_rejected(stub, account, body):
    response = requests.put(stub.url + BACKUP_ID_URL, json=body, auth=account.auth)
    assert_json_4xx(response.status_code, response.content)
    assert response.status_code == 400


def test_non_json_content_type_rejected(stub, account):
    response = requests.put(stub.url + BACKUP_ID_URL, data=b"hello", auth=account.auth, headers={"Content-Type": "text/plain"})
    assert_json_4xx(response.status_code, response.content)


def test_oversized_body_rejected(stub, account):
    huge = json.dumps({"messagesBackupAuthCredentialRequest": "A" * (2 * 1024 * 1024)}).encode()
    declared = requests.put(stub.url + BACKUP_ID_URL, data=huge, auth=account.auth, headers={"Content-Type": "application/json"})
    assert declared.status_code == 413
    assert_json_4xx(declared.status_code, declared.content)

    def chunks():
        for start in range(0, len(huge), 65536):
            yield huge[start : start + 65536]

    chunked = requests.put(stub.url + BACKUP_ID_URL, data=chunks(), auth=account.auth, headers={"Content-Type": "application/json"})
    assert chunked.status_code == 413


def test_body_limit_is_configurable(tmp_path):
    with StubProcess.start(tmp_path / "data", config={"max_json_body_bytes": 100, "expiry_interval_seconds": 0}) as stub:
        account = AccountClient(stub.url, stub.admin)
        body = {"messagesBackupAuthCredentialRequest": "A" * 200}
        assert requests.put(stub.url + BACKUP_ID_URL, json=body, auth=account.auth).status_code == 413


TRAVERSALS = [
    "/attachments/../stub.sqlite",
    "/attachments/..%2fstub.sqlite",
    "/attachments/%2e%2e/%2e%2e/outside.txt",
    "/attachments/%2E%2E/secrets/cdn-token-secret.bin",
    "/attachments/abc%00def",
    "/attachments//etc/passwd",
    "/attachments/%2fetc%2fpasswd",
    "/backups/%2e%2e/secrets/cdn-token-secret.bin",
    "/backups/x/..%2f..%2f..%2foutside.txt",
    "/backups/x/a%00b",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_cdn_path_traversal_rejected(stub, path):
    outside = stub.data_dir.parent / "outside.txt"
    status, body = raw_request(stub.url, "GET", path)
    assert 400 <= status < 500
    assert b"SQLite" not in body
    assert_json_4xx(status, body)
    assert not outside.exists()


@pytest.mark.parametrize(
    "path",
    ["/upload/attachments/..%2f..%2foutside.txt", "/upload/attachments/%2e%2e", "/upload/attachments/a%00b"],
)
def test_upload_path_traversal_rejected(stub, account, path):
    form = account.attachment_form(10)
    headers = dict(form["headers"], **{"Tus-Resumable": "1.0.0", "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"})
    status, body = raw_request(stub.url, "PATCH", path, b"0123456789", headers)
    assert_json_4xx(status, body)
    head_status, _ = raw_request(stub.url, "HEAD", path, None, headers)
    assert 400 <= head_status < 500
    assert not (stub.data_dir.parent / "outside.txt").exists()


def test_upload_filename_traversal_rejected(stub, account):
    form = account.attachment_form(10)
    evil = base64.b64encode(b"../../outside.txt").decode()
    headers = dict(form["headers"], **{"Tus-Resumable": "1.0.0", "Upload-Length": "10", "Upload-Metadata": f"filename {evil}"})
    status, body = raw_request(stub.url, "POST", "/upload/attachments", None, headers)
    assert_json_4xx(status, body)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/__harness/objects/..%2fstub.sqlite", None),
        ("GET", "/__harness/objects/%2e%2e/%2e%2e/outside.txt", None),
        ("DELETE", "/__harness/objects/..%2fstub.sqlite", None),
        ("DELETE", "/__harness/objects/attachments/a%00b", None),
        ("POST", "/__harness/corrupt", {"path": "../stub.sqlite"}),
        ("POST", "/__harness/corrupt", {"path": "/etc/passwd"}),
        ("POST", "/__harness/corrupt", {"path": "attachments/a\u0000b"}),
        ("GET", "/__harness/objects?prefix=..%2F..", None),
    ],
)
def test_admin_object_paths_checked(stub, method, path, body):
    secret = stub.data_dir / "secrets" / "cdn-token-secret.bin"
    before = hashlib.sha256(secret.read_bytes()).hexdigest()
    payload = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"} if body is not None else {}
    status, reply = raw_request(stub.admin_url, method, path, payload, headers)
    assert_json_4xx(status, reply)
    assert b"SQLite format" not in reply
    assert (stub.data_dir / "stub.sqlite").exists()
    assert hashlib.sha256(secret.read_bytes()).hexdigest() == before


def test_tus_bad_numbers_rejected(stub, account):
    form = account.attachment_form(100)
    location = str(form["signedUploadLocation"])
    path = urlsplit(location).path
    headers = dict(form["headers"], **{"Tus-Resumable": "1.0.0", "Upload-Length": "-5"})
    status, body = raw_request(stub.url, "POST", path, None, headers)
    assert_json_4xx(status, body)
    headers = dict(form["headers"], **{"Tus-Resumable": "1.0.0", "Upload-Defer-Length": "2"})
    status, body = raw_request(stub.url, "POST", path, None, headers)
    assert_json_4xx(status, body)


def test_unknown_routes_answer_json(stub):
    status, body = raw_request(stub.url, "GET", "/no/such/route")
    assert status == 404
    assert_json_4xx(status, body)
    status, body = raw_request(stub.url, "DELETE", "/v1/subscription/configuration")
    assert status == 405
    assert_json_4xx(status, body)


def test_no_server_errors_recorded(stub, account):
    requests.put(stub.url + BACKUP_ID_URL, data=b"{", auth=account.auth, headers={"Content-Type": "application/json"})
    for path in TRAVERSALS:
        raw_request(stub.url, "GET", path)
    statuses = [record["status"] for record in stub.admin.recordings()]
    assert statuses
    assert all(status is not None and status < 500 for status in statuses)


@pytest.mark.oracle
@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"objectLength": "10"}, 400),
        ({"objectLength": -1}, 422),
        ({"mediaId": "AAAA"}, 422),
        ({"mediaId": "not/url+safe========"}, 422),
        ({"hmacKey": base64.b64encode(b"short").decode()}, 422),
        ({"encryptionKey": "@@@@"}, 400),
        ({"sourceAttachment": {"cdn": 3, "key": "x" * 65}}, 422),
        ({"sourceAttachment": "nope"}, 400),
        ({"objectLength": None}, 400),
    ],
    ids=["length-string", "length-negative", "media-id-short", "media-id-alphabet", "hmac-short",
         "aes-not-base64", "key-too-long", "source-not-object", "length-null"],
)
def test_copy_body_validation(stub, bridge, change, status):
    client = BackupClient(stub.url, stub.admin, bridge, backup_level=201).setup()
    body = {
        "sourceAttachment": {"cdn": 3, "key": "AAAAAAAAAAAAAAAAAAAA"},
        "objectLength": 10,
        "mediaId": base64.urlsafe_b64encode(os.urandom(15)).decode(),
        "hmacKey": base64.b64encode(os.urandom(32)).decode(),
        "encryptionKey": base64.b64encode(os.urandom(32)).decode(),
    }
    body.update(change)
    response = client.call("PUT", "/v1/archives/media", TYPE_MEDIA, json=body)
    assert response.status_code == status, response.text
    assert response.json()["code"] == status


@pytest.mark.oracle
def test_batch_and_delete_sizes(stub, bridge):
    client = BackupClient(stub.url, stub.admin, bridge, backup_level=201).setup()
    assert client.call("PUT", "/v1/archives/media/batch", TYPE_MEDIA, json={"items": []}).status_code == 422
    item = {"cdn": 3, "mediaId": base64.urlsafe_b64encode(os.urandom(15)).decode()}
    too_many = {"mediaToDelete": [item] * 1001}
    assert client.call("POST", "/v1/archives/media/delete", TYPE_MEDIA, json=too_many).status_code == 422
    other_cdn = {"mediaToDelete": [dict(item, cdn=2)]}
    assert client.call("POST", "/v1/archives/media/delete", TYPE_MEDIA, json=other_cdn).status_code == 400


@pytest.mark.oracle
def test_backup_read_traversal_with_valid_token(stub, bridge):
    client = BackupClient(stub.url, stub.admin, bridge).setup()
    assert tus_upload(stub.url, client.upload_form(), b"archive").status_code == 204
    backup_dir = client.backup_info()["backupDir"]
    headers = client.read_headers()
    for path in (f"/backups/{backup_dir}/..%2f..%2fstub.sqlite", f"/backups/{backup_dir}/%2e%2e/%2e%2e/stub.sqlite"):
        status, body = raw_request(stub.url, "GET", path, None, headers)
        assert_json_4xx(status, body)
    assert Path(stub.data_dir / "stub.sqlite").exists()
