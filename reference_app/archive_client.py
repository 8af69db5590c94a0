"""The reference app's HTTP client for the archive API and the CDN.

It follows Signal's client rules:

* Setup order: ``PUT /v1/archives/backupid`` with both blinded requests, ``GET
  /v1/archives/auth``, then ``PUT /v1/archives/keys`` for the messages backup id and then for
  the media backup id (``initialize``).
* Credentials: one request fetches today ... today + 7 days (UTC) for both types. They are
  cached (through a ``CredentialStore`` the app persists), today's is picked for every
  anonymous request, and the network is asked again only when today's is missing. When
  unblinding fails, both caches are cleared and ``CredentialVerificationFailed`` is raised.
* Channel separation: anonymous (ZK) requests carry only ``X-Signal-ZK-Auth`` and
  ``X-Signal-ZK-Auth-Signature`` and go through their own session with no ``Authorization``.
  The account routes (``PUT /backupid``, ``GET /backupid/limits``, ``GET /auth``) carry HTTP
  Basic ``<aci>.<device_id>:<password>``. CDN requests carry only the CDN's bearer token.
* Every presentation is fresh and signed with the backup-id private key of its type.

"Now" always comes from the ``clock`` callable (epoch seconds) the app passes in, because
the app has a settable device clock.

Planted defects: ``ClientOptions`` switches client behaviour that breaks a rule, so the
harness can prove that it notices. ``ClientOptions.from_defects`` takes these names:

* ``account-auth-on-archive-routes``: also send the account ``Authorization`` header on every
  ZK route (breaks channel separation, and the upstream server returns 400).
* ``account-auth-on-cdn``: send the account ``Authorization`` header on CDN requests that
  carry no CDN token (transit-tier reads), which ties CDN traffic to the account. Requests
  with a CDN bearer token keep the token, because HTTP allows one ``Authorization`` header.
* ``fetch-credentials-every-call``: call ``GET /v1/archives/auth`` right before every ZK
  request instead of using the cache (lets the server correlate by timing).
* ``reuse-presentation``: make one presentation per credential and send it on every request
  (makes anonymous requests linkable).
* ``skip-media-refresh``: the keep-alive refresh sends only the messages credential, also on
  the paid tier (the media tier then expires).
* ``omit-upload-length``: ask for the upload form without ``uploadLength``.
* ``sign-media-with-messages-key``: sign media-type presentations with the messages backup-id
  key (the server returns 401).
* ``aci-on-archive-routes``: add the account's ACI as a header to every ZK request.
* ``backup-id-on-account-routes``: send the messages backup id in the query of the credential
  fetch (an account-authenticated request).
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from harness import keys
from libsignal_bridge import Bridge, shared_bridge
from libsignal_bridge.zk import LEVEL_PAID, TYPE_MEDIA, TYPE_MESSAGES, ZkClient, ZkVerificationError
from reference_app.archive_credentials import (
    CREDENTIAL_WINDOW_DAYS,
    DAY_SECONDS,
    TYPE_NAMES,
    CredentialCache,
    CredentialStore,
    MemoryCredentialStore,
    cache_owner,
    day_start,
)
from reference_app.archive_responses import (
    BackupConfiguration,
    BackupInfo,
    backup_configuration,
    backup_info,
    copy_result,
    issued_credentials,
    media_page,
)
from reference_app.errors import CredentialVerificationFailed, InvalidResponse
from reference_app.http_api import Timeouts, json_object, new_session, send
from reference_app.media_copy import MAX_BATCH_ITEMS, CopyMediaRequest, CopyResult, MediaPage, StoredMedia, encode_media_id
from reference_app.tus_client import TusClient, UploadForm, UploadResult

log = logging.getLogger(__name__)

Clock = Callable[[], float]


@dataclass(frozen=True)
class ClientOptions:
    """Switches for planted defects; the defaults are the correct behaviour.

    ``upload_form_headers`` are extra headers sent on ``GET /v1/archives/upload/form`` (a hook
    for app-level defects that leak something to the server); they are hidden from repr.
    """

    account_auth_on_archive_routes: bool = False
    account_auth_on_cdn: bool = False
    fetch_credentials_every_call: bool = False
    reuse_presentation: bool = False
    skip_media_refresh: bool = False
    omit_upload_length: bool = False
    sign_media_with_messages_key: bool = False
    aci_on_archive_routes: bool = False
    backup_id_on_account_routes: bool = False
    upload_form_headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    @classmethod
    def from_defects(cls, names: Iterable[str], *, strict: bool = True) -> ClientOptions:
        """Build options from defect names (``account-auth-on-archive-routes``, ...).

        With ``strict`` an unknown name raises ValueError listing the known ones; without it,
        names that are not client defects (the app's own) are skipped.
        """
        known = known_defects()
        flags: dict[str, bool] = {}
        for name in names:
            if name in known:
                flags[name.replace("-", "_")] = True
            elif strict:
                raise ValueError(f"unknown archive client defect {name!r}; known: {', '.join(known)}")
        return cls(**flags)


def known_defects() -> list[str]:
    """Return the defect names ``ClientOptions.from_defects`` accepts."""
    return [option.name.replace("_", "-") for option in dataclasses.fields(ClientOptions) if option.type == "bool"]


@dataclass(frozen=True)
class AccountAuth:
    """Account credentials of one device: HTTP Basic ``<aci>.<device_id>:<password>``."""

    aci: str
    device_id: int
    password: str = field(repr=False)

    def header(self) -> str:
        token = f"{self.aci}.{self.device_id}:{self.password}".encode()
        return "Basic " + base64.b64encode(token).decode("ascii")


@dataclass(frozen=True)
class ArchiveKeys:
    """The account's ACI and the two backup keys: messages (from the recovery key) and media root."""

    aci: bytes
    messages_backup_key: bytes = field(repr=False)
    media_root_key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        for name, value, length in (
            ("aci", self.aci, 16),
            ("messages backup key", self.messages_backup_key, 32),
            ("media root key", self.media_root_key, 32),
        ):
            if not isinstance(value, bytes) or len(value) != length:
                raise ValueError(f"{name} must be {length} bytes")

    @classmethod
    def from_recovery_key(cls, recovery_key: str, aci: bytes, media_root_key: bytes) -> ArchiveKeys:
        return cls(aci=aci, messages_backup_key=keys.derive_backup_key(recovery_key), media_root_key=media_root_key)

    def backup_key(self, credential_type: int) -> bytes:
        return self.messages_backup_key if credential_type == TYPE_MESSAGES else self.media_root_key

    def backup_id(self, credential_type: int) -> bytes:
        return keys.derive_backup_id(self.backup_key(credential_type), self.aci)

    def private_key(self, credential_type: int) -> bytes:
        return keys.derive_backup_id_private_key(self.backup_key(credential_type), self.aci)

    def public_key(self, credential_type: int) -> bytes:
        return keys.derive_backup_id_public_key(self.backup_key(credential_type), self.aci)


class ArchiveClient:
    """One account's archive API client; thread-safe for use by the app's scheduler and UI."""

    def __init__(
        self,
        base_url: str,
        account: AccountAuth,
        archive_keys: ArchiveKeys,
        zk_public_params: bytes,
        *,
        clock: Clock,
        store: CredentialStore | None = None,
        bridge: Bridge | None = None,
        cdn_url: str | None = None,
        options: ClientOptions | None = None,
        timeouts: Timeouts | None = None,
        tus_chunk_size: int | None = None,
    ):
        """``cdn_url`` is the CDN base (defaults to ``base_url``); its scheme, host and port
        replace those of every upload location the server hands out."""
        self._base_url = base_url.rstrip("/")
        self._cdn_url = (cdn_url or base_url).rstrip("/")
        self._account = account
        self._keys = archive_keys
        self._clock = clock
        self._options = options or ClientOptions()
        self._timeouts = timeouts or Timeouts()
        self._zk = ZkClient(bridge or shared_bridge(), zk_public_params)
        owner = cache_owner(archive_keys.backup_id(TYPE_MESSAGES), archive_keys.backup_id(TYPE_MEDIA))
        self._cache = CredentialCache(store or MemoryCredentialStore(), owner)
        self._lock = threading.RLock()
        self._contexts: dict[int, tuple[bytes, bytes]] = {}
        self._private_keys: dict[int, bytes] = {}
        self._presentations: dict[tuple[int, int], bytes] = {}
        # One session per channel, so no header or connection is shared across them.
        self._account_session = new_session()
        self._anonymous_session = new_session()
        self._cdn_session = new_session()
        if self._options.account_auth_on_cdn:
            self._cdn_session.headers["Authorization"] = account.header()
        self._tus = TusClient(self._cdn_url, timeouts=self._timeouts, session=self._cdn_session, chunk_size=tus_chunk_size)

    def __repr__(self) -> str:
        return f"ArchiveClient({self._base_url!r}, aci={self._account.aci!r})"

    def close(self) -> None:
        for session in (self._account_session, self._anonymous_session, self._cdn_session):
            session.close()

    # --- setup and credentials (account-authenticated) -------------------------------------

    def initialize(self) -> None:
        """Run the one-time setup in the order Android uses.

        Commit both blinded requests, make sure today's credentials are cached, then register
        the messages and the media backup-id public keys. Any error propagates and the app
        must not mark backups as initialized.
        """
        self.commit_backup_ids()
        self.credential(TYPE_MESSAGES)
        self.set_public_key(TYPE_MESSAGES)
        self.set_public_key(TYPE_MEDIA)
        log.info("archive setup complete: backup ids committed and public keys registered")

    def commit_backup_ids(self) -> None:
        """``PUT /v1/archives/backupid`` with the messages and the media blinded requests."""
        body = {
            "messagesBackupAuthCredentialRequest": _b64(self._request_context(TYPE_MESSAGES)[1]),
            "mediaBackupAuthCredentialRequest": _b64(self._request_context(TYPE_MEDIA)[1]),
        }
        self._account_call("PUT", "/v1/archives/backupid", expected=(204, 200), json=body)

    def get_backup_id_limits(self) -> tuple[bool, int]:
        """``GET /v1/archives/backupid/limits``: (permits remaining, retry after seconds)."""
        route = "GET /v1/archives/backupid/limits"
        body = json_object(self._account_call("GET", "/v1/archives/backupid/limits"), route)
        return bool(body.get("hasPermitsRemaining")), int(body.get("retryAfterSeconds") or 0)

    def fetch_credentials(self) -> None:
        """``GET /v1/archives/auth`` for today ... today + 7 days, unblind them and cache them."""
        with self._lock:
            today = day_start(self._clock())
            end = today + CREDENTIAL_WINDOW_DAYS * DAY_SECONDS
            route = "GET /v1/archives/auth"
            params: dict[str, Any] = {"redemptionStartSeconds": today, "redemptionEndSeconds": end}
            if self._options.backup_id_on_account_routes:
                params["backupId"] = _b64(self._keys.backup_id(TYPE_MESSAGES))
            body = json_object(self._account_call("GET", "/v1/archives/auth", params=params), route)
            issued = issued_credentials(body, route, today, end)
            received: dict[int, dict[int, bytes]] = {}
            for credential_type, entries in issued.items():
                context = self._request_context(credential_type)[0]
                received[credential_type] = {day: self._receive(context, response, day) for day, response in entries.items()}
            self._cache.replace(received, today)
            self._presentations.clear()
            log.info("cached backup credentials for %d days", len(received[TYPE_MESSAGES]))

    def credential(self, credential_type: int) -> bytes:
        """Return today's credential of ``credential_type``, fetching only when it is missing."""
        with self._lock:
            today = day_start(self._clock())
            if self._options.fetch_credentials_every_call:
                self.fetch_credentials()
            credential = self._cache.get(credential_type, today)
            if credential is None:
                log.info("no cached %s credential for today; fetching credentials", TYPE_NAMES[credential_type])
                self.fetch_credentials()
                credential = self._cache.get(credential_type, today)
            if credential is None:
                raise InvalidResponse("GET /v1/archives/auth", f"no {TYPE_NAMES[credential_type]} credential for today ({today})")
            return credential

    def credential_level(self, credential_type: int = TYPE_MESSAGES) -> int:
        """Return the backup level (200 free, 201 paid) of today's credential."""
        return self._zk.credential_info(self.credential(credential_type)).level

    def clear_credentials(self) -> None:
        with self._lock:
            self._cache.clear()
            self._presentations.clear()

    # --- anonymous archive routes ----------------------------------------------------------

    def set_public_key(self, credential_type: int) -> None:
        """``PUT /v1/archives/keys``: bind the backup-id public key of this type."""
        body = {"backupIdPublicKey": _b64(self._keys.public_key(credential_type))}
        self._anonymous_call("PUT", "/v1/archives/keys", credential_type, expected=(204, 200), json=body)

    def get_backup_info(self, credential_type: int = TYPE_MESSAGES) -> BackupInfo:
        """``GET /v1/archives``."""
        route = "GET /v1/archives"
        body = json_object(self._anonymous_call("GET", "/v1/archives", credential_type), route)
        return backup_info(body, route)

    def refresh(self, paid: bool) -> None:
        """``POST /v1/archives`` with the messages credential, and with the media one if paid."""
        self._anonymous_call("POST", "/v1/archives", TYPE_MESSAGES, expected=(204, 200))
        if paid and not self._options.skip_media_refresh:
            self._anonymous_call("POST", "/v1/archives", TYPE_MEDIA, expected=(204, 200))

    def delete_backup(self, credential_type: int) -> None:
        """``DELETE /v1/archives`` for the backup id of ``credential_type``."""
        self._anonymous_call("DELETE", "/v1/archives", credential_type, expected=(204, 200))

    def get_upload_form(self, upload_length: int | None) -> UploadForm:
        """``GET /v1/archives/upload/form`` for the message backup file."""
        return self._upload_form("/v1/archives/upload/form", TYPE_MESSAGES, upload_length)

    def upload_backup(self, data: bytes | Path) -> UploadResult:
        """Upload an encrypted backup file: the upload form, then TUS to the CDN."""
        length = len(data) if isinstance(data, bytes | bytearray) else Path(data).stat().st_size
        return self._tus.upload(self.get_upload_form(length), data)

    def get_read_headers(self, credential_type: int = TYPE_MESSAGES) -> dict[str, str]:
        """``GET /v1/archives/auth/read?cdn=3``: the headers a CDN read needs."""
        route = "GET /v1/archives/auth/read"
        response = self._anonymous_call("GET", "/v1/archives/auth/read", credential_type, params={"cdn": 3})
        headers = json_object(response, route).get("headers")
        if not isinstance(headers, dict) or not all(isinstance(value, str) for value in headers.values()):
            raise InvalidResponse(route, "headers must be an object of strings")
        return headers

    def download_backup(self, out_path: Path) -> int:
        """Download the message backup to ``out_path`` atomically; return its size in bytes."""
        info = self.get_backup_info(TYPE_MESSAGES)
        headers = self.get_read_headers(TYPE_MESSAGES)
        url = f"{self._cdn_url}/backups/{info.backup_dir}/{info.backup_name}"
        return self._download_to(url, headers, Path(out_path))

    def get_media_upload_form(self, upload_length: int | None) -> UploadForm:
        """``GET /v1/archives/media/upload/form`` for one transit-tier attachment."""
        return self._upload_form("/v1/archives/media/upload/form", TYPE_MEDIA, upload_length)

    def upload_transit_media(self, data: bytes | Path) -> UploadResult:
        """Upload an encrypted attachment to the transit tier for a later copy."""
        length = len(data) if isinstance(data, bytes | bytearray) else Path(data).stat().st_size
        return self._tus.upload(self.get_media_upload_form(length), data)

    def copy_media(self, request: CopyMediaRequest) -> CopyResult:
        """``PUT /v1/archives/media``: copy one transit object into the media tier."""
        route = "PUT /v1/archives/media"
        response = self._anonymous_call("PUT", "/v1/archives/media", TYPE_MEDIA, json=request.to_json())
        cdn = json_object(response, route).get("cdn")
        return CopyResult(media_id=request.media_id, status=200, cdn=cdn if isinstance(cdn, int) else None)

    def copy_media_batch(self, copy_requests: list[CopyMediaRequest]) -> list[CopyResult]:
        """``PUT /v1/archives/media/batch`` in groups of at most 1000; one result per request."""
        results: list[CopyResult] = []
        for start in range(0, len(copy_requests), MAX_BATCH_ITEMS):
            group = copy_requests[start : start + MAX_BATCH_ITEMS]
            results.extend(self._copy_group(group))
        return results

    def list_media(self, cursor: str | None = None, limit: int | None = None, credential_type: int = TYPE_MEDIA) -> MediaPage:
        """``GET /v1/archives/media``: one page of the media tier listing."""
        route = "GET /v1/archives/media"
        params: dict[str, Any] = {}
        if cursor is not None:
            params["cursor"] = cursor
        if limit is not None:
            params["limit"] = limit
        body = json_object(self._anonymous_call("GET", "/v1/archives/media", credential_type, params=params), route)
        return media_page(body, route)

    def iter_media(self, limit: int | None = None) -> Iterator[StoredMedia]:
        """Yield every media tier object, following the cursor across pages."""
        cursor: str | None = None
        while True:
            page = self.list_media(cursor=cursor, limit=limit)
            yield from page.objects
            if not page.cursor:
                return
            cursor = page.cursor

    def delete_media(self, media: Iterable[tuple[int, bytes]]) -> None:
        """``POST /v1/archives/media/delete`` for (cdn, mediaId) pairs, 1000 per request."""
        items = [{"cdn": cdn, "mediaId": encode_media_id(media_id)} for cdn, media_id in media]
        for start in range(0, len(items), MAX_BATCH_ITEMS):
            body = {"mediaToDelete": items[start : start + MAX_BATCH_ITEMS]}
            self._anonymous_call("POST", "/v1/archives/media/delete", TYPE_MEDIA, expected=(204, 200), json=body)

    def download_media(self, media_id: bytes) -> bytes:
        """Download one media tier object as stored (still wrapped in the server's layer)."""
        info = self.get_backup_info(TYPE_MEDIA)
        headers = self.get_read_headers(TYPE_MEDIA)
        url = f"{self._cdn_url}/backups/{info.backup_dir}/{info.media_dir}/{encode_media_id(media_id)}"
        return self._cdn_get(url, "GET /backups/{backupDir}/{mediaDir}/{mediaId}", headers).content

    def download_transit(self, key: str) -> bytes:
        """Download a transit-tier object; these reads need no authorization."""
        return self._cdn_get(f"{self._cdn_url}/attachments/{key}", "GET /attachments/{key}", {}).content

    def get_subscription_configuration(self) -> BackupConfiguration:
        """``GET /v1/subscription/configuration`` (no auth): the backup levels and free-tier window."""
        route = "GET /v1/subscription/configuration"
        response = send(
            self._anonymous_session, "GET", self._url("/v1/subscription/configuration"), route, expected=(200,), timeouts=self._timeouts
        )
        return backup_configuration(json_object(response, route), route)

    # --- internals -------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return self._base_url + path

    def _account_call(self, method: str, path: str, *, expected: tuple[int, ...] = (200,), **kwargs: Any) -> requests.Response:
        headers = {"Authorization": self._account.header()}
        route = f"{method} {path}"
        return send(self._account_session, method, self._url(path), route, expected=expected, timeouts=self._timeouts, headers=headers, **kwargs)

    def _anonymous_call(
        self,
        method: str,
        path: str,
        credential_type: int,
        *,
        expected: tuple[int, ...] = (200,),
        extra_headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        headers = {**(extra_headers or {}), **self._zk_headers(credential_type)}
        if self._options.account_auth_on_archive_routes:
            headers["Authorization"] = self._account.header()
        if self._options.aci_on_archive_routes:
            headers["X-Signal-Account"] = self._account.aci
        route = f"{method} {path}"
        return send(self._anonymous_session, method, self._url(path), route, expected=expected, timeouts=self._timeouts, headers=headers, **kwargs)

    def presentation_headers(self, credential_type: int = TYPE_MESSAGES) -> dict[str, str]:
        """Return fresh zero-knowledge auth headers (a new presentation and its signature)."""
        return self._zk_headers(credential_type)

    def _zk_headers(self, credential_type: int) -> dict[str, str]:
        with self._lock:
            credential = self.credential(credential_type)
            presentation = self._presentation(credential_type, credential)
        signature = self._zk.sign(self._private_key(credential_type), presentation)
        return {"X-Signal-ZK-Auth": _b64(presentation), "X-Signal-ZK-Auth-Signature": _b64(signature)}

    def _presentation(self, credential_type: int, credential: bytes) -> bytes:
        if not self._options.reuse_presentation:
            return self._zk.present(credential)
        slot = (credential_type, day_start(self._clock()))
        if slot not in self._presentations:
            self._presentations[slot] = self._zk.present(credential)
        return self._presentations[slot]

    def _private_key(self, credential_type: int) -> bytes:
        if credential_type == TYPE_MEDIA and self._options.sign_media_with_messages_key:
            credential_type = TYPE_MESSAGES
        if credential_type not in self._private_keys:
            self._private_keys[credential_type] = self._keys.private_key(credential_type)
        return self._private_keys[credential_type]

    def _request_context(self, credential_type: int) -> tuple[bytes, bytes]:
        """Return (context, blinded request) for a type; deterministic, so computed once."""
        if credential_type not in self._contexts:
            backup_key = self._keys.backup_key(credential_type)
            self._contexts[credential_type] = self._zk.create_request_context(backup_key, self._keys.aci)
        return self._contexts[credential_type]

    def _receive(self, context: bytes, response: bytes, day: int) -> bytes:
        try:
            return self._zk.receive(context, response, day)
        except ZkVerificationError:
            log.warning("backup credential for day %d failed to unblind; clearing cached credentials", day)
            self.clear_credentials()
            raise CredentialVerificationFailed(
                "the backup credentials from the server do not match this backup key; "
                "check the recovery key, or set up backups again"
            ) from None

    def _upload_form(self, path: str, credential_type: int, upload_length: int | None) -> UploadForm:
        params = {}
        if upload_length is not None and not self._options.omit_upload_length:
            params["uploadLength"] = upload_length
        extra_headers = dict(self._options.upload_form_headers) if credential_type == TYPE_MESSAGES else {}
        route = f"GET {path}"
        response = self._anonymous_call("GET", path, credential_type, params=params, extra_headers=extra_headers)
        return UploadForm.from_json(json_object(response, route), route)

    def _copy_group(self, group: list[CopyMediaRequest]) -> list[CopyResult]:
        route = "PUT /v1/archives/media/batch"
        body = {"items": [request.to_json() for request in group]}
        response = self._anonymous_call("PUT", "/v1/archives/media/batch", TYPE_MEDIA, expected=(207, 200), json=body)
        entries = json_object(response, route).get("responses")
        if not isinstance(entries, list) or len(entries) != len(group):
            raise InvalidResponse(route, f"expected {len(group)} responses, got {entries!r:.80}")
        return [copy_result(entry, request, route) for entry, request in zip(entries, group, strict=True)]

    def _cdn_get(self, url: str, route: str, headers: dict[str, str], stream: bool = False) -> requests.Response:
        return send(self._cdn_session, "GET", url, route, expected=(200,), timeouts=self._timeouts, headers=headers, stream=stream)

    def _download_to(self, url: str, headers: dict[str, str], out_path: Path) -> int:
        response = self._cdn_get(url, "GET /backups/{backupDir}/{backupName}", headers, stream=True)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(prefix=f".{out_path.name}-", dir=out_path.parent)
        size = 0
        try:
            with os.fdopen(descriptor, "wb") as stream, response:
                for chunk in response.iter_content(chunk_size=1 << 16):
                    stream.write(chunk)
                    size += len(chunk)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temporary, out_path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        log.info("downloaded the message backup: %d bytes", size)
        return size


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


__all__ = [
    "LEVEL_PAID",
    "TYPE_MEDIA",
    "TYPE_MESSAGES",
    "AccountAuth",
    "ArchiveClient",
    "ArchiveKeys",
    "BackupConfiguration",
    "BackupInfo",
    "ClientOptions",
    "known_defects",
]
