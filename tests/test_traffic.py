"""Traffic rules: identifiers on the archive plane, backup ids on the account plane, credentials."""

import base64
import os
import random
import urllib.parse

import pytest

from harness.traffic import (
    AccountIdentity,
    RecordedRequest,
    base64_fragments,
    check_account_plane,
    check_archive_plane,
    check_credential_prefetch,
    check_fresh_presentations,
    check_mixed_auth,
    check_unlinkability,
)

ACI = "5f3c2a7e-0c1d-4b8e-9a51-2f6d3e4b7c10"
IDENTITY = AccountIdentity(aci=ACI, e164="+15550100001", device_id=1, password="s3cret-password-1")
BACKUP_ID = bytes.fromhex("8a624fbc45379043f39f1391cddc5fe8")
MEDIA_BACKUP_ID = bytes.fromhex("00112233445566778899aabbccddeeff")
BACKUP_IDS = {"messages backup id": BACKUP_ID, "media backup id": MEDIA_BACKUP_ID}
DAY = 86_400
NOW = 1_750_000_000


def request(number=1, plane="archive", method="GET", path="/v1/archives", headers=(), body=b"", query="", time=NOW, status=200):
    return RecordedRequest(
        id=number, time=time, plane=plane, method=method, path=path, query=query,
        headers=tuple(headers), body=body, status=status,
    )


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def zk_headers():
    return [("X-Signal-ZK-Auth", base64.b64encode(os.urandom(100)).decode()),
            ("X-Signal-ZK-Auth-Signature", base64.b64encode(os.urandom(64)).decode())]


@pytest.mark.parametrize("seed", range(20))
def test_base64_fragment_found_at_any_offset(seed):
    rng = random.Random(seed)
    data = rng.randbytes(16)
    prefix = rng.randbytes(rng.randrange(0, 7))
    suffix = rng.randbytes(rng.randrange(0, 7))
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        encoded = encode(prefix + data + suffix)
        assert any(fragment in encoded for fragment in base64_fragments(data))


def test_record_parsed_from_stub_json():
    record = {
        "id": 7, "time": 1.5, "plane": "cdn", "method": "PATCH", "path": "/upload/x",
        "query": "a=1", "headers": [["Tus-Resumable", "1.0.0"]], "status": 204, "marker": "m",
    }
    parsed = RecordedRequest.from_record(record, b"body")
    assert parsed.header("tus-resumable") == "1.0.0"
    assert parsed.location() == "request #7 PATCH /upload/x"
    assert parsed.body == b"body"


def test_clean_archive_request_passes():
    assert check_archive_plane([request(headers=zk_headers())], IDENTITY) == []


def test_account_auth_on_archive_route_reported():
    auth = [("Authorization", basic(f"{ACI}.1", IDENTITY.password))]
    findings = check_archive_plane([request(3, headers=auth + zk_headers())], IDENTITY)
    assert [f.rule for f in findings] == ["unlinkability.account-auth", "unlinkability.identifier"]
    assert findings[0].message.startswith("request #3 GET /v1/archives: ")


def test_jwt_auth_on_cdn_allowed():
    token = base64.b64encode(b"backup-dir:" + os.urandom(40)).decode()
    assert check_archive_plane([request(plane="cdn", headers=[("Authorization", "Basic " + token)])], IDENTITY) == []


@pytest.mark.parametrize(
    "where",
    [
        ("query", f"aci={ACI}"),
        ("query", "aci=" + ACI.replace("-", "").upper()),
        ("header", ("X-Extra", base64.b64encode(bytes.fromhex(ACI.replace("-", ""))).decode())),
        ("body", b'{"number": "+15550100001"}'),
        ("body", b'{"number": "' + urllib.parse.quote("+15550100001").encode() + b'"}'),
        ("body", "+15550100001".encode("utf-16-le")),
        ("header", ("X-Login", f"{ACI}.1")),
        ("body", b"password=s3cret-password-1"),
    ],
)
def test_identifier_on_archive_plane_reported(where):
    kind, value = where
    if kind == "query":
        fields = {"query": value}
    elif kind == "header":
        fields = {"headers": [value]}
    else:
        fields = {"body": value}
    findings = check_archive_plane([request(plane="cdn", **fields)], IDENTITY)
    assert [f.rule for f in findings] == ["unlinkability.identifier"]


def test_identifier_on_account_plane_allowed():
    auth = [("Authorization", basic(f"{ACI}.1", IDENTITY.password))]
    assert check_archive_plane([request(plane="account", headers=auth)], IDENTITY) == []


def test_mixed_auth_reported():
    auth = [("Authorization", basic(f"{ACI}.1", IDENTITY.password))]
    findings = check_mixed_auth([request(plane="account", headers=auth + zk_headers())])
    assert [f.rule for f in findings] == ["unlinkability.mixed-auth"]


@pytest.mark.parametrize(
    "encode",
    [
        lambda data: data.hex().encode(),
        lambda data: base64.b64encode(b"x" + data),
        lambda data: base64.urlsafe_b64encode(b"xy" + data).rstrip(b"="),
        lambda data: b"raw:" + data,
    ],
)
def test_backup_id_on_account_plane_reported(encode):
    findings = check_account_plane([request(plane="account", method="PUT", path="/v1/archives/backupid", body=encode(BACKUP_ID))], BACKUP_IDS)
    assert [f.rule for f in findings] == ["unlinkability.backup-id"]
    assert "messages backup id" in findings[0].message


def test_backup_id_on_archive_plane_allowed():
    assert check_account_plane([request(body=BACKUP_ID.hex().encode())], BACKUP_IDS) == []


def test_blinded_request_passes():
    body = b'{"messagesBackupAuthCredentialRequest": "' + base64.b64encode(os.urandom(80)) + b'"}'
    assert check_account_plane([request(plane="account", body=body)], BACKUP_IDS) == []


def auth_fetch(number, time, days=7, status=200):
    start = time // DAY * DAY
    query = f"redemptionStartSeconds={start}&redemptionEndSeconds={start + days * DAY}"
    return request(number, plane="account", path="/v1/archives/auth", query=query, time=time, status=status)


def test_weekly_fetch_passes():
    requests = [auth_fetch(1, NOW), request(2, time=NOW + 10), auth_fetch(3, NOW + 8 * DAY)]
    assert check_credential_prefetch(requests) == []


def test_short_window_reported():
    findings = check_credential_prefetch([auth_fetch(1, NOW, days=1)])
    assert [f.rule for f in findings] == ["unlinkability.credential-window"]
    assert "1 days" in findings[0].message


def test_refetch_same_day_reported():
    findings = check_credential_prefetch([auth_fetch(1, NOW), request(2), auth_fetch(3, NOW + 60)])
    assert [f.rule for f in findings] == ["unlinkability.credential-refetch"]
    assert "#1" in findings[0].message


def test_refetch_after_failed_fetch_allowed():
    assert check_credential_prefetch([auth_fetch(1, NOW, status=500), auth_fetch(2, NOW + 60)]) == []


def test_unlinkability_combines_rules():
    auth = [("Authorization", basic(f"{ACI}.1", IDENTITY.password))]
    requests = [
        request(1, plane="account", path="/v1/archives/backupid", method="PUT", headers=auth),
        request(2, headers=zk_headers()),
        request(3, plane="cdn", path="/backups/dir/messageBackup", headers=[("Authorization", "Basic abc")]),
    ]
    assert check_unlinkability(requests, IDENTITY, BACKUP_IDS) == []


def test_account_basic_auth_on_cdn_reported():
    auth = [("Authorization", basic(ACI, IDENTITY.password))]
    findings = check_archive_plane([request(4, plane="cdn", path="/upload/backups", headers=auth)], IDENTITY)
    assert [f.rule for f in findings] == ["unlinkability.account-auth", "unlinkability.identifier"]
    assert "Basic auth" in findings[0].message


def test_fresh_presentations_pass():
    assert check_fresh_presentations([request(1, headers=zk_headers()), request(2, headers=zk_headers())]) == []


def test_reused_presentation_reported():
    headers = zk_headers()
    findings = check_fresh_presentations([request(1, headers=headers), request(2, headers=headers)])
    assert [f.rule for f in findings] == ["unlinkability.reused-presentation"]
    assert "request #1" in findings[0].message
