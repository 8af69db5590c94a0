"""The stub's admin API through StubAdmin: recordings, markers, clock, objects, reset."""

from __future__ import annotations

import hashlib
import os

import pytest
import requests

from harness.errors import StubServerError, UsageError
from harness.stub_process import StubProcess
from server_stub.config import StubConfig
from stub_support import AccountClient, relocate, stub, stub_process  # noqa: F401 (fixtures)

DAY = 86400
RECORD_FIELDS = {
    "id", "time", "wall_time", "marker", "plane", "method", "path", "query", "headers", "client",
    "http_version", "request_body", "status", "response_headers", "response_body", "duration_ms",
    "faults", "outcome",
}


def upload(stub, account, data: bytes) -> str:
    form = account.attachment_form(len(data))
    headers = dict(form["headers"], **{"Tus-Resumable": "1.0.0"})
    created = requests.post(relocate(stub.url, form["signedUploadLocation"]), headers=dict(headers, **{"Upload-Defer-Length": "1"}))
    patched = requests.patch(
        relocate(stub.url, created.headers["Location"]),
        data=data,
        headers=dict(headers, **{"Upload-Offset": "0", "Upload-Length": str(len(data)), "Content-Type": "application/offset+octet-stream"}),
    )
    assert patched.status_code == 204
    return form["key"]


def test_recording_record_format(stub):
    response = requests.get(f"{stub.url}/v1/subscription/configuration?x=1", headers={"X-Canary": "canary-123"})
    [record] = stub.admin.recordings()
    assert set(record) == RECORD_FIELDS
    assert record["method"] == "GET"
    assert record["path"] == "/v1/subscription/configuration"
    assert record["query"] == "x=1"
    assert ["x-canary", "canary-123"] in record["headers"]
    assert record["status"] == 200
    assert record["plane"] == "other"
    assert record["client"][0] == "127.0.0.1"
    assert record["response_body"]["sha256"] == hashlib.sha256(response.content).hexdigest()
    assert stub.admin.response_body(record["id"]) == response.content
    assert record["duration_ms"] >= 0
    assert stub.admin.recording(record["id"]) == record


def test_request_bodies_kept_in_full(stub):
    account = AccountClient(stub.url, stub.admin)
    data = os.urandom(300_000) + b"canary-recovery-key"
    upload(stub, account, data)
    [patch] = [record for record in stub.admin.recordings() if record["method"] == "PATCH"]
    assert patch["plane"] == "cdn"
    assert patch["request_body"]["size"] == len(data)
    assert stub.admin.request_body(patch["id"]) == data
    assert stub.admin.body(patch["request_body"]["sha256"]) == data
    form = [record for record in stub.admin.recordings() if record["path"] == "/v4/attachments/form/upload"][0]
    assert form["plane"] == "account"


def test_markers_filter_recordings(stub):
    stub.admin.set_marker("test_one")
    requests.get(f"{stub.url}/v1/subscription/configuration")
    last = stub.admin.set_marker("test_two")
    requests.get(f"{stub.url}/v1/subscription/configuration")
    requests.get(f"{stub.url}/openapi.json")
    assert stub.admin.marker() == "test_two"
    assert len(stub.admin.recordings(marker="test_one")) == 1
    assert len(stub.admin.recordings(marker="test_two")) == 2
    assert [record["marker"] for record in stub.admin.recordings(since_id=last)] == ["test_two", "test_two"]
    assert len(stub.admin.recordings(plane="other", marker="test_two")) == 2
    stub.admin.clear_recordings()
    assert stub.admin.recordings() == []
    assert stub.admin.marker() is None


def test_clock_set_and_advance(stub):
    state = stub.admin.set_clock(now=2_000_000_000, frozen=True)
    assert state["now"] == 2_000_000_000
    assert stub.admin.now() == 2_000_000_000
    assert stub.admin.advance_clock(DAY)["now"] == 2_000_000_000 + DAY
    moving = stub.admin.set_clock(offset_seconds=-DAY)
    assert moving["frozen"] is False
    with pytest.raises(StubServerError, match="400"):
        stub.admin.set_clock()


def test_objects_routes(stub):
    account = AccountClient(stub.url, stub.admin)
    key = upload(stub, account, b"hello object")
    path = f"attachments/{key}"
    [listed] = stub.admin.objects("attachments")
    assert listed["path"] == path
    assert listed["size"] == 12
    assert stub.admin.object_bytes(path) == b"hello object"
    assert stub.admin.object_exists(path)
    flipped = stub.admin.corrupt_object(path, offset=0, bit=1)
    assert flipped["offset"] == 0
    assert stub.admin.object_bytes(path)[:1] == bytes([ord("h") ^ 2])
    stub.admin.delete_object(path)
    assert not stub.admin.object_exists(path)
    with pytest.raises(StubServerError, match="404"):
        stub.admin.delete_object(path)


def test_download_object_streams_to_file(stub, tmp_path):
    account = AccountClient(stub.url, stub.admin)
    data = os.urandom(2_000_000)
    key = upload(stub, account, data)
    target = stub.admin.download_object(f"attachments/{key}", tmp_path / "copy.bin")
    assert target.read_bytes() == data


def test_accounts_and_voucher(stub):
    account = AccountClient(stub.url, stub.admin)
    stub.admin.set_voucher(account.aci, 201, 2_000_000_000)
    [listed] = stub.admin.accounts()
    assert listed["aci"] == account.aci
    assert listed["devices"] == [1]
    assert listed["voucher"] == {"level": 201, "expiration": 2_000_000_000}
    with pytest.raises(StubServerError, match="400"):
        stub.admin.register_account("not-a-uuid", "pw")
    with pytest.raises(StubServerError, match="404"):
        stub.admin.set_voucher("00000000-0000-0000-0000-000000000000", 201, 1)


def test_reset_clears_state(stub):
    account = AccountClient(stub.url, stub.admin)
    upload(stub, account, b"data")
    stub.admin.add_fault("/x", "drop")
    stub.admin.set_marker("m")
    stub.admin.advance_clock(DAY)
    stub.admin.reset(keep_accounts=True)
    assert stub.admin.objects() == []
    assert stub.admin.faults() == []
    assert stub.admin.recordings() == []
    assert stub.admin.clock()["offset_seconds"] == 0
    assert len(stub.admin.accounts()) == 1
    stub.admin.reset()
    assert stub.admin.accounts() == []


@pytest.mark.oracle
def test_state_survives_restart(tmp_path):
    data_dir = tmp_path / "stub"
    with StubProcess.start(data_dir, config={"expiry_interval_seconds": 0}) as stub:
        params = stub.admin.zk_public_params()
        stub.admin.set_clock(now=2_000_000_000, frozen=True)
        stub.admin.set_marker("before-restart")
        account = AccountClient(stub.url, stub.admin)
        key = upload(stub, account, b"persistent")
    with StubProcess.start(data_dir, config={"expiry_interval_seconds": 0}) as stub:
        assert stub.admin.zk_public_params() == params
        assert stub.admin.now() == 2_000_000_000
        assert stub.admin.marker() == "before-restart"
        assert stub.admin.object_bytes(f"attachments/{key}") == b"persistent"
        assert len(stub.admin.recordings()) >= 3
        assert stub.admin.accounts()[0]["aci"] == account.aci


def test_backups_lookup_needs_valid_id(stub):
    assert stub.admin.backups() == []
    assert stub.admin.backup(os.urandom(16)) is None
    with pytest.raises(StubServerError, match="400"):
        stub.admin._json("GET", "/backups", params={"backup_id": "zz"})


def test_admin_not_on_app_port(stub):
    assert requests.get(f"{stub.url}/__harness/health").status_code == 404
    assert requests.get(f"{stub.admin_url}/__harness/health").json()["ok"] is True


def test_admin_refuses_non_loopback_host(tmp_path):
    with pytest.raises(UsageError, match="loopback"):
        StubConfig(data_dir=tmp_path, admin_host="0.0.0.0")


def test_unreachable_admin_is_infrastructure_error():
    from harness.stub_client import StubAdmin

    with pytest.raises(StubServerError, match="did not respond"):
        StubAdmin("http://127.0.0.1:9", timeout=2).health()
