"""Test helpers for the stub server: a client-side archive flow over real HTTP.

``BackupClient`` plays a Signal-like client with libsignal's client API (through the bridge):
it registers an account through the admin API, commits blinded requests, fetches credentials,
binds keys and builds the zero-knowledge headers for each request.
"""

from __future__ import annotations

import base64
import os
import uuid
from dataclasses import dataclass, field

import pytest
import requests

from harness.keys import derive_backup_id
from harness.stub_client import StubAdmin
from harness.stub_process import StubProcess
from libsignal_bridge import Bridge
from libsignal_bridge.zk import TYPE_MEDIA, TYPE_MESSAGES, ZkClient

DAY = 86400


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@dataclass
class Credential:
    """One backup id of one type: its keys and the credentials received for it."""

    backup_key: bytes
    context: bytes
    request: bytes
    private_key: bytes
    public_key: bytes
    by_day: dict[int, bytes] = field(default_factory=dict)


class BackupClient:
    def __init__(self, url: str, admin: StubAdmin, bridge: Bridge, backup_level: int | None = 201):
        self.url = url.rstrip("/")
        self.admin = admin
        self.zk = ZkClient(bridge, admin.zk_public_params())
        self.aci = uuid.uuid4()
        self.password = "password-" + uuid.uuid4().hex[:8]
        self.session = requests.Session()
        admin.register_account(str(self.aci), self.password, backup_level=backup_level)
        self.types: dict[int, Credential] = {}
        for credential_type in (TYPE_MESSAGES, TYPE_MEDIA):
            backup_key = os.urandom(32)
            context, request = self.zk.create_request_context(backup_key, self.aci.bytes)
            private_key = os.urandom(32)
            self.types[credential_type] = Credential(
                backup_key, context, request, private_key, self.zk.public_key(private_key)
            )

    @property
    def basic_auth(self) -> tuple[str, str]:
        return (f"{self.aci}.1", self.password)

    def today(self) -> int:
        return int(self.admin.now()) // DAY * DAY

    def backup_id(self, credential_type: int = TYPE_MESSAGES) -> bytes:
        return derive_backup_id(self.types[credential_type].backup_key, self.aci.bytes)

    # -- account routes -----------------------------------------------------------------------

    def commit_backup_id(self) -> requests.Response:
        body = {
            "messagesBackupAuthCredentialRequest": b64(self.types[TYPE_MESSAGES].request),
            "mediaBackupAuthCredentialRequest": b64(self.types[TYPE_MEDIA].request),
        }
        return self.session.put(f"{self.url}/v1/archives/backupid", json=body, auth=self.basic_auth)

    def fetch_credentials(self, start: int | None = None, days: int = 7) -> requests.Response:
        start = self.today() if start is None else start
        response = self.session.get(
            f"{self.url}/v1/archives/auth",
            params={"redemptionStartSeconds": start, "redemptionEndSeconds": start + days * DAY},
            auth=self.basic_auth,
        )
        if response.status_code == 200:
            for name, credential_type in (("messages", TYPE_MESSAGES), ("media", TYPE_MEDIA)):
                state = self.types[credential_type]
                for entry in response.json()["credentials"][name]:
                    day = entry["redemptionTime"]
                    state.by_day[day] = self.zk.receive(state.context, base64.b64decode(entry["credential"]), day)
        return response

    # -- zero-knowledge headers ------------------------------------------------------------------

    def zk_headers(self, credential_type: int = TYPE_MESSAGES, day: int | None = None, sign_with: bytes | None = None) -> dict[str, str]:
        state = self.types[credential_type]
        day = self.today() if day is None else day
        presentation = self.zk.present(state.by_day[day])
        signature = self.zk.sign(sign_with or state.private_key, presentation)
        return {"X-Signal-ZK-Auth": b64(presentation), "X-Signal-ZK-Auth-Signature": b64(signature)}

    def set_keys(self, credential_type: int = TYPE_MESSAGES) -> requests.Response:
        state = self.types[credential_type]
        return self.session.put(
            f"{self.url}/v1/archives/keys",
            json={"backupIdPublicKey": b64(state.public_key)},
            headers=self.zk_headers(credential_type),
        )

    def setup(self) -> BackupClient:
        """Commit, fetch credentials and bind both public keys; assert each step."""
        assert self.commit_backup_id().status_code == 204
        assert self.fetch_credentials().status_code == 200
        assert self.set_keys(TYPE_MESSAGES).status_code == 204
        assert self.set_keys(TYPE_MEDIA).status_code == 204
        return self

    def call(self, method: str, path: str, credential_type: int = TYPE_MESSAGES, **kwargs: object) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}) or {})  # type: ignore[call-overload]
        headers.update(self.zk_headers(credential_type))
        return self.session.request(method, f"{self.url}{path}", headers=headers, **kwargs)  # type: ignore[arg-type]

    # -- uploads -----------------------------------------------------------------------------------

    def upload_form(self, upload_length: int | None = None) -> dict[str, object]:
        params = {"uploadLength": upload_length} if upload_length is not None else None
        response = self.call("GET", "/v1/archives/upload/form", params=params)
        assert response.status_code == 200, response.text
        return response.json()

    def media_form(self, upload_length: int | None = None) -> dict[str, object]:
        params = {"uploadLength": upload_length} if upload_length is not None else None
        response = self.call("GET", "/v1/archives/media/upload/form", TYPE_MEDIA, params=params)
        assert response.status_code == 200, response.text
        return response.json()

    def read_headers(self) -> dict[str, str]:
        response = self.call("GET", "/v1/archives/auth/read", params={"cdn": 3})
        assert response.status_code == 200, response.text
        return response.json()["headers"]

    def backup_info(self) -> dict[str, object]:
        response = self.call("GET", "/v1/archives")
        assert response.status_code == 200, response.text
        return response.json()


def tus_upload(url: str, form: dict[str, object], data: bytes, session: requests.Session | None = None) -> requests.Response:
    """Upload ``data`` the way Android does: create with deferred length, then one PATCH."""
    http = session or requests
    headers = dict(form["headers"])  # type: ignore[arg-type]
    location = relocate(url, str(form["signedUploadLocation"]))
    created = http.post(
        location,
        headers={**headers, "Tus-Resumable": "1.0.0", "Upload-Defer-Length": "1", "Content-Length": "0"},
    )
    assert created.status_code == 201, created.text
    target = relocate(url, created.headers["Location"])
    return http.patch(
        target,
        data=data,
        headers={
            **headers,
            "Tus-Resumable": "1.0.0",
            "Upload-Offset": "0",
            "Upload-Length": str(len(data)),
            "Content-Type": "application/offset+octet-stream",
        },
    )


def relocate(base_url: str, location: str) -> str:
    """Keep only the path of ``location`` and put it on ``base_url``, as clients do."""
    path = "/" + location.split("://", 1)[-1].split("/", 1)[1]
    return base_url.rstrip("/") + path


# -- fixtures (import them into a test module to use them) -------------------------------------


@pytest.fixture(scope="module")
def stub_process():
    """One stub server per test module; the expiration worker runs only when a test requests it."""
    with StubProcess.start(config={"expiry_interval_seconds": 0}) as stub:
        yield stub


@pytest.fixture
def stub(stub_process):
    """The module's stub server, reset to an empty state for this test."""
    stub_process.admin.reset()
    return stub_process


@pytest.fixture(scope="module")
def bridge():
    with Bridge() as running:
        yield running


class AccountClient:
    """An account that uses only account-authenticated routes (no libsignal needed)."""

    def __init__(self, url: str, admin: StubAdmin, device_id: int = 1):
        self.url = url.rstrip("/")
        self.aci = str(uuid.uuid4())
        self.password = "pw-" + uuid.uuid4().hex[:8]
        self.device_id = device_id
        admin.register_account(self.aci, self.password, device_id=device_id)

    @property
    def auth(self) -> tuple[str, str]:
        return (f"{self.aci}.{self.device_id}", self.password)

    def attachment_form(self, upload_length: int | None = None) -> dict[str, object]:
        params = {"uploadLength": upload_length} if upload_length is not None else None
        response = requests.get(f"{self.url}/v4/attachments/form/upload", params=params, auth=self.auth)
        assert response.status_code == 200, response.text
        return response.json()
