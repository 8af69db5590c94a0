"""Injected faults, each seen by a real HTTP client of the running stub."""

from __future__ import annotations

import http.client
import os
import time
from urllib.parse import urlsplit

import pytest
import requests

from harness.errors import StubServerError
from stub_support import AccountClient, relocate, stub, stub_process  # noqa: F401 (fixtures)

CONFIG_PATH = "/v1/subscription/configuration"


def upload_attachment(stub, account, data: bytes) -> str:
    """Upload ``data`` to the transit tier in one create-with-upload; return the key."""
    form = account.attachment_form(len(data))
    headers = dict(form["headers"])
    headers.update(
        {"Tus-Resumable": "1.0.0", "Upload-Length": str(len(data)), "Content-Type": "application/offset+octet-stream"}
    )
    created = requests.post(relocate(stub.url, form["signedUploadLocation"]), data=data, headers=headers)
    assert created.status_code == 201, created.text
    return form["key"]


def raw_get(url: str, path: str) -> tuple[int, bytes, bool]:
    """GET with http.client; return (status, bytes received, whether the body was cut short)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        try:
            return response.status, response.read(), False
        except http.client.IncompleteRead as error:
            return response.status, error.partial, True
    finally:
        connection.close()


@pytest.fixture
def account(stub):
    return AccountClient(stub.url, stub.admin)


def test_status_fault_fires_count_times(stub):
    stub.admin.add_fault(CONFIG_PATH, "status", status=503, count=1)
    first = requests.get(stub.url + CONFIG_PATH)
    assert first.status_code == 503
    assert first.json()["code"] == 503
    assert requests.get(stub.url + CONFIG_PATH).status_code == 200
    fault = stub.admin.faults()[0]
    assert fault["matched"] == 2
    assert fault["fired"] == 1
    record = stub.admin.recordings()[0]
    assert record["faults"] == [f"{fault['id']}:status"]
    assert record["outcome"] == "fault_status"


def test_rate_limit_fault_sets_retry_after(stub):
    stub.admin.add_fault(CONFIG_PATH, "rate_limit", retry_after=17)
    response = requests.get(stub.url + CONFIG_PATH)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "17"


def test_delay_fault_delays_response(stub):
    stub.admin.add_fault(CONFIG_PATH, "delay", delay_ms=400)
    started = time.monotonic()
    response = requests.get(stub.url + CONFIG_PATH)
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.4


def test_drop_fault_resets_connection(stub):
    stub.admin.add_fault(CONFIG_PATH, "drop", count=1)
    with pytest.raises(requests.ConnectionError):
        requests.get(stub.url + CONFIG_PATH)
    assert requests.get(stub.url + CONFIG_PATH).status_code == 200
    dropped = stub.admin.recordings()[0]
    assert dropped["status"] is None
    assert dropped["outcome"] == "dropped"


def test_truncate_fault_cuts_body(stub, account):
    data = os.urandom(1000)
    key = upload_attachment(stub, account, data)
    stub.admin.add_fault(f"/attachments/{key}", "truncate", after_bytes=100, count=1)
    status, received, cut = raw_get(stub.url, f"/attachments/{key}")
    assert status == 200
    assert cut
    assert received == data[:100]
    status, received, cut = raw_get(stub.url, f"/attachments/{key}")
    assert not cut
    assert received == data
    truncated = [record for record in stub.admin.recordings() if record["faults"]]
    assert [record["outcome"] for record in truncated] == ["truncated"]


def test_truncate_fault_defaults_to_half(stub, account):
    data = os.urandom(1000)
    key = upload_attachment(stub, account, data)
    stub.admin.add_fault(f"/attachments/{key}", "truncate", count=1)
    _, received, cut = raw_get(stub.url, f"/attachments/{key}")
    assert cut
    assert received == data[:500]


def test_cut_upload_then_resume(stub, account):
    data = os.urandom(1000)
    form = account.attachment_form(len(data))
    headers = dict(form["headers"], **{"Tus-Resumable": "1.0.0"})
    created = requests.post(
        relocate(stub.url, form["signedUploadLocation"]), headers={**headers, "Upload-Defer-Length": "1"}
    )
    location = relocate(stub.url, created.headers["Location"])
    stub.admin.add_fault("/upload/attachments/*", "cut_upload", method="PATCH", after_bytes=400, count=1)
    patch_headers = {**headers, "Content-Type": "application/offset+octet-stream", "Upload-Length": "1000"}
    with pytest.raises(requests.ConnectionError):
        requests.patch(location, data=data, headers={**patch_headers, "Upload-Offset": "0"})

    head = requests.head(location, headers=headers)
    assert head.headers["Upload-Offset"] == "400"
    resumed = requests.patch(location, data=data[400:], headers={**patch_headers, "Upload-Offset": "400"})
    assert resumed.status_code == 204
    assert requests.get(f"{stub.url}/attachments/{form['key']}").content == data
    cut = [record for record in stub.admin.recordings() if record["outcome"] == "upload_cut"]
    assert len(cut) == 1


def test_corrupt_object_fault_flips_one_bit(stub, account):
    data = os.urandom(256)
    key = upload_attachment(stub, account, data)
    stub.admin.add_fault(f"/attachments/{key}", "corrupt_object", offset=10, bit=3, count=1)
    served = requests.get(f"{stub.url}/attachments/{key}").content
    assert served != data
    assert served[10] == data[10] ^ 0b1000
    assert served[:10] + served[11:] == data[:10] + data[11:]
    assert stub.admin.object_bytes(f"attachments/{key}") == served


def test_corrupt_object_fault_after_upload(stub, account):
    stub.admin.add_fault("/upload/attachments", "corrupt_object", method="POST", offset=0, bit=0, count=1)
    data = bytes(64)
    key = upload_attachment(stub, account, data)
    stored = stub.admin.object_bytes(f"attachments/{key}")
    assert stored[0] == 1
    assert stored[1:] == data[1:]


def test_delete_object_fault_removes_object(stub, account):
    key = upload_attachment(stub, account, os.urandom(64))
    stub.admin.add_fault(f"/attachments/{key}", "delete_object", count=1)
    assert requests.get(f"{stub.url}/attachments/{key}").status_code == 404
    assert stub.admin.objects("attachments") == []


def test_skip_and_method_filters(stub):
    stub.admin.add_fault(CONFIG_PATH, "status", status=500, method="GET", skip=2, count=1)
    stub.admin.add_fault(CONFIG_PATH, "status", status=500, method="POST")
    statuses = [requests.get(stub.url + CONFIG_PATH).status_code for _ in range(4)]
    assert statuses == [200, 200, 500, 200]


def test_seeded_probability_repeats(stub):
    def pattern() -> list[int]:
        stub.admin.clear_faults()
        stub.admin.add_fault(CONFIG_PATH, "status", status=502, probability=0.5, seed=7)
        return [requests.get(stub.url + CONFIG_PATH).status_code for _ in range(16)]

    first = pattern()
    assert first == pattern()
    assert 200 in first
    assert 502 in first


def test_fault_admin_routes(stub):
    fault = stub.admin.add_fault("/v1/*", "drop")
    assert [item["id"] for item in stub.admin.faults()] == [fault["id"]]
    stub.admin.remove_fault(fault["id"])
    assert stub.admin.faults() == []
    with pytest.raises(StubServerError, match="422"):
        stub.admin.add_fault("/v1/*", "explode")
    with pytest.raises(StubServerError, match="404"):
        stub.admin.remove_fault("fault-999")
