"""The reference app's archive client against the real stub server over loopback HTTP.

The stub clock is frozen and the client's clock returns the same value, so credential days
line up on both sides. Requests are checked through the stub's recordings.
"""

from __future__ import annotations

import base64
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from harness import keys
from harness.stub_process import StubProcess
from libsignal_bridge import Bridge
from libsignal_bridge.zk import LEVEL_FREE, LEVEL_PAID, TYPE_MEDIA, TYPE_MESSAGES
from reference_app.archive_client import AccountAuth, ArchiveClient, ArchiveKeys, ClientOptions
from reference_app.archive_credentials import JsonFileCredentialStore, MemoryCredentialStore
from reference_app.errors import (
    ArchiveApiError,
    CorruptMedia,
    CredentialVerificationFailed,
    Forbidden,
    NotFound,
    RateLimited,
    ServerUnreachable,
    Unauthorized,
)
from reference_app.media_copy import (
    CopyMediaRequest,
    encode_media_id,
    media_name,
    strip_media_tier_layer,
    thumbnail_media_name,
)

pytestmark = pytest.mark.oracle

DAY = 86400
# 2026-03-02 10:00 UTC: a fixed device and server time for every test.
START = 20514 * DAY + 10 * 3600


class FixedClock:
    """The device clock of the app, kept equal to the stub's frozen clock."""

    def __init__(self, stub: StubProcess, now: float):
        self._stub = stub
        self.now = now
        self.set(now)

    def __call__(self) -> float:
        return self.now

    def set(self, now: float) -> None:
        self.now = now
        self._stub.admin.set_clock(now=now, frozen=True)

    def advance(self, seconds: float) -> None:
        self.set(self.now + seconds)


@dataclass
class Account:
    aci: str
    password: str
    recovery_key: str
    media_root_key: bytes


@pytest.fixture(scope="module")
def stub_process(tmp_path_factory):
    with StubProcess.start(data_dir=tmp_path_factory.mktemp("stub")) as process:
        yield process


@pytest.fixture(scope="module")
def bridge():
    with Bridge() as running:
        yield running


@pytest.fixture()
def stub(stub_process):
    stub_process.admin.reset()
    return stub_process


@pytest.fixture()
def clock(stub):
    return FixedClock(stub, START)


def _register(stub: StubProcess, level: int = LEVEL_FREE) -> Account:
    account = Account(
        aci=str(uuid.uuid4()),
        password="password-" + uuid.uuid4().hex[:8],
        recovery_key=keys.generate_recovery_key(),
        media_root_key=os.urandom(32),
    )
    stub.admin.register_account(account.aci, account.password, backup_level=level)
    return account


def _client(stub, bridge, clock, account: Account, *, store=None, options=None, recovery_key=None, url=None):
    archive_keys = ArchiveKeys.from_recovery_key(
        recovery_key or account.recovery_key, keys.parse_aci(account.aci), account.media_root_key
    )
    return ArchiveClient(
        url or stub.url,
        AccountAuth(account.aci, 1, account.password),
        archive_keys,
        stub.admin.zk_public_params(),
        clock=clock,
        store=store or MemoryCredentialStore(),
        bridge=bridge,
        options=options,
    )


def _backup_id(account: Account, credential_type: int = TYPE_MESSAGES) -> bytes:
    aci = keys.parse_aci(account.aci)
    if credential_type == TYPE_MEDIA:
        return keys.derive_backup_id(account.media_root_key, aci)
    return keys.derive_backup_id(keys.derive_backup_key(account.recovery_key), aci)


def _routes(stub) -> list[str]:
    return [f"{record['method']} {record['path']}" for record in stub.admin.recordings()]


def _headers(record) -> dict[str, str]:
    return {name: value for name, value in record["headers"]}


def _recorded(stub, method: str, path: str) -> list[dict]:
    return [r for r in stub.admin.recordings() if r["method"] == method and r["path"] == path]


@pytest.fixture()
def free_account(stub):
    return _register(stub, LEVEL_FREE)


@pytest.fixture()
def paid_account(stub):
    return _register(stub, LEVEL_PAID)


@pytest.fixture()
def client(stub, bridge, clock, free_account):
    created = _client(stub, bridge, clock, free_account)
    created.initialize()
    yield created
    created.close()


@pytest.fixture()
def paid_client(stub, bridge, clock, paid_account):
    created = _client(stub, bridge, clock, paid_account)
    created.initialize()
    yield created
    created.close()


# --- setup and credentials ----------------------------------------------------------------


def test_initialize_follows_setup_order(stub, bridge, clock, free_account):
    client = _client(stub, bridge, clock, free_account)

    client.initialize()

    assert _routes(stub) == [
        "PUT /v1/archives/backupid",
        "GET /v1/archives/auth",
        "PUT /v1/archives/keys",
        "PUT /v1/archives/keys",
    ]
    messages_record = stub.admin.backup(_backup_id(free_account, TYPE_MESSAGES))
    media_record = stub.admin.backup(_backup_id(free_account, TYPE_MEDIA))
    assert messages_record["has_public_key"] is True
    assert media_record["has_public_key"] is True
    registered = next(a for a in stub.admin.accounts() if a["aci"] == free_account.aci)
    assert registered["has_messages_request"] is True
    assert registered["has_media_request"] is True


def test_keys_registered_messages_then_media(stub, bridge, clock, free_account):
    client = _client(stub, bridge, clock, free_account)

    client.initialize()

    records = _recorded(stub, "PUT", "/v1/archives/keys")
    bodies = [stub.admin.request_body(record["id"]) for record in records]
    aci = keys.parse_aci(free_account.aci)
    messages_key = keys.derive_backup_id_public_key(keys.derive_backup_key(free_account.recovery_key), aci)
    media_key = keys.derive_backup_id_public_key(free_account.media_root_key, aci)
    assert base64.b64encode(messages_key).decode() in bodies[0].decode()
    assert base64.b64encode(media_key).decode() in bodies[1].decode()


def test_credential_window_is_today_plus_seven(stub, client):
    (record,) = _recorded(stub, "GET", "/v1/archives/auth")

    query = parse_qs(record["query"])

    today = START // DAY * DAY
    assert query["redemptionStartSeconds"] == [str(today)]
    assert query["redemptionEndSeconds"] == [str(today + 7 * DAY)]


def test_credentials_cached_for_the_week(stub, clock, client):
    for _ in range(7):
        clock.advance(DAY)
        client.refresh(paid=False)

    assert len(_recorded(stub, "GET", "/v1/archives/auth")) == 1
    assert len(_recorded(stub, "POST", "/v1/archives")) == 7


def test_credentials_refetched_when_today_missing(stub, clock, client):
    clock.advance(8 * DAY)

    client.refresh(paid=False)

    records = _recorded(stub, "GET", "/v1/archives/auth")
    assert len(records) == 2
    today = (START + 8 * DAY) // DAY * DAY
    assert parse_qs(records[1]["query"])["redemptionStartSeconds"] == [str(today)]


def test_credential_cache_persisted(stub, bridge, clock, free_account, tmp_path: Path):
    store = JsonFileCredentialStore(tmp_path / "credentials.json")
    first = _client(stub, bridge, clock, free_account, store=store)
    first.initialize()
    stub.admin.clear_recordings()

    second = _client(stub, bridge, clock, free_account, store=JsonFileCredentialStore(tmp_path / "credentials.json"))
    second.refresh(paid=False)

    assert _routes(stub) == ["POST /v1/archives"]
    assert (tmp_path / "credentials.json").stat().st_mode & 0o777 == 0o600


def test_cache_of_other_keys_ignored(stub, bridge, clock, free_account, tmp_path: Path):
    store = JsonFileCredentialStore(tmp_path / "credentials.json")
    _client(stub, bridge, clock, free_account, store=store).initialize()
    free_account.recovery_key = keys.generate_recovery_key()
    stub.admin.clear_recordings()

    rotated = _client(stub, bridge, clock, free_account, store=JsonFileCredentialStore(tmp_path / "credentials.json"))
    rotated.initialize()

    assert _routes(stub)[:2] == ["PUT /v1/archives/backupid", "GET /v1/archives/auth"]


def test_wrong_recovery_key_clears_cache(stub, bridge, clock, free_account):
    _client(stub, bridge, clock, free_account).initialize()
    store = MemoryCredentialStore()
    other_key = keys.generate_recovery_key()
    restored = _client(stub, bridge, clock, free_account, store=store, recovery_key=other_key)

    with pytest.raises(CredentialVerificationFailed, match="recovery key"):
        restored.fetch_credentials()

    assert store.state["credentials"] == {"messages": {}, "media": {}}
    assert other_key not in str(store.state)


def test_credentials_before_commit_not_found(stub, bridge, clock, free_account):
    client = _client(stub, bridge, clock, free_account)

    with pytest.raises(NotFound) as raised:
        client.fetch_credentials()

    assert raised.value.status == 404
    assert raised.value.route == "GET /v1/archives/auth"


def test_credential_level_follows_account(client, paid_client):
    assert client.credential_level() == LEVEL_FREE
    assert paid_client.credential_level(TYPE_MEDIA) == LEVEL_PAID


# --- channel separation -------------------------------------------------------------------


def test_channels_kept_apart(stub, client, free_account):
    client.get_backup_info()
    client.upload_backup(b"archive bytes")
    records = stub.admin.recordings()

    for record in records:
        headers = _headers(record)
        if record["plane"] == "account":
            assert headers["authorization"].startswith("Basic ")
            decoded = base64.b64decode(headers["authorization"][6:]).decode()
            assert decoded == f"{free_account.aci}.1:{free_account.password}"
            assert "x-signal-zk-auth" not in headers
        elif record["plane"] == "archive":
            assert "authorization" not in headers
            assert "x-signal-zk-auth" in headers
            assert "x-signal-zk-auth-signature" in headers
        elif record["plane"] == "cdn":
            assert headers["authorization"].startswith("Bearer ")
            assert "x-signal-zk-auth" not in headers
    planes = {record["plane"] for record in records}
    assert planes == {"account", "archive", "cdn"}


def test_presentations_fresh_per_request(stub, client):
    client.get_backup_info()
    client.get_backup_info()

    presentations = [_headers(r)["x-signal-zk-auth"] for r in _recorded(stub, "GET", "/v1/archives")]

    assert len(set(presentations)) == 2


# --- message backup -----------------------------------------------------------------------


def test_upload_then_download_backup(stub, client, free_account, tmp_path: Path):
    data = os.urandom(200_000)

    result = client.upload_backup(data)
    size = client.download_backup(tmp_path / "restored.bin")

    assert size == len(data)
    assert (tmp_path / "restored.bin").read_bytes() == data
    path = stub.admin.message_backup_path(_backup_id(free_account))
    assert stub.admin.object_bytes(path) == data
    assert result.key.endswith("/messageBackup")
    (form,) = _recorded(stub, "GET", "/v1/archives/upload/form")
    assert parse_qs(form["query"])["uploadLength"] == [str(len(data))]


def test_upload_from_file_replaces_previous(stub, client, free_account, tmp_path: Path):
    archive = tmp_path / "archive.bin"
    archive.write_bytes(b"second backup " * 1000)
    client.upload_backup(b"first backup")

    client.upload_backup(archive)

    path = stub.admin.message_backup_path(_backup_id(free_account))
    assert stub.admin.object_bytes(path) == archive.read_bytes()


def test_upload_resumes_after_cut(stub, client, free_account):
    data = os.urandom(300_000)
    stub.admin.add_fault("/upload/backups/*", "cut_upload", method="PATCH", after_bytes=100_000, count=1)

    client.upload_backup(data)

    path = stub.admin.message_backup_path(_backup_id(free_account))
    assert stub.admin.object_bytes(path) == data
    patches = [record for record in stub.admin.recordings() if record["method"] == "PATCH"]
    assert _headers(patches[0])["upload-offset"] == "0"
    assert patches[0]["outcome"] == "upload_cut"
    assert patches[-1]["status"] == 204
    assert _headers(patches[-1])["upload-offset"] == "100000"


def test_download_without_backup_not_found(client, tmp_path: Path):
    with pytest.raises(NotFound):
        client.download_backup(tmp_path / "restored.bin")

    assert not (tmp_path / "restored.bin").exists()
    assert list(tmp_path.iterdir()) == []


def test_backup_info_fields(client):
    info = client.get_backup_info()

    assert info.cdn == 3
    assert info.backup_name == "messageBackup"
    assert len(info.backup_dir) == 22
    assert info.used_space == 0


def test_delete_backup(stub, client, free_account):
    client.upload_backup(b"archive")
    path = stub.admin.message_backup_path(_backup_id(free_account))

    client.delete_backup(TYPE_MESSAGES)

    assert not stub.admin.object_exists(path)
    assert _recorded(stub, "DELETE", "/v1/archives")[0]["status"] == 204


# --- refresh ------------------------------------------------------------------------------


def test_refresh_free_sends_messages_only(stub, client, free_account):
    stub.admin.clear_recordings()

    client.refresh(paid=False)

    assert _routes(stub) == ["POST /v1/archives"]


def test_refresh_paid_sends_both(stub, clock, paid_client, paid_account):
    clock.advance(DAY)
    stub.admin.clear_recordings()

    paid_client.refresh(paid=True)

    assert _routes(stub) == ["POST /v1/archives", "POST /v1/archives"]
    today = (START + DAY) // DAY * DAY
    assert stub.admin.backup(_backup_id(paid_account, TYPE_MESSAGES))["refreshed_at"] == today
    assert stub.admin.backup(_backup_id(paid_account, TYPE_MEDIA))["media_refreshed_at"] == today


# --- media tier ---------------------------------------------------------------------------


def _copy_request(account: Account, upload, name: str) -> CopyMediaRequest:
    return CopyMediaRequest.for_media_name(
        account.media_root_key, name, source_cdn=upload.cdn, source_key=upload.key, object_length=upload.length
    )


def test_media_copy_list_delete(stub, paid_client, paid_account):
    name = media_name(os.urandom(32), os.urandom(64))
    upload = paid_client.upload_transit_media(os.urandom(5000))
    request = _copy_request(paid_account, upload, name)

    result = paid_client.copy_media(request)
    listed = list(paid_client.iter_media())

    assert result.ok
    assert result.cdn == 3
    assert request.media_id == keys.derive_media_id(paid_account.media_root_key, name)
    assert [item.media_id for item in listed] == [request.media_id]
    assert listed[0].object_length == 16 + 16 * ((5000 + 16) // 16) + 32
    paid_client.delete_media([(3, request.media_id)])
    assert list(paid_client.iter_media()) == []


def test_media_copy_sends_derived_keys(stub, paid_client, paid_account):
    name = media_name(os.urandom(32), os.urandom(64))
    upload = paid_client.upload_transit_media(b"attachment")

    paid_client.copy_media(_copy_request(paid_account, upload, name))

    (record,) = _recorded(stub, "PUT", "/v1/archives/media")
    body = stub.admin.request_body(record["id"]).decode()
    media_id = keys.derive_media_id(paid_account.media_root_key, name)
    hmac_key, aes_key = keys.derive_media_encryption_key(paid_account.media_root_key, media_id)
    assert f'"mediaId": "{encode_media_id(media_id)}"' in body.replace('":"', '": "')
    assert base64.b64encode(hmac_key).decode() in body
    assert base64.b64encode(aes_key).decode() in body


def test_media_batch_and_paging(stub, paid_client, paid_account):
    name = media_name(os.urandom(32), os.urandom(64))
    uploads = [paid_client.upload_transit_media(os.urandom(100 + i)) for i in range(3)]
    names = [name, thumbnail_media_name(name), "third"]
    requests_ = [_copy_request(paid_account, upload, n) for upload, n in zip(uploads, names, strict=True)]
    requests_.append(CopyMediaRequest.for_media_name(
        paid_account.media_root_key, "missing", source_cdn=3, source_key="AAAAAAAAAAAAAAAAAAAA", object_length=10
    ))

    results = paid_client.copy_media_batch(requests_)
    pages = [paid_client.list_media(limit=2)]
    pages.append(paid_client.list_media(cursor=pages[0].cursor, limit=2))

    assert [result.status for result in results] == [200, 200, 200, 410]
    assert results[3].failure_reason
    assert len(pages[0].objects) == 2
    assert pages[1].cursor is None
    listed = {item.media_id for page in pages for item in page.objects}
    assert listed == {request.media_id for request in requests_[:3]}
    assert {item.media_id for item in paid_client.iter_media(limit=1)} == listed


def test_media_download_returns_stored_object(stub, paid_client, paid_account):
    upload = paid_client.upload_transit_media(os.urandom(1000))
    request = _copy_request(paid_account, upload, "name")
    paid_client.copy_media(request)

    stored = paid_client.download_media(request.media_id)

    info = paid_client.get_backup_info(TYPE_MEDIA)
    path = f"backups/{info.backup_dir}/{info.media_dir}/{encode_media_id(request.media_id)}"
    assert stored == stub.admin.object_bytes(path)


def test_media_layer_stripped(paid_client, paid_account):
    data = os.urandom(1000)
    upload = paid_client.upload_transit_media(data)
    request = _copy_request(paid_account, upload, "name")
    paid_client.copy_media(request)
    stored = paid_client.download_media(request.media_id)

    assert strip_media_tier_layer(stored, request.hmac_key, request.encryption_key) == data
    with pytest.raises(CorruptMedia, match="MAC"):
        strip_media_tier_layer(stored, request.encryption_key, request.encryption_key)
    tampered = stored[:20] + bytes([stored[20] ^ 1]) + stored[21:]
    with pytest.raises(CorruptMedia, match="MAC"):
        strip_media_tier_layer(tampered, request.hmac_key, request.encryption_key)
    with pytest.raises(CorruptMedia, match="length"):
        strip_media_tier_layer(stored[:-1], request.hmac_key, request.encryption_key)


def test_transit_download(paid_client):
    data = os.urandom(3000)
    upload = paid_client.upload_transit_media(data)

    assert paid_client.download_transit(upload.key) == data


def test_free_tier_media_form_forbidden(client):
    with pytest.raises(Forbidden) as raised:
        client.get_media_upload_form(100)

    assert raised.value.route == "GET /v1/archives/media/upload/form"


def test_subscription_configuration(client):
    configuration = client.get_subscription_configuration()

    assert configuration.free_tier_media_days == 45
    assert configuration.levels[LEVEL_PAID].storage_allowance_bytes == 100 * 1024**3


# --- errors -------------------------------------------------------------------------------


def test_rate_limit_has_retry_after(stub, client):
    stub.admin.add_fault("/v1/archives", "rate_limit", method="POST", retry_after=120, count=1)

    with pytest.raises(RateLimited) as raised:
        client.refresh(paid=False)

    assert raised.value.retry_after == 120
    assert raised.value.route == "POST /v1/archives"
    assert "retry after 120 s" in str(raised.value)


def test_unregistered_key_unauthorized(stub, bridge, clock, free_account):
    client = _client(stub, bridge, clock, free_account)
    client.commit_backup_ids()

    with pytest.raises(Unauthorized) as raised:
        client.get_backup_info()

    assert raised.value.status == 401


def test_server_error_has_status(stub, client):
    stub.admin.add_fault("/v1/archives", "status", method="GET", status=500, count=1)

    with pytest.raises(ArchiveApiError) as raised:
        client.get_backup_info()

    assert raised.value.status == 500
    assert "GET /v1/archives failed with HTTP 500" in str(raised.value)


def test_unreachable_server(bridge, clock, stub, free_account):
    client = _client(stub, bridge, clock, free_account, url="http://127.0.0.1:9")

    with pytest.raises(ServerUnreachable, match="127.0.0.1:9"):
        client.commit_backup_ids()


def test_errors_hide_secrets(stub, bridge, clock, free_account):
    client = _client(stub, bridge, clock, free_account, recovery_key=free_account.recovery_key)
    with pytest.raises(NotFound) as raised:
        client.fetch_credentials()

    text = str(raised.value) + repr(client)
    assert free_account.password not in text
    assert free_account.recovery_key not in text


# --- planted defects ----------------------------------------------------------------------


def _defect_client(stub, bridge, clock, account, *names):
    client = _client(stub, bridge, clock, account, options=ClientOptions.from_defects(names))
    client.initialize()
    stub.admin.clear_recordings()
    return client


def test_defect_account_auth_on_archive_routes(stub, bridge, clock, free_account):
    client = _client(stub, bridge, clock, free_account, options=ClientOptions.from_defects(["account-auth-on-archive-routes"]))
    client.commit_backup_ids()

    with pytest.raises(ArchiveApiError) as raised:
        client.set_public_key(TYPE_MESSAGES)

    assert raised.value.status == 400
    (record,) = _recorded(stub, "PUT", "/v1/archives/keys")
    assert "authorization" in _headers(record)
    assert "x-signal-zk-auth" in _headers(record)


def test_defect_reuse_presentation(stub, bridge, clock, free_account):
    client = _defect_client(stub, bridge, clock, free_account, "reuse-presentation")

    client.get_backup_info()
    client.get_backup_info()

    presentations = {_headers(r)["x-signal-zk-auth"] for r in _recorded(stub, "GET", "/v1/archives")}
    assert len(presentations) == 1


def test_defect_fetch_credentials_every_call(stub, bridge, clock, free_account):
    client = _defect_client(stub, bridge, clock, free_account, "fetch-credentials-every-call")

    client.get_backup_info()
    client.refresh(paid=False)

    assert _routes(stub) == ["GET /v1/archives/auth", "GET /v1/archives", "GET /v1/archives/auth", "POST /v1/archives"]


def test_defect_skip_media_refresh(stub, bridge, clock, paid_account):
    client = _defect_client(stub, bridge, clock, paid_account, "skip-media-refresh")

    client.refresh(paid=True)

    assert _routes(stub) == ["POST /v1/archives"]


def test_defect_omit_upload_length(stub, bridge, clock, free_account):
    client = _defect_client(stub, bridge, clock, free_account, "omit-upload-length")

    client.upload_backup(b"archive")

    (form,) = _recorded(stub, "GET", "/v1/archives/upload/form")
    assert "uploadLength" not in parse_qs(form["query"])


def test_defect_sign_media_with_messages_key(stub, bridge, clock, paid_account):
    client = _client(stub, bridge, clock, paid_account, options=ClientOptions.from_defects(["sign-media-with-messages-key"]))
    client.commit_backup_ids()
    client.set_public_key(TYPE_MESSAGES)

    with pytest.raises(Unauthorized):
        client.set_public_key(TYPE_MEDIA)


def test_defect_account_auth_on_cdn(stub, bridge, clock, paid_account):
    client = _defect_client(stub, bridge, clock, paid_account, "account-auth-on-cdn")
    upload = client.upload_transit_media(b"attachment")
    stub.admin.clear_recordings()

    client.download_transit(upload.key)

    (read,) = stub.admin.recordings()
    assert read["plane"] == "cdn"
    assert _headers(read)["authorization"].startswith("Basic ")


def test_upload_form_extra_headers(stub, bridge, clock, free_account):
    options = ClientOptions(upload_form_headers=(("X-Planted", "value"),))
    client = _client(stub, bridge, clock, free_account, options=options)
    client.initialize()

    client.get_upload_form(10)

    (form,) = _recorded(stub, "GET", "/v1/archives/upload/form")
    assert _headers(form)["x-planted"] == "value"


def test_unknown_defect_rejected():
    with pytest.raises(ValueError, match="unknown archive client defect 'no-such'"):
        ClientOptions.from_defects(["no-such"])

    assert ClientOptions.from_defects(["no-such"], strict=False) == ClientOptions()


def test_backup_id_limits(client):
    has_permits, retry_after = client.get_backup_id_limits()

    assert has_permits is True
    assert retry_after >= 0
