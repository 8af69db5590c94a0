"""The stub's TUS CDN over real HTTP: uploads, resume, reads, ranges, expiry, token checks.

These tests use the transit bucket, whose form needs only account auth, so they run without
libsignal. The message-backup bucket is covered in test_stub_flow.py.
"""

from __future__ import annotations

import base64
import hashlib
import os

import jwt
import pytest
import requests

from stub_support import AccountClient, relocate, stub, stub_process  # noqa: F401 (fixtures)

DAY = 86400


def tus_headers(form: dict[str, object], **extra: str) -> dict[str, str]:
    headers = dict(form["headers"])  # type: ignore[arg-type]
    headers["Tus-Resumable"] = "1.0.0"
    headers.update(extra)
    return headers


def create(stub, form, **extra: str) -> requests.Response:
    headers = tus_headers(form, **extra)
    if "Upload-Length" not in extra:
        headers.setdefault("Upload-Defer-Length", "1")
    return requests.post(relocate(stub.url, str(form["signedUploadLocation"])), headers=headers)


def patch(stub, form, location: str, data: bytes, offset: int, **extra: str) -> requests.Response:
    headers = tus_headers(
        form, **{"Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream", **extra}
    )
    return requests.patch(relocate(stub.url, location), data=data, headers=headers)


@pytest.fixture
def account(stub):
    return AccountClient(stub.url, stub.admin)


def test_tus_deferred_upload_in_two_patches(stub, account):
    form = account.attachment_form(300)
    data = os.urandom(300)
    created = create(stub, form)
    assert created.status_code == 201
    assert created.headers["Upload-Offset"] == "0"
    assert created.headers["Tus-Resumable"] == "1.0.0"
    assert "Upload-Expires" in created.headers
    location = created.headers["Location"]
    assert location.endswith(f"/upload/attachments/{form['key']}")

    first = patch(stub, form, location, data[:100], 0)
    assert first.status_code == 204
    assert first.headers["Upload-Offset"] == "100"
    head = requests.head(relocate(stub.url, location), headers=tus_headers(form))
    assert head.status_code == 200
    assert head.headers["Upload-Offset"] == "100"
    assert head.headers["Upload-Defer-Length"] == "1"

    second = patch(stub, form, location, data[100:], 100, **{"Upload-Length": "300"})
    assert second.status_code == 204
    assert second.headers["Upload-Offset"] == "300"
    assert requests.get(f"{stub.url}/attachments/{form['key']}").content == data
    # A finished upload's state is gone: HEAD no longer finds it.
    assert requests.head(relocate(stub.url, location), headers=tus_headers(form)).status_code == 404


def test_tus_creation_with_upload_and_checksum(stub, account):
    form = account.attachment_form(64)
    data = os.urandom(64)
    checksum = base64.b64encode(hashlib.sha256(data).digest()).decode()
    headers = tus_headers(
        form,
        **{"Upload-Length": "64", "Content-Type": "application/offset+octet-stream", "X-Signal-Checksum-Sha256": checksum},
    )
    created = requests.post(relocate(stub.url, str(form["signedUploadLocation"])), data=data, headers=headers)
    assert created.status_code == 201
    assert created.headers["Upload-Offset"] == "64"
    assert requests.get(f"{stub.url}/attachments/{form['key']}").content == data


def test_tus_checksum_mismatch_rejected(stub, account):
    form = account.attachment_form(64)
    wrong = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    headers = tus_headers(
        form,
        **{"Upload-Length": "64", "Content-Type": "application/offset+octet-stream", "X-Signal-Checksum-Sha256": wrong},
    )
    response = requests.post(relocate(stub.url, str(form["signedUploadLocation"])), data=os.urandom(64), headers=headers)
    assert response.status_code == 415
    assert requests.get(f"{stub.url}/attachments/{form['key']}").status_code == 404


def test_tus_options_lists_extensions(stub):
    response = requests.options(f"{stub.url}/upload/attachments")
    assert response.status_code == 204
    assert response.headers["Tus-Version"] == "1.0.0"
    assert "creation-defer-length" in response.headers["Tus-Extension"]
    assert "creation-with-upload" in response.headers["Tus-Extension"]


@pytest.mark.parametrize(
    ("offset", "extra", "data", "status"),
    [
        (5, {}, b"abc", 409),
        (0, {"Upload-Length": "5"}, b"abcdefgh", 413),
        (0, {"Upload-Length": "999"}, b"abc", 413),
        (0, {"Content-Type": "text/plain"}, b"abc", 415),
    ],
    ids=["offset-mismatch", "body-past-length", "length-past-maxlen", "wrong-content-type"],
)
def test_tus_patch_rejections(stub, account, offset, extra, data, status):
    form = account.attachment_form(100)
    location = create(stub, form).headers["Location"]
    response = patch(stub, form, location, data, offset, **extra)
    assert response.status_code == status
    assert response.json()["code"] == status
    head = requests.head(relocate(stub.url, location), headers=tus_headers(form))
    assert head.headers["Upload-Offset"] == "0"


def test_tus_changed_length_rejected(stub, account):
    form = account.attachment_form(100)
    location = create(stub, form, **{"Upload-Length": "50"}).headers["Location"]
    assert patch(stub, form, location, b"x" * 10, 0, **{"Upload-Length": "60"}).status_code == 400


def test_tus_missing_offset_rejected(stub, account):
    form = account.attachment_form(100)
    location = create(stub, form).headers["Location"]
    headers = tus_headers(form, **{"Content-Type": "application/offset+octet-stream"})
    response = requests.patch(relocate(stub.url, location), data=b"abc", headers=headers)
    assert response.status_code == 400
    assert "Upload-Offset" in response.json()["message"] or "upload-offset" in response.json()["message"]


def test_tus_create_length_rules(stub, account):
    form = account.attachment_form(100)
    assert create(stub, form, **{"Upload-Length": "101"}).status_code == 413
    both = create(stub, form, **{"Upload-Length": "10", "Upload-Defer-Length": "1"})
    assert both.status_code == 400
    headers = tus_headers(form)
    assert requests.post(relocate(stub.url, str(form["signedUploadLocation"])), headers=headers).status_code == 400


def test_tus_version_required(stub, account):
    form = account.attachment_form(100)
    headers = dict(form["headers"])  # type: ignore[arg-type]
    headers["Upload-Defer-Length"] = "1"
    response = requests.post(relocate(stub.url, str(form["signedUploadLocation"])), headers=headers)
    assert response.status_code == 412
    assert response.headers["Tus-Version"] == "1.0.0"


def test_tus_create_conflicts_with_started_upload(stub, account):
    form = account.attachment_form(100)
    location = create(stub, form).headers["Location"]
    assert patch(stub, form, location, b"abc", 0).status_code == 204
    assert create(stub, form).status_code == 409


def test_tus_token_checks(stub, account):
    form = account.attachment_form(100)
    location = str(form["signedUploadLocation"])
    base = {"Tus-Resumable": "1.0.0", "Upload-Defer-Length": "1", "Upload-Metadata": form["headers"]["Upload-Metadata"]}
    missing = requests.post(relocate(stub.url, location), headers=base)
    assert missing.status_code == 401
    basic = requests.post(relocate(stub.url, location), headers={**base, "Authorization": "Basic abc"})
    assert basic.status_code == 400
    forged = jwt.encode({"aud": "attachments", "sub": form["key"], "iat": 1, "maxLen": 100}, b"x" * 32, algorithm="HS256")
    bad = requests.post(relocate(stub.url, location), headers={**base, "Authorization": f"Bearer {forged}"})
    assert bad.status_code == 401
    other = base64.b64encode(b"another-key").decode()
    mismatch = requests.post(
        relocate(stub.url, location),
        headers={**base, "Authorization": form["headers"]["Authorization"], "Upload-Metadata": f"filename {other}"},
    )
    assert mismatch.status_code == 401
    wrong_bucket = requests.post(f"{stub.url}/upload/backups", headers={**base, "Authorization": form["headers"]["Authorization"]})
    assert wrong_bucket.status_code == 401


def test_tus_token_expires_after_seven_days(stub, account):
    form = account.attachment_form(100)
    stub.admin.advance_clock(7 * DAY + 120)
    response = create(stub, form)
    assert response.status_code == 401
    assert "expired" in response.json()["message"]


def test_tus_upload_expires_after_seven_days(stub, account):
    form = account.attachment_form(100)
    location = create(stub, form).headers["Location"]
    assert patch(stub, form, location, b"abc", 0).status_code == 204
    stub.admin.advance_clock(7 * DAY + 60)
    assert stub.admin.run_expiry()["uploads_expired"] == 1
    assert stub.admin.uploads() == []


def test_read_ranges(stub, account):
    form = account.attachment_form(1000)
    data = os.urandom(1000)
    location = create(stub, form, **{"Upload-Length": "1000"}).headers["Location"]
    assert patch(stub, form, location, data, 0).status_code == 204
    url = f"{stub.url}/attachments/{form['key']}"

    whole = requests.get(url)
    assert whole.status_code == 200
    assert whole.headers["Accept-Ranges"] == "bytes"
    middle = requests.get(url, headers={"Range": "bytes=100-199"})
    assert middle.status_code == 206
    assert middle.content == data[100:200]
    assert middle.headers["Content-Range"] == "bytes 100-199/1000"
    open_ended = requests.get(url, headers={"Range": "bytes=900-"})
    assert open_ended.content == data[900:]
    suffix = requests.get(url, headers={"Range": "bytes=-10"})
    assert suffix.content == data[-10:]
    past_end = requests.get(url, headers={"Range": "bytes=5000-"})
    assert past_end.status_code == 416
    assert past_end.headers["Content-Range"] == "bytes */1000"
    head = requests.head(url)
    assert head.status_code == 200
    assert head.headers["Content-Length"] == "1000"


def test_transit_attachment_expires_after_free_tier_window(stub, account):
    form = account.attachment_form(10)
    location = create(stub, form, **{"Upload-Length": "10"}).headers["Location"]
    assert patch(stub, form, location, b"0123456789", 0).status_code == 204
    url = f"{stub.url}/attachments/{form['key']}"
    stub.admin.advance_clock(44 * DAY)
    assert requests.get(url).status_code == 200
    stub.admin.advance_clock(2 * DAY)
    assert requests.get(url).status_code == 404
    assert stub.admin.run_expiry()["transit_deleted"] == 1
    assert stub.admin.objects("attachments") == []


def test_attachment_form_limits(stub, account):
    too_big = requests.get(
        f"{stub.url}/v4/attachments/form/upload", params={"uploadLength": 200 * 1024 * 1024}, auth=account.auth
    )
    assert too_big.status_code == 413
    anonymous = requests.get(f"{stub.url}/v4/attachments/form/upload")
    assert anonymous.status_code == 401
    form = account.attachment_form()
    claims = jwt.decode(str(form["headers"]["Authorization"]).split()[1], options={"verify_signature": False})
    assert claims["aud"] == "attachments"
    assert claims["sub"] == form["key"]
    assert claims["maxLen"] == 100 * 1024 * 1024
    assert len(str(form["key"])) == 20
