"""Account and zero-knowledge auth of the stub, driven with libsignal's client API.

Each rejection is checked against the status upstream gives. The cases: a presentation for
another backup id, a redemption day outside the window, a bad signature, and account auth on
a zero-knowledge route. Levels and types are checked per route.
"""

from __future__ import annotations

import base64
import os

import pytest
import requests

from harness.stub_process import StubProcess
from libsignal_bridge.zk import TYPE_MEDIA, TYPE_MESSAGES
from stub_support import AccountClient, BackupClient, b64, bridge, stub, stub_process  # noqa: F401 (fixtures)

pytestmark = pytest.mark.oracle
DAY = 86400


@pytest.fixture
def client(stub, bridge):
    return BackupClient(stub.url, stub.admin, bridge, backup_level=201).setup()


def get_info(stub, headers: dict[str, str], **kwargs: object) -> requests.Response:
    return requests.get(f"{stub.url}/v1/archives", headers=headers, **kwargs)


def test_credentials_from_libsignal_accepted(stub, client):
    response = get_info(stub, client.zk_headers())
    assert response.status_code == 200
    assert set(response.json()) == {"cdn", "backupDir", "mediaDir", "backupName", "usedSpace"}


def test_credential_response_shape(stub, client):
    response = client.fetch_credentials(days=7)
    credentials = response.json()["credentials"]
    assert len(credentials["messages"]) == 8
    assert len(credentials["media"]) == 8
    days = [entry["redemptionTime"] for entry in credentials["messages"]]
    assert days == sorted(days)
    assert days[1] - days[0] == DAY


def test_presentation_of_other_backup_id_rejected(stub, bridge, client):
    other = BackupClient(stub.url, stub.admin, bridge).setup()
    # The other client's presentation signed with this client's key: the stored key differs.
    headers = other.zk_headers(sign_with=client.types[TYPE_MESSAGES].private_key)
    assert get_info(stub, headers).status_code == 401
    # A backup id that never bound a key.
    unbound = BackupClient(stub.url, stub.admin, bridge)
    unbound.commit_backup_id()
    unbound.fetch_credentials()
    assert get_info(stub, unbound.zk_headers()).status_code == 401


def test_day_outside_window_rejected(stub, client):
    today = client.today()
    assert get_info(stub, client.zk_headers(day=today + DAY)).status_code == 200
    assert get_info(stub, client.zk_headers(day=today + 2 * DAY)).status_code == 401
    stub.admin.advance_clock(3 * DAY)
    assert get_info(stub, client.zk_headers(day=today)).status_code == 401


def test_bad_signature_rejected(stub, client):
    headers = client.zk_headers(sign_with=os.urandom(32))
    assert get_info(stub, headers).status_code == 401
    garbage = dict(client.zk_headers(), **{"X-Signal-ZK-Auth-Signature": b64(os.urandom(64))})
    assert get_info(stub, garbage).status_code == 401


def test_account_auth_on_zk_route_rejected(stub, client):
    response = get_info(stub, client.zk_headers(), auth=client.basic_auth)
    assert response.status_code == 400
    assert response.json()["message"] == "must not use authenticated connection for anonymous operations"


@pytest.mark.parametrize(
    ("auth", "signature", "status"),
    [
        (None, None, 400),
        ("not base64!!", "AAAA", 400),
        (b64(os.urandom(300)), b64(os.urandom(64)), 400),
    ],
    ids=["missing", "not-base64", "garbage-presentation"],
)
def test_garbled_zk_headers_rejected(stub, auth, signature, status):
    headers = {}
    if auth is not None:
        headers = {"X-Signal-ZK-Auth": auth, "X-Signal-ZK-Auth-Signature": signature}
    response = get_info(stub, headers)
    assert response.status_code == status
    assert response.json()["code"] == status


def test_missing_signature_header_rejected(stub, client):
    headers = client.zk_headers()
    del headers["X-Signal-ZK-Auth-Signature"]
    assert get_info(stub, headers).status_code == 400


def test_public_key_never_rebound(stub, client):
    assert client.set_keys(TYPE_MESSAGES).status_code == 204
    replacement = os.urandom(32)
    headers = client.zk_headers(sign_with=replacement)
    body = {"backupIdPublicKey": b64(client.zk.public_key(replacement))}
    assert requests.put(f"{stub.url}/v1/archives/keys", json=body, headers=headers).status_code == 401
    assert get_info(stub, client.zk_headers()).status_code == 200


@pytest.mark.parametrize(
    ("body", "status"),
    [({}, 422), ({"backupIdPublicKey": b64(os.urandom(32))}, 400), ({"backupIdPublicKey": "%%%"}, 400)],
    ids=["missing", "wrong-length", "not-base64"],
)
def test_set_keys_bad_body(stub, client, body, status):
    response = requests.put(f"{stub.url}/v1/archives/keys", json=body, headers=client.zk_headers())
    assert response.status_code == status


def test_level_and_type_checks(stub, bridge):
    free = BackupClient(stub.url, stub.admin, bridge, backup_level=200).setup()
    assert free.call("GET", "/v1/archives/media/upload/form", TYPE_MEDIA).status_code == 403
    assert free.call("GET", "/v1/archives").status_code == 200
    paid = BackupClient(stub.url, stub.admin, bridge, backup_level=201).setup()
    assert paid.call("GET", "/v1/archives/media/upload/form", TYPE_MESSAGES).status_code == 401
    assert paid.call("GET", "/v1/archives/upload/form", TYPE_MEDIA).status_code == 401
    assert paid.call("POST", "/v1/archives/media/delete", TYPE_MESSAGES, json={"mediaToDelete": [{"cdn": 3, "mediaId": "A" * 20}]}).status_code == 401


def test_linked_device_cannot_set_backup_id(stub, bridge):
    client = BackupClient(stub.url, stub.admin, bridge)
    stub.admin.register_account(str(client.aci), "linked-pw", device_id=2)
    body = {"messagesBackupAuthCredentialRequest": b64(client.types[TYPE_MESSAGES].request)}
    response = requests.put(f"{stub.url}/v1/archives/backupid", json=body, auth=(f"{client.aci}.2", "linked-pw"))
    assert response.status_code == 403
    primary = requests.put(f"{stub.url}/v1/archives/backupid", json=body, auth=(str(client.aci), client.password))
    assert primary.status_code == 204


def test_account_auth_failures(stub, bridge):
    client = BackupClient(stub.url, stub.admin, bridge)
    body = {"messagesBackupAuthCredentialRequest": b64(client.types[TYPE_MESSAGES].request)}
    url = f"{stub.url}/v1/archives/backupid"
    assert requests.put(url, json=body).status_code == 401
    assert requests.put(url, json=body, auth=(f"{client.aci}.1", "wrong")).status_code == 401
    assert requests.put(url, json=body, auth=("not-a-uuid.1", "x")).status_code == 401


def test_backup_id_body_rules(stub, bridge):
    client = BackupClient(stub.url, stub.admin, bridge)
    url = f"{stub.url}/v1/archives/backupid"
    assert requests.put(url, json={}, auth=client.basic_auth).status_code == 400
    garbage = {"messagesBackupAuthCredentialRequest": b64(os.urandom(50))}
    assert requests.put(url, json=garbage, auth=client.basic_auth).status_code == 400


def test_credentials_need_both_requests(stub, bridge):
    client = BackupClient(stub.url, stub.admin, bridge)
    body = {"messagesBackupAuthCredentialRequest": b64(client.types[TYPE_MESSAGES].request)}
    assert requests.put(f"{stub.url}/v1/archives/backupid", json=body, auth=client.basic_auth).status_code == 204
    assert client.fetch_credentials().status_code == 404


@pytest.mark.parametrize(
    ("start_days", "end_days", "offset"),
    [(-2, 0, 0), (0, 9, 0), (2, 1, 0), (0, 1, 5), (0, 8, 0)],
    ids=["before-yesterday", "too-far-ahead", "reversed", "not-aligned", "span-too-long"],
)
def test_credential_range_rules(stub, bridge, start_days, end_days, offset):
    client = BackupClient(stub.url, stub.admin, bridge)
    assert client.commit_backup_id().status_code == 204
    today = client.today()
    response = requests.get(
        f"{stub.url}/v1/archives/auth",
        params={"redemptionStartSeconds": today + start_days * DAY + offset, "redemptionEndSeconds": today + end_days * DAY},
        auth=client.basic_auth,
    )
    assert response.status_code == 400


def test_backup_id_rate_limit(bridge):
    limits = {"setBackupId": {"bucket_size": 1, "regen_seconds": 3600}}
    with StubProcess.start(config={"rate_limits": limits, "expiry_interval_seconds": 0}) as stub:
        client = BackupClient(stub.url, stub.admin, bridge)
        assert client.commit_backup_id().status_code == 204
        assert client.commit_backup_id().status_code == 204  # the same values use no permit
        limits_url = f"{stub.url}/v1/archives/backupid/limits"
        assert requests.get(limits_url, auth=client.basic_auth).json() == {"hasPermitsRemaining": False, "retryAfterSeconds": 3600}
        _, fresh = client.zk.create_request_context(os.urandom(32), client.aci.bytes)
        body = {"messagesBackupAuthCredentialRequest": b64(fresh)}
        limited = requests.put(f"{stub.url}/v1/archives/backupid", json=body, auth=client.basic_auth)
        assert limited.status_code == 429
        assert int(limited.headers["Retry-After"]) > 3000
        stub.admin.advance_clock(3601)
        assert requests.get(limits_url, auth=client.basic_auth).json()["hasPermitsRemaining"] is True


def receipt_presentation(stub, bridge, level: int = 201, expiration: int | None = None) -> bytes:
    public_params = base64.b64encode(stub.admin.receipt_public_params()).decode()
    created = bridge.call("receipt_request_create", public_params=public_params)
    expiration = expiration if expiration is not None else (int(stub.admin.now()) // DAY + 30) * DAY
    response = stub.admin.issue_receipt(base64.b64decode(created["request"]), expiration, level)
    credential = bridge.call(
        "receipt_receive", public_params=public_params, context=created["context"], response=b64(response)
    )
    return base64.b64decode(bridge.call("receipt_present", public_params=public_params, credential=credential))


def test_receipt_redemption_grants_paid_level(stub, bridge):
    client = BackupClient(stub.url, stub.admin, bridge, backup_level=200).setup()
    assert client.call("GET", "/v1/archives/media/upload/form", TYPE_MEDIA).status_code == 403
    presentation = receipt_presentation(stub, bridge)
    url = f"{stub.url}/v1/archives/redeem-receipt"
    body = {"receiptCredentialPresentation": b64(presentation)}
    assert requests.post(url, json=body, auth=client.basic_auth).status_code == 204
    assert requests.post(url, json=body, auth=client.basic_auth).status_code == 204  # idempotent
    assert client.fetch_credentials().status_code == 200
    assert client.set_keys(TYPE_MEDIA).status_code == 204
    assert client.call("GET", "/v1/archives/media/upload/form", TYPE_MEDIA).status_code == 200
    other = BackupClient(stub.url, stub.admin, bridge).setup()
    assert requests.post(url, json=body, auth=other.basic_auth).status_code == 400


def test_receipt_redemption_rejections(stub, bridge):
    client = BackupClient(stub.url, stub.admin, bridge)
    url = f"{stub.url}/v1/archives/redeem-receipt"
    valid = {"receiptCredentialPresentation": b64(receipt_presentation(stub, bridge))}
    assert requests.post(url, json=valid, auth=client.basic_auth).status_code == 409
    garbage = {"receiptCredentialPresentation": b64(os.urandom(100))}
    assert requests.post(url, json=garbage, auth=client.basic_auth).status_code == 400
    assert client.commit_backup_id().status_code == 204
    wrong_level = {"receiptCredentialPresentation": b64(receipt_presentation(stub, bridge, level=5))}
    assert requests.post(url, json=wrong_level, auth=client.basic_auth).status_code == 400
    past = (int(stub.admin.now()) // DAY - 2) * DAY
    expired = {"receiptCredentialPresentation": b64(receipt_presentation(stub, bridge, expiration=past))}
    assert requests.post(url, json=expired, auth=client.basic_auth).status_code == 400


def test_attachment_form_needs_account(stub):
    account = AccountClient(stub.url, stub.admin)
    assert requests.get(f"{stub.url}/v4/attachments/form/upload", auth=(account.aci, "wrong")).status_code == 401
