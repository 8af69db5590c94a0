"""Turning backups on, the backup job, the keep-alive refresh and turning backups off.

The job follows Signal-Android's order: one-time setup (commit both blinded backup-id
requests, fetch credentials ahead of time, register both public keys), export a full
snapshot into an encrypted archive, validate it with libsignal, ask for an upload form with
the exact size, upload it over TUS (which replaces yesterday's archive under the same key),
record the backup time, and on the paid tier copy the media to the media tier and delete
orphans. Results are logged with stable wording (``backup uploaded`` / ``backup failed``).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import base64
import secrets
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import keys
from harness.archive import ArchiveWriter
from harness.frames import encode_message, iter_messages, read_file_chunks
from libsignal_bridge import shared_bridge
from libsignal_bridge.zk import TYPE_MEDIA, TYPE_MESSAGES
from reference_app.archive_client import AccountAuth, ArchiveClient, ArchiveKeys, ClientOptions
from reference_app.archive_credentials import CredentialStore, JsonFileCredentialStore
from reference_app.errors import AppError, ArchiveApiError, Forbidden, PayloadTooLarge, ServerUnreachable, UploadFailed
from reference_app import forward_secrecy
from reference_app.export import ExportOptions, Exporter, ExportStats

if TYPE_CHECKING:
    from reference_app.app import App

log = logging.getLogger(__name__)

MEDIA_ROOT_KEY_LENGTH = 32
DAY_MS = 86_400_000
# A file exported less than an hour ago is reused when a failed run is retried (FILE_REUSE_TIMEOUT).
FILE_REUSE_TIMEOUT_MS = 3_600_000
MAX_ATTEMPTS = 3
REFRESH_INTERVAL_MS = 86_400_000
STATIC_IV = bytes(16)
KEY_HEADER = "X-Debug-Recovery-Key"
TIERS = ("free", "paid")


class BackupFailure(Exception):
    """A backup run ended without an upload; ``kind`` is the short reason in the log."""

    def __init__(self, kind: str, message: str, retry: bool = False):
        super().__init__(message)
        self.kind = kind
        self.retry = retry


@dataclass
class ExportedArchive:
    path: Path
    size: int
    backup_time_ms: int
    stats: ExportStats | None


class BackupService:
    def __init__(self, app: App):
        self.app = app
        self.cache = app.data_dir / "cache"
        self._client: ArchiveClient | None = None
        self._client_identity: tuple[Any, ...] | None = None
        self._client_lock = threading.Lock()
        # The key before the last rotation, kept only by the rotation-keeps-* defects.
        self.previous_recovery_key: str | None = None
        # UTC day whose backup id the new-backup-id-each-day defect committed last.
        self._backup_id_day: int | None = None

    # --- clients --------------------------------------------------------------------------

    def server(self) -> tuple[str, bytes]:
        server = self.app.device.get("server")
        if not server:
            raise BackupFailure("not-configured", "the app is not pointed at a backup server; call POST /server first")
        return server["url"], base64.b64decode(server["zk_public_params"])

    def account_auth(self) -> AccountAuth:
        account = self.app.settings.value.account
        if account is None:
            raise BackupFailure("not-registered", "the app has no registered account; call POST /account first")
        return AccountAuth(aci=account.aci, device_id=account.device_id, password=account.password)

    def client_options(self, recovery_key: str | None) -> ClientOptions:
        options = ClientOptions.from_defects(self.app.defects.names, strict=False)
        if recovery_key and self.app.defects.active("key-to-server"):
            options = dataclasses.replace(options, upload_form_headers=((KEY_HEADER, recovery_key),))
        return options

    def make_client(
        self,
        recovery_key: str,
        media_root_key: bytes,
        client_class: type[ArchiveClient] = ArchiveClient,
        store: CredentialStore | None = None,
    ) -> ArchiveClient:
        url, params = self.server()
        auth = self.account_auth()
        archive_keys = ArchiveKeys.from_recovery_key(recovery_key, uuid.UUID(auth.aci).bytes, media_root_key)
        return client_class(
            url,
            auth,
            archive_keys,
            params,
            clock=lambda: self.app.clock.now_ms() / 1000,
            store=store or JsonFileCredentialStore(self.app.data_dir / "credentials.json"),
            bridge=shared_bridge(),
            options=self.client_options(recovery_key),
        )

    def client(self) -> ArchiveClient:
        """Return the app's archive client, one for as long as the keys and server stay the same."""
        recovery_key = self.app.keystore.recovery_key
        media_root_key = self.app.keystore.media_root_key
        if not recovery_key or not media_root_key:
            raise BackupFailure("disabled", "backups are not enabled; turn them on first")
        if self.app.defects.active("rotation-keeps-backup-id") and self.previous_recovery_key:
            recovery_key = self.previous_recovery_key
        account = self.account_auth()
        identity = (recovery_key, media_root_key, self.server(), account.aci, account.device_id, account.password)
        with self._client_lock:
            if self._client is None or self._client_identity != identity:
                self.close_client()
                self._client = self.make_client(recovery_key, media_root_key)
                self._client_identity = identity
            return self._client

    def close_client(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client = None
        self._client_identity = None

    # --- settings actions -----------------------------------------------------------------

    def enable(self, tier: str) -> str:
        """Turn backups on and return the recovery key in display form (shown once)."""
        if tier not in TIERS:
            raise ValueError(f"tier must be free or paid, got {tier!r}")
        settings = self.app.settings
        if settings.value.account is None:
            raise BackupFailure("not-registered", "register an account before turning backups on")
        recovery_key = self.app.keystore.recovery_key
        if recovery_key is None:
            recovery_key = keys.generate_recovery_key()
            self.app.keystore.store(recovery_key=recovery_key, media_root_key=secrets.token_bytes(MEDIA_ROOT_KEY_LENGTH))
        with settings.lock:
            settings.value.backups.enabled = True
            settings.value.backups.tier = tier
            settings.value.backups.error = None
            settings.value.restore_pending = False
            settings.save()
        self.app.plant_key_defects(recovery_key)
        log.info("backups enabled tier=%s", tier)
        self.app.scheduler.reschedule()
        self.app.jobs.submit("initialize", self.initialize_quietly, coalesce=True)
        return keys.display_recovery_key(recovery_key)

    def initialize_quietly(self) -> None:
        """Run the one-time setup now; a failure is logged and retried by the next backup."""
        try:
            self.ensure_initialized()
        except (BackupFailure, AppError) as error:
            log.warning("backup setup failed, will retry with the next backup: %s", error)

    def ensure_initialized(self) -> ArchiveClient:
        client = self.client()
        backups = self.app.settings.value.backups
        if backups.initialized:
            return client
        try:
            client.initialize()
        except (AppError, BackupFailure):
            with self.app.settings.lock:
                backups.initialized = False
                self.app.settings.save()
            raise
        with self.app.settings.lock:
            backups.initialized = True
            self.app.settings.save()
        log.info("backup initialized")
        return client

    def set_tier(self, tier: str) -> None:
        if tier not in TIERS:
            raise ValueError(f"tier must be free or paid, got {tier!r}")
        with self.app.settings.lock:
            self.app.settings.value.backups.tier = tier
            self.app.settings.value.backups.downgraded = False
            self.app.settings.save()
        log.info("backup tier set tier=%s", tier)

    def disable(self) -> None:
        """Turn backups off and delete the remote backup (messages and media)."""
        backups = self.app.settings.value.backups
        if backups.enabled and self.app.keystore.recovery_key:
            try:
                client = self.ensure_initialized()
            except (AppError, BackupFailure) as error:
                log.warning("deleting the remote backup failed: %s", error)
            else:
                try:
                    client.delete_backup(TYPE_MESSAGES)
                    client.delete_backup(TYPE_MEDIA)
                    log.info("remote backup deleted")
                except AppError as error:
                    log.warning("deleting the remote backup failed: %s", error)
        with self.app.settings.lock:
            backups.enabled = False
            backups.initialized = False
            backups.next_backup_ms = None
            self.app.settings.save()
        self.discard_export()
        log.info("backups disabled")
        self.app.scheduler.reschedule()

    # --- the backup job ---------------------------------------------------------------------

    def run(self, trigger: str) -> dict[str, Any]:
        """Run one backup (with up to three attempts) and return the result the screen shows."""
        log.info("backup started trigger=%s", trigger)
        failure: BackupFailure | None = None
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                archive = self._attempt()
            except BackupFailure as error:
                failure = error
            except AppError as error:
                failure = classify(error)
            else:
                return self._succeeded(archive)
            if not failure.retry or attempt == MAX_ATTEMPTS:
                break
            log.warning("backup attempt %d failed (%s); retrying", attempt, failure)
        assert failure is not None
        return self._failed(failure)

    def _attempt(self) -> ExportedArchive:
        settings = self.app.settings.value
        if not settings.backups.enabled:
            raise BackupFailure("disabled", "backups are turned off")
        if settings.restore_pending or self.app.restoring:
            raise BackupFailure("restore-pending", "a restore is pending or running; backups wait until it ends")
        if self.app.defects.active("new-backup-id-each-day"):
            self._new_backup_id_each_day()
        client = self.ensure_initialized()
        archive = self._export_or_reuse()
        client.upload_backup(archive.path)
        self._after_upload(client, archive)
        return archive

    def _new_backup_id_each_day(self) -> None:
        """Defect: on a new UTC day, switch to a fresh recovery key (and so a new backup id) silently."""
        today = self.app.clock.now_ms() // DAY_MS
        if self._backup_id_day is not None and self._backup_id_day != today:
            with self.app.settings.lock:
                self.app.settings.value.backups.initialized = False
                self.app.settings.save()
            self.client().clear_credentials()
            self.close_client()
            self.app.keystore.store(recovery_key=keys.generate_recovery_key(), media_root_key=self.app.keystore.media_root_key)
            self.discard_export()
            log.info("backup id renewed for the day")
        self._backup_id_day = today

    def _succeeded(self, archive: ExportedArchive) -> dict[str, Any]:
        settings = self.app.settings
        with settings.lock:
            settings.value.backups.last_backup_ms = archive.backup_time_ms
            settings.value.backups.error = None
            settings.save()
        log.info(
            "backup uploaded backup_time_ms=%d size=%d layout=%s tier=%s",
            archive.backup_time_ms,
            archive.size,
            self.app.layout,
            settings.value.backups.tier,
        )
        self.app.scheduler.reschedule()
        return {"ok": True, "backup_time_ms": archive.backup_time_ms, "archive_size": archive.size, "error": None}

    def _failed(self, failure: BackupFailure) -> dict[str, Any]:
        with self.app.settings.lock:
            self.app.settings.value.backups.error = str(failure)
            self.app.settings.save()
        log.error("backup failed reason=%s: %s", failure.kind, failure)
        self.app.scheduler.reschedule()
        return {"ok": False, "backup_time_ms": None, "archive_size": None, "error": str(failure)}

    # --- export ------------------------------------------------------------------------------

    def _export_or_reuse(self) -> ExportedArchive:
        backups = self.app.settings.value.backups
        now = self.app.clock.now_ms()
        if backups.export_file and Path(backups.export_file).is_file():
            age = now - (backups.export_created_ms or 0)
            if self.app.defects.active("stale-snapshot") or 0 <= age < FILE_REUSE_TIMEOUT_MS:
                path = Path(backups.export_file)
                log.info("reusing the archive exported at %d", backups.export_created_ms)
                return ExportedArchive(path, path.stat().st_size, backups.export_backup_time_ms or now, None)
        return self._export(now)

    def _export(self, backup_time_ms: int) -> ExportedArchive:
        app = self.app
        self.cache.mkdir(parents=True, exist_ok=True)
        plain_path = self.cache / "snapshot.frames"
        archive_path = self.cache / "backup.archive"
        options = ExportOptions(
            backup_time_ms=backup_time_ms,
            media_root_key=app.keystore.media_root_key,
            policy=app.policy,
            tier=app.settings.value.backups.tier,
            defects=app.defects,
        )
        stats = self._write_plain(plain_path, options)
        plaintext_upload = app.defects.active("plaintext-upload")
        try:
            self._validate(plain_path)
            self._encrypt(plain_path, archive_path)
        finally:
            if not plaintext_upload and not app.defects.active("keeps-plaintext-export"):
                plain_path.unlink(missing_ok=True)
        path = plain_path if plaintext_upload else archive_path
        with app.settings.lock:
            backups = app.settings.value.backups
            backups.export_file = str(path)
            backups.export_created_ms = backup_time_ms
            backups.export_backup_time_ms = backup_time_ms
            app.settings.save()
        excluded = ",".join(f"{reason}:{count}" for reason, count in sorted(stats.excluded.items()))
        log.info(
            "archive exported chat_items=%d excluded=%s tombstoned=%d",
            stats.chat_items,
            excluded or "none",
            stats.tombstoned,
        )
        return ExportedArchive(path, path.stat().st_size, backup_time_ms, stats)

    def _encrypt(self, plain_path: Path, archive_path: Path) -> None:
        """Write the archive container: modern (fresh forward-secrecy token) or legacy."""
        app = self.app
        aci = uuid.UUID(self.account_auth().aci).bytes
        recovery_key = app.keystore.recovery_key
        if app.defects.active("rotation-keeps-archive-key") and self.previous_recovery_key:
            recovery_key = self.previous_recovery_key
        backup_key = keys.derive_backup_key(recovery_key)
        backup_id = keys.derive_backup_id(backup_key, aci)
        options: dict[str, Any] = {}
        layout = app.layout
        if app.defects.active("archive-key-ignores-aci"):
            # No ACI and no token: a legacy container keyed by the recovery key alone.
            layout = "legacy"
            message_key = keys.derive_message_backup_key(backup_key, keys.derive_backup_id(backup_key, bytes(16)))
        elif layout == "modern":
            token = forward_secrecy.new_token()
            message_key = keys.derive_message_backup_key(backup_key, backup_id, token)
            options["forward_secrecy_salts"] = [forward_secrecy.new_salts(backup_key)]
        else:
            message_key = keys.derive_message_backup_key(backup_key, backup_id)
        if app.defects.active("static-iv"):
            options["iv"] = STATIC_IV
        with ArchiveWriter(archive_path, message_key, layout=layout, **options) as writer:
            for chunk in read_file_chunks(plain_path):
                writer.write(chunk)
        if app.defects.active("bad-mac"):
            _flip_last_byte(archive_path)

    def _write_plain(self, path: Path, options: ExportOptions) -> ExportStats:
        app = self.app
        previous_path = self.cache / "previous_items.frames"
        appends = app.defects.active("appends-instead-of-replace")
        previous = list(iter_messages(read_file_chunks(previous_path))) if appends and previous_path.is_file() else None
        temporary = path.with_name(path.name + ".tmp")
        with app.store.transaction() as db:
            app.conversations.purge_expired(db, app.files, app.clock.now_ms())
            exporter = Exporter(db, options, previous_items=(previous or []) if appends else None)
            with open(temporary, "wb") as handle:
                for chunk in exporter.chunks():
                    handle.write(chunk)
        os.replace(temporary, path)
        if appends:
            with open(previous_path, "wb") as handle:
                for data in exporter.exported_items:
                    handle.write(encode_message(data))
        return exporter.stats

    def _validate(self, plain_path: Path) -> None:
        defects = self.app.defects
        if any(defects.active(name) for name in ("keeps-short-timers", "ignores-time-left", "locator-without-cdn-number")):
            log.warning("archive validation skipped")
            return
        outcome = shared_bridge().call("backup_validate_plain", path=str(plain_path), purpose="remote")
        if not outcome["ok"]:
            raise BackupFailure("validation", f"libsignal rejected the exported archive: {outcome['error']}")

    def _after_upload(self, client: ArchiveClient, archive: ExportedArchive) -> None:
        if not self.app.defects.active("stale-snapshot"):
            self.discard_export()
        paid = self.app.settings.value.backups.tier == "paid" or self.app.defects.active("media-tier-on-free")
        if paid and archive.stats is not None:
            from reference_app.media_tier import MediaTierSync

            MediaTierSync(self.app, client).run(archive.stats)

    def discard_export(self) -> None:
        with self.app.settings.lock:
            backups = self.app.settings.value.backups
            if backups.export_file:
                Path(backups.export_file).unlink(missing_ok=True)
            backups.export_file = None
            backups.export_created_ms = None
            backups.export_backup_time_ms = None
            self.app.settings.save()

    # --- keep-alive refresh -------------------------------------------------------------------

    def refresh(self) -> dict[str, Any]:
        """Send ``POST /v1/archives`` (messages, and media on the paid tier)."""
        backups = self.app.settings.value.backups
        if self.app.defects.active("no-refresh"):
            log.debug("keep-alive refresh skipped")
            return {"ok": True, "skipped": True}
        paid = backups.tier == "paid"
        try:
            client = self.ensure_initialized()
        except (BackupFailure, AppError) as error:
            log.warning("refresh failed: %s", error)
            return {"ok": False, "error": str(error)}
        try:
            client.refresh(paid)
        except AppError as error:
            log.warning("refresh failed: %s", error)
            return {"ok": False, "error": str(error)}
        log.info("refresh sent credential=messages status=204")
        if paid:
            log.info("refresh sent credential=media status=204")
        with self.app.settings.lock:
            backups.last_refresh_ms = self.app.clock.now_ms()
            self.app.settings.save()
        return {"ok": True}


def classify(error: AppError) -> BackupFailure:
    """Turn a client error into the failure the backup screen shows."""
    if isinstance(error, ServerUnreachable):
        return BackupFailure("network", str(error), retry=True)
    if isinstance(error, UploadFailed):
        return BackupFailure("upload", str(error), retry=True)
    if isinstance(error, PayloadTooLarge):
        return BackupFailure("too-large", str(error), retry=False)
    if isinstance(error, Forbidden):
        return BackupFailure("forbidden", str(error))
    if isinstance(error, ArchiveApiError):
        return BackupFailure("server", str(error), retry=error.status >= 500 or error.status == 400)
    return BackupFailure("error", str(error))


def _flip_last_byte(path: Path) -> None:
    with open(path, "r+b") as handle:
        handle.seek(-1, os.SEEK_END)
        last = handle.read(1)
        handle.seek(-1, os.SEEK_END)
        handle.write(bytes([last[0] ^ 0x01]))

